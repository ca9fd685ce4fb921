/*
 * bench_json_path.c -- the stream id lookup of the Kafka worker, alone
 *
 *   test/bench/bench_json_path [EVENTS]          time json_path_lookup
 *   test/bench/bench_json_path [EVENTS] --dump   print the events, one a line
 *
 * EVENTS (default 200000) ~230-byte JSON log events with the stream id at
 * metadata.stream_id, after the other fields (the scan reads the whole
 * document anyway: it validates it).  Prints the best of five passes in
 * microseconds per event.  test/bench/bench_json_path.sh compares it with
 * PostgreSQL's own JSON parsers on the same events.
 */
#include "message/json_path.h"
#include "bench_common.h"

#include <stdbool.h>

#define EVENT_CAP 512

int
main(int argc, char **argv)
{
	size_t		nevents = argc > 1 && argv[1][0] != '-' ? (size_t) atol(argv[1]) : 200000;
	bool		dump = argc > 1 && strcmp(argv[argc - 1], "--dump") == 0;
	char	   *events = malloc(nevents * EVENT_CAP);
	size_t	   *lens = malloc(nevents * sizeof(size_t));
	uint64_t	rng = 7;
	double		best = 1e9;
	size_t		found = 0,
				bytes = 0;

	for (size_t i = 0; i < nevents; i++)
	{
		char	   *e = events + i * EVENT_CAP;
		char		body[EVENT_CAP];
		size_t		n = synthetic_event(&rng, i, body, sizeof(body) - 64);

		/* the synthetic event is an object: put the stream id at its end */
		body[n - 1] = '\0';
		lens[i] = (size_t) snprintf(e, EVENT_CAP, "%s,\"metadata\":{\"stream_id\":\"tenant-%zu\"}}",
									body, i % 2000);
		bytes += lens[i];
		if (dump)
			printf("%.*s\n", (int) lens[i], e);
	}
	if (dump)
		return 0;
	for (int pass = 0; pass < 5; pass++)
	{
		double		t0 = now_seconds();

		found = 0;
		for (size_t i = 0; i < nevents; i++)
		{
			char		id[256];
			size_t		idlen;

			if (json_path_lookup(events + i * EVENT_CAP, lens[i], "metadata.stream_id", id,
								 sizeof(id), &idlen, NULL, NULL, 0) == JSON_PATH_STRING)
				found++;
		}
		if (now_seconds() - t0 < best)
			best = now_seconds() - t0;
	}
	printf("json_path_lookup (driftlock)   %8.3f us/event over %zu events of %.0f bytes mean (%zu found)\n",
		   1e6 * best / nevents, nevents, (double) bytes / nevents, found);
	free(events);
	free(lens);
	return found != nevents;
}
