/*
 * otlp_render.c
 *		Print the events the Kafka worker takes from OpenTelemetry logs
 *		export batches: each file is one batch (one Kafka message), decoded
 *		by src/message/otlp_logs.c, the worker's decoder, and each log
 *		record is printed on a line of its own as
 *
 *		  <stream> TAB <text>
 *
 *		the stream being the stream attribute's value and the text exactly
 *		what the detector scores.  test/bench/bench_worker_otlp.sh sends these
 *		texts as raw messages, to compare a worker reading the batches with
 *		one reading the same events one per message.
 *
 * Usage:
 *   otlp_render [-e proto|json] [-A ATTRIBUTE] FILE...
 *
 *   -e  encoding of the batches: proto (otlp_proto, the default) or json
 *   -A  the resource attribute naming the stream (default service.name,
 *       as driftlock.otlp_stream_attribute)
 *
 * The texts are JSON, so they hold no tab and no newline; a record without
 * a stream, a stream holding a tab or a newline, or a file that does not
 * decode is an error (exit 1).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message/otlp_logs.h"

static void
usage(void)
{
	fprintf(stderr, "usage: otlp_render [-e proto|json] [-A ATTRIBUTE] FILE...\n");
	exit(2);
}

/* The whole file, malloc'ed; exits on failure. */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf = NULL;
	size_t		cap = 0;
	size_t		n = 0;
	size_t		got;

	if (f == NULL)
	{
		perror(path);
		exit(1);
	}
	do
	{
		if (n == cap)
		{
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (buf == NULL)
			{
				fprintf(stderr, "otlp_render: out of memory\n");
				exit(1);
			}
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f))
	{
		perror(path);
		exit(1);
	}
	fclose(f);
	*len = n;
	return buf;
}

int
main(int argc, char **argv)
{
	OtlpEncoding encoding = OTLP_PROTO;
	const char *attribute = "service.name";
	int			i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "-e") == 0)
		{
			i++;
			if (strcmp(argv[i], "proto") == 0)
				encoding = OTLP_PROTO;
			else if (strcmp(argv[i], "json") == 0)
				encoding = OTLP_JSON;
			else
				usage();
		}
		else if (strcmp(argv[i], "-A") == 0)
			attribute = argv[++i];
		else
			usage();
	}
	if (i >= argc)
		usage();

	for (; i < argc; i++)
	{
		size_t		len;
		uint8_t    *buf = read_file(argv[i], &len);
		OtlpBatch	batch;
		char		err[256];

		if (!otlp_decode(buf, len, encoding, attribute, NULL, &batch, err, sizeof(err)))
		{
			fprintf(stderr, "otlp_render: %s: %s\n", argv[i], err);
			return 1;
		}
		for (size_t r = 0; r < batch.count; r++)
		{
			const OtlpRecord *rec = &batch.records[r];

			if (rec->stream == NULL ||
				strcspn(rec->stream, "\t\n") != rec->stream_len)
			{
				fprintf(stderr, "otlp_render: %s: record %zu: %s\n", argv[i], r,
						rec->stream == NULL ? "no stream attribute" : "a tab or a newline in the stream");
				return 1;
			}
			fwrite(rec->stream, 1, rec->stream_len, stdout);
			putchar('\t');
			fwrite(rec->text, 1, rec->text_len, stdout);
			putchar('\n');
		}
		otlp_batch_free(&batch);
		free(buf);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		perror("otlp_render: stdout");
		return 1;
	}
	return 0;
}
