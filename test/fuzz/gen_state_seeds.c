/*
 * gen_state_seeds.c -- write valid serialised detector states, the seeds of
 * fuzz_state.
 *
 *   make fuzz-seeds      (runs: test/fuzz/gen_state_seeds test/fuzz/corpus/fuzz_state)
 *
 * Writes DIR/state-<name>.bin for a few detectors in different phases: new,
 * warming up, warm with alarms pending, after a drift, fitted, unmasked.
 * The bytes depend on the zstd version (the stored scores are compressed
 * sizes), so regenerate them after a change of the state format, not on
 * every zstd upgrade: any valid state is a good seed.
 */
#include "cbad/cbad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void
small_config(cbad_config *c)
{
	cbad_config_default(c);
	c->baseline_size = 16;
	c->baseline_bytes = 2048;
	c->warmup = 8;
	c->calibration_size = 20;
	c->rebuild_interval = 4;
	c->drift_window = 10;
	c->drift_threshold = 0.5;
	c->alpha = 0.1;
	c->max_event_bytes = 256;
}

/* A normal log line number i, or (with odd) one of a different format. */
static int
line(char *buf, size_t cap, int i, int odd)
{
	if (odd)
		return snprintf(buf, cap, "FATAL [%08x-%04x] core dumped: signal %d in worker %d at 0x%x",
						(unsigned) (i * 2654435761u), (unsigned) (i * 40503u) & 0xffff,
						6 + i % 5, i % 7, (unsigned) (i * 4096 + 17));
	return snprintf(buf, cap, "2024-05-01T12:%02d:%02d.%03dZ INFO 10.0.%d.%d GET /api/orders/%d 200 %dms",
					(i / 60) % 60, i % 60, (i * 37) % 1000, i % 4, 10 + i % 200, 1000 + i, 3 + i % 40);
}

static void
feed(cbad_detector *det, int from, int to, int odd)
{
	char		buf[256];
	cbad_verdict v;

	for (int i = from; i < to; i++)
	{
		int			n = line(buf, sizeof(buf), i, odd);

		if (cbad_detector_observe(det, (const uint8_t *) buf, (size_t) n, &v) != CBAD_OK)
		{
			fprintf(stderr, "observe failed\n");
			exit(1);
		}
	}
}

static void
save(cbad_detector *det, const char *name)
{
	char		path[4096];
	uint8_t    *state;
	size_t		len;
	FILE	   *f;

	if (cbad_detector_serialize(det, &state, &len) != CBAD_OK)
	{
		fprintf(stderr, "serialize failed\n");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/state-%s.bin", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(state, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
	printf("%s: %zu bytes\n", path, len);
	cbad_buffer_free(det, state);
	cbad_detector_free(det);
}

static cbad_detector *
create(const cbad_config *c)
{
	cbad_detector *det;

	if (cbad_detector_create(c, NULL, &det) != CBAD_OK)
	{
		fprintf(stderr, "create failed\n");
		exit(1);
	}
	return det;
}

int
main(int argc, char **argv)
{
	cbad_config c;
	cbad_detector *det;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];

	small_config(&c);
	save(create(&c), "new");

	det = create(&c);
	feed(det, 0, 5, 0);
	save(det, "warming");

	det = create(&c);
	feed(det, 0, 30, 0);
	feed(det, 30, 33, 1);		/* a short burst: alarms still pending */
	save(det, "alarms");

	det = create(&c);
	feed(det, 0, 30, 0);
	feed(det, 30, 60, 1);		/* a lasting shift: drift */
	save(det, "drift");

	{
		char		bufs[12][256];
		const uint8_t *ev[12];
		size_t		lens[12];

		det = create(&c);
		for (int i = 0; i < 12; i++)
		{
			lens[i] = (size_t) line(bufs[i], sizeof(bufs[i]), i, 0);
			ev[i] = (const uint8_t *) bufs[i];
		}
		if (cbad_detector_fit(det, ev, lens, 12) != CBAD_OK)
			return 1;
		feed(det, 12, 15, 0);
		save(det, "fit");
	}

	small_config(&c);
	c.mask = false;
	c.zstd_level = 1;
	c.rebuild_interval = 1;
	det = create(&c);
	feed(det, 0, 20, 0);
	save(det, "unmasked");
	return 0;
}
