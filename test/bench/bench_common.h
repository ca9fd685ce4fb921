/*
 * bench_common.h -- small helpers shared by the benchmarks and unit tests:
 * reading line files, a deterministic synthetic event generator, timing.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lines
{
	char	  **line;
	size_t	   *len;
	size_t		n;
} lines;

/* Read a file's lines (without newlines); returns 0 when the file is absent. */
static inline int
lines_read(const char *path, lines *out)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		cap = 0;
	ssize_t		got;

	memset(out, 0, sizeof(*out));
	if (f == NULL)
		return 0;
	while ((got = getline(&buf, &cap, f)) >= 0)
	{
		while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
			got--;
		out->line = realloc(out->line, sizeof(char *) * (out->n + 1));
		out->len = realloc(out->len, sizeof(size_t) * (out->n + 1));
		out->line[out->n] = malloc((size_t) got + 1);
		memcpy(out->line[out->n], buf, (size_t) got);
		out->line[out->n][got] = '\0';
		out->len[out->n] = (size_t) got;
		out->n++;
	}
	free(buf);
	fclose(f);
	return 1;
}

static inline void
lines_free(lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->line[i]);
	free(l->line);
	free(l->len);
	memset(l, 0, sizeof(*l));
}

static inline uint64_t
bench_rand(uint64_t *s)
{
	uint64_t	z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * A normal ~200-byte JSON log event from a fixed mix of services, levels and
 * messages, with volatile fields (timestamp, request id, latency, user).
 */
static inline size_t
synthetic_event(uint64_t *rng, uint64_t seq, char *buf, size_t cap)
{
	static const char *services[] = {"checkout", "payments", "search", "auth", "inventory"};
	static const char *messages[] = {
		"request completed", "cache hit for product page", "user session refreshed",
		"payment authorised", "search results returned", "inventory level checked",
		"token validated", "cart updated"
	};
	static const char *levels[] = {"info", "info", "info", "debug", "warn"};
	static const char *regions[] = {"eu-west-1", "us-east-2", "ap-south-1"};
	uint64_t	r = bench_rand(rng);
	int			n;

	n = snprintf(buf, cap,
				 "{\"ts\":\"2026-11-%02dT%02d:%02d:%02d.%03dZ\",\"service\":\"%s\",\"level\":\"%s\","
				 "\"msg\":\"%s\",\"request_id\":\"%08llx-%04x\",\"latency_ms\":%d,\"user\":\"u%05d\",\"status\":%d,\"region\":\"%s\"}",
				 (int) (1 + seq / 86400 % 28), (int) (seq / 3600 % 24), (int) (seq / 60 % 60), (int) (seq % 60),
				 (int) (r % 1000), services[(r >> 10) % 5], levels[(r >> 13) % 5], messages[(r >> 16) % 8],
				 (unsigned long long) (bench_rand(rng) & 0xffffffffULL), (unsigned) ((r >> 20) & 0xffff),
				 (int) (5 + (r >> 36) % 400), (int) ((r >> 45) % 50000), (r >> 61) ? 200 : 404, regions[(r >> 40) % 3]);
	return n < 0 ? 0 : ((size_t) n < cap ? (size_t) n : cap - 1);
}

/*
 * An anomalous ~200-byte JSON event of one of three recurring kinds (kind
 * 0-2), with volatile fields like synthetic_event's: a ledger failure, a
 * password spray, and a request that looks almost normal but for its error
 * and stack trace.  Used for the contaminated stream of bench_accuracy and
 * the unit tests: the same kinds recur for the whole stream.
 */
static inline size_t
synthetic_anomaly(uint64_t *rng, uint64_t seq, int kind, char *buf, size_t cap)
{
	uint64_t	r = bench_rand(rng);
	int			n;
	char		ts[40];

	snprintf(ts, sizeof(ts), "2026-11-%02dT%02d:%02d:%02d.%03dZ",
			 (int) (1 + seq / 86400 % 28), (int) (seq / 3600 % 24), (int) (seq / 60 % 60),
			 (int) (seq % 60), (int) (r % 1000));
	switch (kind)
	{
		case 0:
			n = snprintf(buf, cap,
						 "{\"ts\":\"%s\",\"service\":\"payments\",\"level\":\"error\","
						 "\"msg\":\"ledger checksum mismatch, refusing writes\",\"shard\":%d,"
						 "\"expected\":\"%08llx\",\"found\":\"%08llx\"}",
						 ts, (int) ((r >> 10) % 64), (unsigned long long) (bench_rand(rng) & 0xffffffffULL),
						 (unsigned long long) (bench_rand(rng) & 0xffffffffULL));
			break;
		case 1:
			n = snprintf(buf, cap,
						 "{\"ts\":\"%s\",\"service\":\"auth\",\"level\":\"warn\","
						 "\"msg\":\"password spray suspected\",\"source_ip\":\"203.0.113.%d\","
						 "\"attempts\":%d,\"accounts\":%d,\"user\":\"u%05d\"}",
						 ts, (int) ((r >> 10) % 254 + 1), (int) (200 + (r >> 20) % 5000),
						 (int) (10 + (r >> 33) % 90), (int) ((r >> 45) % 50000));
			break;
		default:
			n = snprintf(buf, cap,
						 "{\"ts\":\"%s\",\"service\":\"search\",\"level\":\"info\","
						 "\"msg\":\"request completed\",\"request_id\":\"%08llx-%04x\",\"latency_ms\":%d,"
						 "\"user\":\"u%05d\",\"status\":500,\"error\":\"java.lang.OutOfMemoryError: Java heap space\"}",
						 ts, (unsigned long long) (bench_rand(rng) & 0xffffffffULL), (unsigned) ((r >> 20) & 0xffff),
						 (int) (5000 + (r >> 36) % 25000), (int) ((r >> 45) % 50000));
			break;
	}
	return n < 0 ? 0 : ((size_t) n < cap ? (size_t) n : cap - 1);
}

static inline double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
