/*
 * bench_otlp.c -- decoding OTLP logs batches (src/message/otlp_logs.c)
 *
 *   test/bench/bench_otlp [BATCHES]
 *
 * BATCHES (default 1000) export batches of 100 log records each (3
 * services), like test/tools/otlp_gen's: an INFO or DEBUG access-log line,
 * http.method, http.status_code (int), host.name, sometimes a double, a
 * trace and span id; encoded here in otlp_proto and otlp_json.  Decodes
 * all of them with malloc (and otlp_batch_free) and with a caller's bump
 * allocator (reset per batch, as a memory context would be), and prints
 * for each encoding the best of five passes: records/s, MB/s of input and
 * bytes per record.  Times are the process's CPU time, so that other
 * processes on the machine disturb the figures less.
 */
#include "message/otlp_logs.h"
#include "bench_common.h"

#include <stdarg.h>
#include <stdbool.h>

#define RECORDS_PER_BATCH 100
#define SERVICES 3

typedef struct Buf
{
	uint8_t    *d;
	size_t		len;
	size_t		cap;
} Buf;

static void
put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 256;
		b->d = realloc(b->d, b->cap);
		if (b->d == NULL)
			abort();
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
}

static void
putf(Buf *b, const char *fmt,...)
{
	char		tmp[512];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	put(b, tmp, (size_t) n);
}

static void
pb_varint(Buf *b, uint64_t v)
{
	uint8_t		t[10];
	size_t		n = 0;

	do
	{
		t[n] = (uint8_t) (v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	put(b, t, n);
}

static void
pb_ld(Buf *b, int field, const void *p, size_t n)
{
	pb_varint(b, (uint64_t) field << 3 | 2);
	pb_varint(b, n);
	put(b, p, n);
}

static void
pb_sub(Buf *b, int field, Buf *sub)
{
	pb_ld(b, field, sub->d, sub->len);
	sub->len = 0;
}

static void
pb_fixed64(Buf *b, int field, uint64_t v)
{
	pb_varint(b, (uint64_t) field << 3 | 1);
	for (int i = 0; i < 8; i++)
	{
		uint8_t		c = (uint8_t) (v >> (8 * i));

		put(b, &c, 1);
	}
}

/* KeyValue kinds: 's' string, 'i' int, 'd' double */
static void
pb_kv(Buf *b, int field, const char *key, char kind, const char *s, int64_t i, double d)
{
	Buf			kv = {0},
				any = {0};

	if (kind == 's')
		pb_ld(&any, 1, s, strlen(s));
	else if (kind == 'i')
	{
		pb_varint(&any, 3 << 3);
		pb_varint(&any, (uint64_t) i);
	}
	else
	{
		uint64_t	bits;

		memcpy(&bits, &d, 8);
		pb_fixed64(&any, 4, bits);
	}
	pb_ld(&kv, 1, key, strlen(key));
	pb_sub(&kv, 2, &any);
	pb_sub(b, field, &kv);
	free(kv.d);
	free(any.d);
}

static void
js_kv(Buf *b, bool comma, const char *key, char kind, const char *s, int64_t i, double d)
{
	putf(b, "%s{\"key\":\"%s\",\"value\":{", comma ? "," : "", key);
	if (kind == 's')
		putf(b, "\"stringValue\":\"%s\"}}", s);
	else if (kind == 'i')
		putf(b, "\"intValue\":\"%lld\"}}", (long long) i);
	else
		putf(b, "\"doubleValue\":%.17g}}", d);
}

/* One batch in both encodings. */
static void
make_batch(uint64_t *rng, size_t batch, Buf *pb, Buf *js)
{
	static const char *const methods[] = {"GET", "GET", "POST", "PUT"};
	static const char *const paths[] = {"/api/orders", "/api/users", "/api/products", "/api/cart"};
	static const int statuses[] = {200, 200, 201, 304, 404};
	size_t		per = RECORDS_PER_BATCH / SERVICES;

	putf(js, "{\"resourceLogs\":[");
	for (int s = 0; s < SERVICES; s++)
	{
		Buf			rl = {0},
					res = {0},
					sl = {0};
		char		svc[32];
		size_t		n = s == SERVICES - 1 ? RECORDS_PER_BATCH - per * (SERVICES - 1) : per;

		snprintf(svc, sizeof(svc), "svc-%d", s);
		pb_kv(&res, 1, "service.name", 's', svc, 0, 0);
		pb_kv(&res, 1, "host.name", 's', "node-1", 0, 0);
		pb_sub(&rl, 1, &res);
		putf(js, "%s{\"resource\":{\"attributes\":[", s ? "," : "");
		js_kv(js, false, "service.name", 's', svc, 0, 0);
		js_kv(js, true, "host.name", 's', "node-1", 0, 0);
		putf(js, "]},\"scopeLogs\":[{\"scope\":{\"name\":\"io.example\"},\"logRecords\":[");
		pb_ld(&sl, 1, "\x0a\x0aio.example", 12);
		for (size_t r = 0; r < n; r++)
		{
			Buf			lr = {0},
						body = {0};
			char		text[128],
						host[16];
			const char *method = methods[bench_rand(rng) % 4];
			int			status = statuses[bench_rand(rng) % 5];
			bool		debug = bench_rand(rng) % 5 == 0;
			bool		lat = bench_rand(rng) % 4 == 0;
			double		latency = (double) (1 + bench_rand(rng) % 5000) / 1000.0;
			uint64_t	t = 1767225600000000000ULL + (batch * RECORDS_PER_BATCH + r) * 1000000ULL;
			uint8_t		ids[24];

			snprintf(text, sizeof(text), "%s %s/%d %d %dms", method, paths[bench_rand(rng) % 4],
					 (int) (1000 + bench_rand(rng) % 9000), status, (int) (1 + bench_rand(rng) % 200));
			snprintf(host, sizeof(host), "host-%d", (int) (bench_rand(rng) % 8));
			for (int i = 0; i < 24; i++)
				ids[i] = (uint8_t) bench_rand(rng);

			pb_fixed64(&lr, 1, t);
			pb_fixed64(&lr, 11, t + 5000);
			pb_varint(&lr, 2 << 3);
			pb_varint(&lr, debug ? 5 : 9);
			pb_ld(&lr, 3, debug ? "DEBUG" : "INFO", debug ? 5 : 4);
			pb_ld(&body, 1, text, strlen(text));
			pb_sub(&lr, 5, &body);
			pb_kv(&lr, 6, "http.method", 's', method, 0, 0);
			pb_kv(&lr, 6, "http.status_code", 'i', NULL, status, 0);
			pb_kv(&lr, 6, "host.name", 's', host, 0, 0);
			if (lat)
				pb_kv(&lr, 6, "latency_s", 'd', NULL, 0, latency);
			pb_ld(&lr, 9, ids, 16);
			pb_ld(&lr, 10, ids + 16, 8);
			pb_sub(&sl, 2, &lr);

			putf(js, "%s{\"timeUnixNano\":\"%llu\",\"observedTimeUnixNano\":\"%llu\",\"severityNumber\":%d,"
				 "\"severityText\":\"%s\",\"body\":{\"stringValue\":\"%s\"},\"attributes\":[",
				 r ? "," : "", (unsigned long long) t, (unsigned long long) (t + 5000),
				 debug ? 5 : 9, debug ? "DEBUG" : "INFO", text);
			js_kv(js, false, "http.method", 's', method, 0, 0);
			js_kv(js, true, "http.status_code", 'i', NULL, status, 0);
			js_kv(js, true, "host.name", 's', host, 0, 0);
			if (lat)
				js_kv(js, true, "latency_s", 'd', NULL, 0, latency);
			putf(js, "],\"traceId\":\"");
			for (int i = 0; i < 16; i++)
				putf(js, "%02x", ids[i]);
			putf(js, "\",\"spanId\":\"");
			for (int i = 16; i < 24; i++)
				putf(js, "%02x", ids[i]);
			putf(js, "\"}");
			free(lr.d);
			free(body.d);
		}
		pb_sub(&rl, 2, &sl);
		pb_sub(pb, 1, &rl);
		putf(js, "]}]}");
		free(rl.d);
		free(res.d);
		free(sl.d);
	}
	putf(js, "]}");
}

static double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct Bump
{
	char	   *base;
	size_t		used;
	size_t		cap;
} Bump;

static void *
bump_alloc(void *ctx, size_t n)
{
	Bump	   *b = ctx;
	void	   *p;

	n = (n + 15) & ~(size_t) 15;
	if (b->used + n > b->cap)
		abort();				/* sized for the benchmark's batches */
	p = b->base + b->used;
	b->used += n;
	return p;
}

/* Best of five passes over all batches; returns seconds, checks the record count. */
static double
run(Buf *batches, size_t nbatches, OtlpEncoding enc, bool with_allocator, size_t *text_bytes)
{
	double		best = 1e9;
	Bump		bump = {malloc(8 << 20), 0, 8 << 20};
	OtlpAllocator al = {bump_alloc, &bump};

	for (int pass = 0; pass < 5; pass++)
	{
		double		t0 = cpu_seconds(),
					t;

		*text_bytes = 0;
		for (size_t i = 0; i < nbatches; i++)
		{
			OtlpBatch	b;
			char		err[256];

			bump.used = 0;
			if (!otlp_decode(batches[i].d, batches[i].len, enc, "service.name",
							 with_allocator ? &al : NULL, &b, err, sizeof(err)))
			{
				fprintf(stderr, "bench_otlp: batch %zu: %s\n", i, err);
				exit(1);
			}
			if (b.count != RECORDS_PER_BATCH)
			{
				fprintf(stderr, "bench_otlp: batch %zu: %zu records\n", i, b.count);
				exit(1);
			}
			for (size_t r = 0; r < b.count; r++)
				*text_bytes += b.records[r].text_len;
			otlp_batch_free(&b);
		}
		t = cpu_seconds() - t0;
		if (t < best)
			best = t;
	}
	free(bump.base);
	return best;
}

int
main(int argc, char **argv)
{
	size_t		nbatches = argc > 1 ? (size_t) atol(argv[1]) : 1000;
	Buf		   *pb = calloc(nbatches, sizeof(Buf));
	Buf		   *js = calloc(nbatches, sizeof(Buf));
	uint64_t	rng = 42;
	size_t		pbytes = 0,
				jbytes = 0;
	size_t		nrec = nbatches * RECORDS_PER_BATCH;

	if (nbatches == 0 || pb == NULL || js == NULL)
	{
		fprintf(stderr, "usage: bench_otlp [BATCHES]\n");
		return 2;
	}
	for (size_t i = 0; i < nbatches; i++)
	{
		make_batch(&rng, i, &pb[i], &js[i]);
		pbytes += pb[i].len;
		jbytes += js[i].len;
	}
	printf("%zu batches of %d records (%d services)\n", nbatches, RECORDS_PER_BATCH, SERVICES);
	for (int e = 0; e < 2; e++)
	{
		for (int a = 0; a < 2; a++)
		{
			size_t		text_bytes;
			Buf		   *in = e == 0 ? pb : js;
			size_t		bytes = e == 0 ? pbytes : jbytes;
			double		t = run(in, nbatches, e == 0 ? OTLP_PROTO : OTLP_JSON, a == 1, &text_bytes);

			printf("%-5s %-9s %10.0f records/s %8.1f MB/s  %6.1f bytes/record in, %5.1f bytes of text out\n",
				   e == 0 ? "proto" : "json", a == 0 ? "malloc" : "allocator", nrec / t,
				   bytes / t / 1e6, (double) bytes / nrec, (double) text_bytes / nrec);
		}
	}
	for (size_t i = 0; i < nbatches; i++)
	{
		free(pb[i].d);
		free(js[i].d);
	}
	free(pb);
	free(js);
	return 0;
}
