/*
 * test_otlp_logs.c -- unit tests of otlp_decode() (src/message/otlp_logs.c)
 *
 * Protobuf inputs are built here with a small encoder of their own; each
 * case that has both encodings checks that they render identically.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "message/otlp_logs.h"
#include "unit.h"

/* ---- a protobuf writer -------------------------------------------------- */

typedef struct Pb
{
	uint8_t    *d;
	size_t		len;
	size_t		cap;
	size_t		open[256];		/* where each open message's bytes start */
	int			depth;
} Pb;

static void
pb_raw(Pb *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 64;
		b->d = realloc(b->d, b->cap);
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
}

static size_t
varint_bytes(uint64_t v, uint8_t *out)
{
	size_t		n = 0;

	do
	{
		out[n] = (uint8_t) (v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void
pb_varint(Pb *b, uint64_t v)
{
	uint8_t		t[10];

	pb_raw(b, t, varint_bytes(v, t));
}

static void
pb_tag(Pb *b, unsigned field, unsigned wt)
{
	pb_varint(b, (uint64_t) field << 3 | wt);
}

static void
pb_uint(Pb *b, unsigned field, uint64_t v)
{
	pb_tag(b, field, 0);
	pb_varint(b, v);
}

static void
pb_fixed64(Pb *b, unsigned field, uint64_t v)
{
	uint8_t		t[8];

	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t) (v >> (8 * i));
	pb_tag(b, field, 1);
	pb_raw(b, t, 8);
}

static void
pb_fixed32(Pb *b, unsigned field, uint32_t v)
{
	uint8_t		t[4];

	for (int i = 0; i < 4; i++)
		t[i] = (uint8_t) (v >> (8 * i));
	pb_tag(b, field, 5);
	pb_raw(b, t, 4);
}

static void
pb_bytes(Pb *b, unsigned field, const void *p, size_t n)
{
	pb_tag(b, field, 2);
	pb_varint(b, n);
	pb_raw(b, p, n);
}

static void
pb_str(Pb *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

static void
pb_double(Pb *b, unsigned field, double v)
{
	uint64_t	bits;

	memcpy(&bits, &v, 8);
	pb_fixed64(b, field, bits);
}

/* Open a submessage as field; pb_end writes its length before it. */
static void
pb_begin(Pb *b, unsigned field)
{
	pb_tag(b, field, 2);
	b->open[b->depth++] = b->len;
}

static void
pb_end(Pb *b)
{
	size_t		start = b->open[--b->depth];
	size_t		n = b->len - start;
	uint8_t		t[10];
	size_t		k = varint_bytes(n, t);

	pb_raw(b, t, k);			/* room */
	memmove(b->d + start + k, b->d + start, n);
	memcpy(b->d + start, t, k);
}

/* A KeyValue with a string value. */
static void
pb_kv_str(Pb *b, unsigned field, const char *key, const char *val)
{
	pb_begin(b, field);
	pb_str(b, 1, key);
	pb_begin(b, 2);
	pb_str(b, 1, val);
	pb_end(b);
	pb_end(b);
}

static void
pb_kv_int(Pb *b, unsigned field, const char *key, int64_t val)
{
	pb_begin(b, field);
	pb_str(b, 1, key);
	pb_begin(b, 2);
	pb_uint(b, 3, (uint64_t) val);
	pb_end(b);
	pb_end(b);
}

/* ---- decoding helpers --------------------------------------------------- */

typedef struct Dec
{
	bool		ok;
	OtlpBatch	b;
	char		err[256];
} Dec;

/* Decode an exact-size heap copy, so ASan catches a read past its end. */
static Dec
decode(const void *buf, size_t len, OtlpEncoding enc, const char *attr)
{
	Dec			r;
	uint8_t    *copy = malloc(len ? len : 1);

	if (len > 0)
		memcpy(copy, buf, len);
	memset(&r, 0, sizeof(r));
	memset(r.err, 'x', sizeof(r.err));
	r.ok = otlp_decode(len ? copy : NULL, len, enc, attr, NULL, &r.b, r.err, sizeof(r.err));
	CHECK(memchr(r.err, '\0', sizeof(r.err)) != NULL);
	if (r.ok)
		CHECK_STR(r.err, "");
	else
	{
		CHECK(r.err[0] != '\0');
		CHECK(r.b.count == 0 && r.b.records == NULL);
	}
	free(copy);
	return r;
}

static Dec
decode_json(const char *json)
{
	return decode(json, strlen(json), OTLP_JSON, "service.name");
}

static Dec
decode_pb(const Pb *b)
{
	return decode(b->d, b->len, OTLP_PROTO, "service.name");
}

/* Structural checks every successful decode must pass. */
static void
check_batch(const Dec *r)
{
	for (size_t i = 0; i < r->b.count; i++)
	{
		const OtlpRecord *rec = &r->b.records[i];

		CHECK_INT(rec->index, ==, i);
		CHECK(rec->text[rec->text_len] == '\0');
		if (rec->stream)
			CHECK(rec->stream[rec->stream_len] == '\0');
	}
}

/* Both decodes succeed with the same records, and these texts. */
static void
check_same(const char *what, const Dec *p, const Dec *j, const char *const *texts, size_t n)
{
	CHECK_MSG(p->ok, "%s: proto failed: %s", what, p->err);
	CHECK_MSG(j->ok, "%s: json failed: %s", what, j->err);
	if (!p->ok || !j->ok)
		return;
	check_batch(p);
	check_batch(j);
	CHECK_MSG(p->b.count == n && j->b.count == n, "%s: %zu and %zu records, expected %zu",
			  what, p->b.count, j->b.count, n);
	for (size_t i = 0; i < n && i < p->b.count && i < j->b.count; i++)
	{
		const OtlpRecord *a = &p->b.records[i],
				   *b = &j->b.records[i];

		if (texts)
		{
			CHECK_STR(a->text, texts[i]);
			CHECK_INT(a->text_len, ==, strlen(texts[i]));
		}
		CHECK_MSG(a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0,
				  "%s: record %zu: proto %s, json %s", what, i, a->text, b->text);
		CHECK_MSG((a->stream == NULL) == (b->stream == NULL) &&
				  (a->stream == NULL || (a->stream_len == b->stream_len &&
										 memcmp(a->stream, b->stream, a->stream_len) == 0)),
				  "%s: record %zu: streams %s, %s", what, i, a->stream ? a->stream : "(null)",
				  b->stream ? b->stream : "(null)");
		CHECK_INT(a->time_unix_nano, ==, b->time_unix_nano);
		CHECK_INT(a->index, ==, b->index);
	}
}

static void
done(Dec *r)
{
	otlp_batch_free(&r->b);
}

static void
pb_free(Pb *b)
{
	free(b->d);
	memset(b, 0, sizeof(*b));
}

/* The proto decode fails with an error containing want. */
static void
check_pb_fails(const Pb *b, const char *want)
{
	Dec			r = decode_pb(b);

	CHECK_MSG(!r.ok && strstr(r.err, want) != NULL, "expected an error with \"%s\", got %s: %s",
			  want, r.ok ? "success" : "failure", r.err);
	done(&r);
}

static void
check_json_fails(const char *json, const char *want)
{
	Dec			r = decode_json(json);

	CHECK_MSG(!r.ok && strstr(r.err, want) != NULL,
			  "%s: expected an error with \"%s\", got %s: %s", json, want,
			  r.ok ? "success" : "failure", r.err);
	done(&r);
}

/* ---- tests -------------------------------------------------------------- */

/* A bump allocator over a caller's buffer (the test gives it 1 MiB). */
static void *
bump(void *c, size_t n)
{
	struct
	{
		char	   *base;
		size_t		used;
	}		   *ctx = c;
	void	   *p;

	n = (n + 15) & ~(size_t) 15;
	if (ctx->used + n > (1 << 20))
		abort();
	p = ctx->base + ctx->used;
	ctx->used += n;
	return p;
}

/* Three services with a few records each, in both encodings. */
/*
 * otlp_single_record of every record of d (decoded from buf): a batch of
 * its own that decodes to one record with the same stream and text.
 */
static void
check_single(const char *what, const uint8_t *buf, OtlpEncoding enc, const Dec *d)
{
	for (size_t i = 0; d->ok && i < d->b.count; i++)
	{
		const OtlpRecord *rec = &d->b.records[i];
		size_t		n = otlp_single_record(buf, enc, rec, NULL, 0);
		uint8_t    *out = malloc(n + 1);
		size_t		small = n > 3 ? n - 3 : 0;
		Dec			one;

		/* too small: nothing written past cap, the same length returned */
		memset(out, 0xAB, n + 1);
		CHECK_INT(otlp_single_record(buf, enc, rec, out, small), ==, n);
		CHECK_INT(otlp_single_record(buf, enc, rec, out, n), ==, n);
		CHECK(out[n] == 0xAB);
		one = decode(out, n, enc, "service.name");
		CHECK_MSG(one.ok, "%s: record %zu alone: %s", what, i, one.err);
		if (one.ok)
		{
			CHECK_INT(one.b.count, ==, 1);
			CHECK_MSG(one.b.count == 1 && one.b.records[0].text_len == rec->text_len &&
					  memcmp(one.b.records[0].text, rec->text, rec->text_len) == 0,
					  "%s: record %zu alone renders %s, not %s", what, i,
					  one.b.count ? one.b.records[0].text : "nothing", rec->text);
			CHECK_MSG(one.b.count == 1 && (one.b.records[0].stream == NULL) == (rec->stream == NULL) &&
					  (rec->stream == NULL ||
					   (one.b.records[0].stream_len == rec->stream_len &&
						memcmp(one.b.records[0].stream, rec->stream, rec->stream_len) == 0)),
					  "%s: record %zu alone has another stream", what, i);
			CHECK_INT(one.b.records[0].time_unix_nano, ==, rec->time_unix_nano);
		}
		done(&one);
		free(out);
	}
}

static void
test_services(void)
{
	static const char *const texts[] = {
		"{\"severity\":\"INFO\",\"body\":\"GET /api/orders/1 200 12ms\",\"attributes\":{\"http.method\":\"GET\",\"http.status_code\":200}}",
		"{\"severity\":\"INFO\",\"body\":\"GET /api/orders/2 200 13ms\",\"attributes\":{\"http.method\":\"GET\",\"http.status_code\":200}}",
		"{\"severity\":\"DEBUG\",\"body\":\"cache hit\"}",
		"{\"severity\":\"INFO\",\"body\":\"login user 7\"}",
		"{\"severity\":\"ERROR\",\"body\":\"disk full\",\"attributes\":{\"disk\":\"/dev/sda1\"}}",
		"{\"severity\":\"WARN\",\"body\":\"slow query 1200ms\"}",
		"{\"severity\":\"INFO\",\"body\":\"tick 1\"}",
		"{\"severity\":\"INFO\",\"body\":\"tick 2\"}",
	};
	static const char *const streams[] = {"api", "api", "api", "auth", "auth", "db", "db", "db"};
	const char *json =
		"{\"resourceLogs\":["
		" {\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}}]},"
		"  \"scopeLogs\":[{\"scope\":{\"name\":\"s\"},\"logRecords\":["
		"   {\"timeUnixNano\":\"1000\",\"severityNumber\":9,\"severityText\":\"INFO\",\"body\":{\"stringValue\":\"GET /api/orders/1 200 12ms\"},"
		"    \"attributes\":[{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}}]},"
		"   {\"timeUnixNano\":\"1001\",\"severityNumber\":9,\"body\":{\"stringValue\":\"GET /api/orders/2 200 13ms\"},"
		"    \"attributes\":[{\"key\":\"http.status_code\",\"value\":{\"intValue\":200}},{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}}]}]},"
		"   {\"logRecords\":[{\"timeUnixNano\":1002,\"severityNumber\":\"SEVERITY_NUMBER_DEBUG\",\"body\":{\"stringValue\":\"cache hit\"}}]}]},"
		" {\"resource\":{\"attributes\":[{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h1\"}},{\"key\":\"service.name\",\"value\":{\"stringValue\":\"auth\"}}]},"
		"  \"scopeLogs\":[{\"logRecords\":["
		"   {\"severityText\":\"INFO\",\"body\":{\"stringValue\":\"login user 7\"}},"
		"   {\"severityText\":\"ERROR\",\"severityNumber\":17,\"body\":{\"stringValue\":\"disk full\"},\"attributes\":[{\"key\":\"disk\",\"value\":{\"stringValue\":\"/dev/sda1\"}}]}]}]},"
		" {\"scopeLogs\":[{\"logRecords\":["
		"   {\"severityNumber\":13,\"body\":{\"stringValue\":\"slow query 1200ms\"}},"
		"   {\"severityNumber\":9,\"body\":{\"stringValue\":\"tick 1\"}},"
		"   {\"severityNumber\":10,\"body\":{\"stringValue\":\"tick 2\"}}]}],"
		"  \"resource\":{\"attributes\":[{\"value\":{\"stringValue\":\"db\"},\"key\":\"service.name\"}]}}"
		"]}";
	Pb			b = {0};
	Dec			p,
				j;

	/* api: two scopes */
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_kv_str(&b, 1, "service.name", "api");
	pb_end(&b);
	pb_begin(&b, 2);
	pb_begin(&b, 1);
	pb_str(&b, 1, "s");
	pb_end(&b);
	pb_begin(&b, 2);
	pb_fixed64(&b, 1, 1000);
	pb_uint(&b, 2, 9);
	pb_str(&b, 3, "INFO");
	pb_begin(&b, 5);
	pb_str(&b, 1, "GET /api/orders/1 200 12ms");
	pb_end(&b);
	pb_kv_int(&b, 6, "http.status_code", 200);
	pb_kv_str(&b, 6, "http.method", "GET");
	pb_end(&b);
	pb_begin(&b, 2);
	/* fields in another order */
	pb_kv_int(&b, 6, "http.status_code", 200);
	pb_begin(&b, 5);
	pb_str(&b, 1, "GET /api/orders/2 200 13ms");
	pb_end(&b);
	pb_uint(&b, 2, 9);
	pb_kv_str(&b, 6, "http.method", "GET");
	pb_fixed64(&b, 1, 1001);
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_fixed64(&b, 1, 1002);
	pb_uint(&b, 2, 5);
	pb_begin(&b, 5);
	pb_str(&b, 1, "cache hit");
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	/* auth */
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_kv_str(&b, 1, "host.name", "h1");
	pb_kv_str(&b, 1, "service.name", "auth");
	pb_end(&b);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_str(&b, 3, "INFO");
	pb_begin(&b, 5);
	pb_str(&b, 1, "login user 7");
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 2);
	pb_str(&b, 3, "ERROR");
	pb_uint(&b, 2, 17);
	pb_begin(&b, 5);
	pb_str(&b, 1, "disk full");
	pb_end(&b);
	pb_kv_str(&b, 6, "disk", "/dev/sda1");
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	/* db: the resource after its records */
	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_uint(&b, 2, 13);
	pb_begin(&b, 5);
	pb_str(&b, 1, "slow query 1200ms");
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 2);
	pb_uint(&b, 2, 9);
	pb_begin(&b, 5);
	pb_str(&b, 1, "tick 1");
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 2);
	pb_uint(&b, 2, 10);
	pb_begin(&b, 5);
	pb_str(&b, 1, "tick 2");
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_str(&b, 1, "db");
	pb_end(&b);
	pb_str(&b, 1, "service.name");
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);

	p = decode_pb(&b);
	j = decode_json(json);
	check_same("services", &p, &j, texts, 8);
	check_single("services (proto)", b.d, OTLP_PROTO, &p);
	check_single("services (json)", (const uint8_t *) json, OTLP_JSON, &j);
	{
		/* no stream attribute: alone, still none */
		const char *nostream =
			"{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h\"}}]},"
			"\"scopeLogs\":[{\"logRecords\":[ {\"body\":{\"stringValue\":\"x\"}} , null ]}]}]}";
		Dec			ns = decode_json(nostream);

		CHECK(ns.ok && ns.b.count == 2 && ns.b.records[0].stream == NULL);
		check_single("no stream (json)", (const uint8_t *) nostream, OTLP_JSON, &ns);
		done(&ns);
	}
	if (p.ok && p.b.count == 8)
	{
		for (size_t i = 0; i < 8; i++)
		{
			CHECK_STR(p.b.records[i].stream, streams[i]);
			CHECK_INT(p.b.records[i].stream_len, ==, strlen(streams[i]));
		}
		CHECK_INT(p.b.records[0].time_unix_nano, ==, 1000);
		CHECK_INT(p.b.records[2].time_unix_nano, ==, 1002);
		CHECK_INT(p.b.records[3].time_unix_nano, ==, 0);
	}

	/*
	 * Every prefix of the proto batch: a clean failure, or a batch (a cut
	 * at a field boundary of LogsData is a shorter valid batch).
	 */
	{
		size_t		ok = 0;

		for (size_t n = 0; n < b.len; n++)
		{
			Dec			t = decode(b.d, n, OTLP_PROTO, "service.name");

			if (t.ok)
			{
				ok++;
				check_batch(&t);
			}
			done(&t);
		}
		CHECK_INT(ok, ==, 3);	/* 0 bytes, after the first and second ResourceLogs */
	}
	/* and of the JSON: never valid before the end */
	{
		size_t		len = strlen(json),
					ok = 0;

		for (size_t n = 0; n < len; n++)
		{
			Dec			t = decode(json, n, OTLP_JSON, "service.name");

			ok += t.ok;
			done(&t);
		}
		CHECK_INT(ok, ==, 0);
	}

	/* a caller's allocator: the same records */
	{
		char	   *arena = malloc(1 << 20);
		struct
		{
			char	   *base;
			size_t		used;
		}			ctx = {arena, 0};
		OtlpAllocator al;
		OtlpBatch	ab;
		char		err[128];

		al.alloc = bump;
		al.ctx = &ctx;
		CHECK(otlp_decode(b.d, b.len, OTLP_PROTO, "service.name", &al, &ab, err, sizeof(err)));
		CHECK_INT(ab.count, ==, 8);
		for (size_t i = 0; i < ab.count && i < 8; i++)
		{
			CHECK_STR(ab.records[i].text, texts[i]);
			CHECK((char *) ab.records[i].text >= arena && (char *) ab.records[i].text < arena + (1 << 20));
		}
		CHECK(ctx.used > 0);
		otlp_batch_free(&ab);	/* a no-op */
		ctx.used = 0;
		CHECK(otlp_decode((const uint8_t *) json, strlen(json), OTLP_JSON, "service.name", &al,
						  &ab, err, sizeof(err)));
		CHECK_INT(ab.count, ==, 8);
		free(arena);
	}
	done(&p);
	done(&j);
	pb_free(&b);
}

/* One record with body b (proto) / body (JSON), in both encodings. */
static void
check_body(const char *what, const Pb *anyvalue, const char *json_body, const char *expect)
{
	Pb			b = {0};
	char	   *json = malloc(strlen(json_body) + 200);
	char	   *text = malloc(strlen(expect) + 20);
	const char *texts[1];
	Dec			p,
				j;

	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_bytes(&b, 5, anyvalue->d, anyvalue->len);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	sprintf(json, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":%s}]}]}]}", json_body);
	sprintf(text, "{\"body\":%s}", expect);
	texts[0] = text;
	p = decode_pb(&b);
	j = decode_json(json);
	check_same(what, &p, &j, texts, 1);
	done(&p);
	done(&j);
	pb_free(&b);
	free(json);
	free(text);
}

static void
test_any_values(void)
{
	Pb			v = {0};

	pb_str(&v, 1, "a \"quoted\"\n\ttab \\ \x01 caf\xc3\xa9 \xf0\x9f\x98\x80");
	check_body("string", &v, "{\"stringValue\":\"a \\\"quoted\\\"\\n\\ttab \\\\ \\u0001 caf\\u00e9 \\ud83d\\ude00\"}",
			   "\"a \\\"quoted\\\"\\n\\ttab \\\\ \\u0001 caf\xc3\xa9 \xf0\x9f\x98\x80\"");
	pb_free(&v);

	pb_uint(&v, 2, 1);
	check_body("bool", &v, "{\"boolValue\":true}", "true");
	pb_free(&v);
	pb_uint(&v, 2, 0);
	check_body("false", &v, "{\"boolValue\":false}", "false");
	pb_free(&v);

	pb_uint(&v, 3, (uint64_t) INT64_MIN);
	check_body("int", &v, "{\"intValue\":\"-9223372036854775808\"}", "-9223372036854775808");
	pb_free(&v);
	pb_uint(&v, 3, (uint64_t) -42);
	check_body("negative int", &v, "{\"intValue\":-42}", "-42");
	pb_free(&v);

	pb_double(&v, 4, 1.5);
	check_body("double", &v, "{\"doubleValue\":1.5}", "1.5");
	pb_free(&v);
	pb_double(&v, 4, 0.1);
	check_body("double 0.1", &v, "{\"doubleValue\":\"0.1\"}", "0.10000000000000001");
	pb_free(&v);
	pb_double(&v, 4, 1e300);
	check_body("double 1e300", &v, "{\"doubleValue\":1E+300}", "1.0000000000000001e+300");
	pb_free(&v);
	pb_double(&v, 4, NAN);
	check_body("NaN", &v, "{\"doubleValue\":\"NaN\"}", "\"NaN\"");
	pb_free(&v);
	pb_double(&v, 4, -INFINITY);
	check_body("-Infinity", &v, "{\"doubleValue\":\"-Infinity\"}", "\"-Infinity\"");
	pb_free(&v);
	pb_double(&v, 4, INFINITY);
	check_body("Infinity", &v, "{\"doubleValue\":\"Infinity\"}", "\"Infinity\"");
	pb_free(&v);

	pb_bytes(&v, 7, "\x00\xff\x10hello", 8);
	check_body("bytes", &v, "{\"bytesValue\":\"AP8QaGVsbG8=\"}", "\"AP8QaGVsbG8=\"");
	pb_free(&v);
	pb_bytes(&v, 7, "\xfb\xff", 2);
	check_body("bytes url-safe unpadded", &v, "{\"bytesValue\":\"-_8\"}", "\"+/8=\"");
	pb_free(&v);
	pb_bytes(&v, 7, "", 0);
	check_body("empty bytes", &v, "{\"bytesValue\":\"\"}", "\"\"");
	pb_free(&v);

	/* an empty AnyValue is null */
	check_body("empty", &v, "{}", "null");

	/* an array of each type, and a kvlist holding an array and a kvlist */
	pb_begin(&v, 5);
	pb_begin(&v, 1);
	pb_str(&v, 1, "x");
	pb_end(&v);
	pb_begin(&v, 1);
	pb_uint(&v, 3, 7);
	pb_end(&v);
	pb_begin(&v, 1);
	pb_end(&v);
	pb_begin(&v, 1);
	pb_begin(&v, 5);
	pb_end(&v);
	pb_end(&v);
	pb_end(&v);
	check_body("array", &v,
			   "{\"arrayValue\":{\"values\":[{\"stringValue\":\"x\"},{\"intValue\":\"7\"},{},{\"arrayValue\":{}}]}}",
			   "[\"x\",7,null,[]]");
	pb_free(&v);

	pb_begin(&v, 6);
	pb_kv_str(&v, 1, "z", "last");
	pb_begin(&v, 1);
	pb_str(&v, 1, "a");
	pb_begin(&v, 2);
	pb_begin(&v, 6);
	pb_kv_int(&v, 1, "n", 1);
	pb_end(&v);
	pb_end(&v);
	pb_end(&v);
	pb_kv_str(&v, 1, "z", "again");
	pb_begin(&v, 1);
	pb_str(&v, 1, "nothing");
	pb_end(&v);
	pb_end(&v);
	check_body("kvlist", &v,
			   "{\"kvlistValue\":{\"values\":[{\"key\":\"z\",\"value\":{\"stringValue\":\"last\"}},"
			   "{\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"n\",\"value\":{\"intValue\":\"1\"}}]}},\"key\":\"a\"},"
			   "{\"key\":\"z\",\"value\":{\"stringValue\":\"again\"}},{\"key\":\"nothing\"}]}}",
			   "{\"z\":\"last\",\"a\":{\"n\":1},\"z\":\"again\",\"nothing\":null}");
	pb_free(&v);

	/* oneof: the last one set wins */
	pb_str(&v, 1, "first");
	pb_uint(&v, 3, 5);
	check_body("oneof", &v, "{\"stringValue\":\"first\",\"intValue\":\"5\"}", "5");
	pb_free(&v);

	/* invalid UTF-8 in protobuf strings: U+FFFD per maximal invalid subpart */
	{
		Pb			b = {0};
		Dec			r;

		pb_begin(&b, 1);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_begin(&b, 5);
		pb_str(&b, 1, "a\xff" "b\xe2\x82" "c\xed\xa0\x80" "d\xc3");
		pb_end(&b);
		pb_kv_str(&b, 6, "k\x80", "v");
		pb_end(&b);
		pb_end(&b);
		pb_end(&b);
		r = decode_pb(&b);
		CHECK(r.ok && r.b.count == 1);
		if (r.ok && r.b.count == 1)
			CHECK_STR(r.b.records[0].text,
					  "{\"body\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
					  "d\xef\xbf\xbd\",\"attributes\":{\"k\xef\xbf\xbd\":\"v\"}}");
		done(&r);
		pb_free(&b);
	}
}

/* A one-record batch whose LogRecord is rec (proto) / rec (JSON members). */
static Dec
one_pb(const Pb *rec)
{
	Pb			b = {0};
	Dec			r;

	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_bytes(&b, 2, rec->d, rec->len);
	pb_end(&b);
	pb_end(&b);
	r = decode_pb(&b);
	pb_free(&b);
	return r;
}

static Dec
one_json(const char *members)
{
	char	   *json = malloc(strlen(members) + 100);
	Dec			r;

	sprintf(json, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{%s}]}]}]}", members);
	r = decode_json(json);
	free(json);
	return r;
}

static void
check_record(const char *what, const Pb *rec, const char *members, const char *expect)
{
	Dec			p = one_pb(rec),
				j = one_json(members);
	const char *texts[1] = {expect};

	check_same(what, &p, &j, texts, 1);
	done(&p);
	done(&j);
}

static void
test_severity(void)
{
	Pb			r = {0};
	static const struct
	{
		int			num;
		const char *name;
	}			nums[] = {
		{1, "TRACE"}, {4, "TRACE"}, {5, "DEBUG"}, {8, "DEBUG"}, {9, "INFO"}, {12, "INFO"},
		{13, "WARN"}, {16, "WARN"}, {17, "ERROR"}, {20, "ERROR"}, {21, "FATAL"}, {24, "FATAL"},
	};

	/* the text wins */
	pb_uint(&r, 2, 17);
	pb_str(&r, 3, "Err \"x\"");
	check_record("text", &r, "\"severityNumber\":17,\"severityText\":\"Err \\\"x\\\"\"",
				 "{\"severity\":\"Err \\\"x\\\"\"}");
	pb_free(&r);
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
	{
		char		members[64],
					expect[64];

		pb_uint(&r, 2, (uint64_t) nums[i].num);
		sprintf(members, "\"severityNumber\":%d", nums[i].num);
		sprintf(expect, "{\"severity\":\"%s\"}", nums[i].name);
		check_record("number", &r, members, expect);
		pb_free(&r);
	}
	/* enum names, and numbers in strings */
	{
		Dec			j = one_json("\"severityNumber\":\"SEVERITY_NUMBER_ERROR3\"");

		CHECK(j.ok && j.b.count == 1 && strcmp(j.b.records[0].text, "{\"severity\":\"ERROR\"}") == 0);
		done(&j);
		j = one_json("\"severityNumber\":\"13\"");
		CHECK(j.ok && j.b.count == 1 && strcmp(j.b.records[0].text, "{\"severity\":\"WARN\"}") == 0);
		done(&j);
	}
	/* out of range, unspecified, empty text: no severity */
	pb_uint(&r, 2, 25);
	check_record("25", &r, "\"severityNumber\":25", "{}");
	pb_free(&r);
	pb_uint(&r, 2, (uint64_t) -3);
	check_record("-3", &r, "\"severityNumber\":-3", "{}");
	pb_free(&r);
	pb_uint(&r, 2, 0);
	pb_str(&r, 3, "");
	check_record("unspecified", &r, "\"severityNumber\":\"SEVERITY_NUMBER_UNSPECIFIED\",\"severityText\":\"\"", "{}");
	pb_free(&r);
	pb_str(&r, 3, "");
	pb_uint(&r, 2, 10);
	check_record("empty text", &r, "\"severityText\":\"\",\"severityNumber\":10", "{\"severity\":\"INFO\"}");
	pb_free(&r);
	check_record("absent", &r, "", "{}");
	check_record("nulls", &r, "\"severityText\":null,\"severityNumber\":null,\"body\":null,\"attributes\":null", "{}");
	check_json_fails("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":\"LOUD\"}]}]}]}",
					 "severityNumber at byte 64 is not an integer");
	check_json_fails("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":1.5}]}]}]}",
					 "not an integer");
	check_json_fails("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":4294967296}]}]}]}",
					 "out of range");
}

static void
test_attributes(void)
{
	Pb			r = {0};

	/* sorted bytewise, the last duplicate winning, attribute values of each kind */
	pb_kv_str(&r, 6, "b", "1");
	pb_kv_str(&r, 6, "a", "first");
	pb_kv_int(&r, 6, "B", 2);
	pb_kv_str(&r, 6, "a", "second");
	pb_kv_str(&r, 6, "\xc3\xa9", "e-acute");
	pb_kv_str(&r, 6, "", "empty key");
	pb_begin(&r, 6);
	pb_str(&r, 1, "n");
	pb_end(&r);
	pb_begin(&r, 5);
	pb_str(&r, 1, "body");
	pb_end(&r);
	pb_uint(&r, 2, 9);
	check_record("attributes", &r,
				 "\"attributes\":[{\"key\":\"b\",\"value\":{\"stringValue\":\"1\"}},"
				 "{\"key\":\"a\",\"value\":{\"stringValue\":\"first\"}},"
				 "{\"key\":\"B\",\"value\":{\"intValue\":\"2\"}},"
				 "{\"value\":{\"stringValue\":\"second\"},\"key\":\"a\"},"
				 "{\"key\":\"\\u00e9\",\"value\":{\"stringValue\":\"e-acute\"}},"
				 "{\"key\":\"\",\"value\":{\"stringValue\":\"empty key\"}},"
				 "{\"key\":\"n\"}],"
				 "\"body\":{\"stringValue\":\"body\"},\"severityNumber\":9",
				 "{\"severity\":\"INFO\",\"body\":\"body\",\"attributes\":{\"\":\"empty key\",\"B\":2,"
				 "\"a\":\"second\",\"b\":\"1\",\"n\":null,\"\xc3\xa9\":\"e-acute\"}}");
	pb_free(&r);

	/* many attributes: the merge sort, with duplicates across its runs */
	{
		char		members[20000],
					expect[20000];
		size_t		m = 0,
					e = 0;

		m += (size_t) sprintf(members + m, "\"attributes\":[");
		e += (size_t) sprintf(expect + e, "{\"attributes\":{");
		for (int i = 0; i < 100; i++)
		{
			char		key[16];

			sprintf(key, "k%03d", (i * 37) % 50);	/* each key twice */
			pb_kv_int(&r, 6, key, i);
			m += (size_t) sprintf(members + m, "%s{\"key\":\"%s\",\"value\":{\"intValue\":%d}}",
								  i ? "," : "", key, i);
		}
		for (int k = 0; k < 50; k++)
		{
			int			last = -1;

			for (int i = 0; i < 100; i++)
				if ((i * 37) % 50 == k)
					last = i;
			e += (size_t) sprintf(expect + e, "%s\"k%03d\":%d", k ? "," : "", k, last);
		}
		sprintf(members + m, "]");
		sprintf(expect + e, "}}");
		check_record("100 attributes", &r, members, expect);
		pb_free(&r);
	}
}

static void
test_streams(void)
{
	static const struct
	{
		const char *what;
		const char *json_value;
		const char *stream;		/* NULL: none */
	}			cases[] = {
		{"string", "{\"stringValue\":\"checkout\"}", "checkout"},
		{"int", "{\"intValue\":\"42\"}", "42"},
		{"negative int", "{\"intValue\":-7}", "-7"},
		{"double", "{\"doubleValue\":2.5}", "2.5"},
		{"NaN", "{\"doubleValue\":\"NaN\"}", "NaN"},
		{"bool", "{\"boolValue\":false}", "false"},
		{"array", "{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"}]}}", NULL},
		{"bytes", "{\"bytesValue\":\"YQ==\"}", NULL},
		{"empty", "{}", NULL},
		{"escaped", "{\"stringValue\":\"a\\u0000b\\\"\"}", "a\0b\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		json[512];
		Dec			j;

		sprintf(json, "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
				"{\"key\":\"service.name\",\"value\":%s},{\"key\":\"service.namespace\",\"value\":{\"stringValue\":\"x\"}}]},"
				"\"scopeLogs\":[{\"logRecords\":[{},{}]}]}]}", cases[i].json_value);
		j = decode_json(json);
		CHECK_MSG(j.ok && j.b.count == 2, "%s: %s", cases[i].what, j.err);
		for (size_t k = 0; j.ok && k < j.b.count; k++)
		{
			const OtlpRecord *rec = &j.b.records[k];

			if (cases[i].stream == NULL)
				CHECK_MSG(rec->stream == NULL, "%s: stream %s", cases[i].what, rec->stream);
			else
			{
				size_t		n = i == 9 ? 4 : strlen(cases[i].stream);

				CHECK_MSG(rec->stream != NULL && rec->stream_len == n &&
						  memcmp(rec->stream, cases[i].stream, n) == 0 && rec->stream[n] == '\0',
						  "%s: stream %s", cases[i].what, rec->stream ? rec->stream : "(null)");
			}
		}
		done(&j);
	}

	/* proto: int, double and missing; another attribute name; two Resources add up */
	{
		Pb			b = {0};
		Dec			r;

		pb_begin(&b, 1);
		pb_begin(&b, 1);
		pb_kv_int(&b, 1, "service.name", 42);
		pb_end(&b);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_end(&b);
		pb_end(&b);
		pb_end(&b);
		pb_begin(&b, 1);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_end(&b);
		pb_end(&b);
		pb_begin(&b, 1);
		pb_kv_str(&b, 1, "service.names", "no");
		pb_kv_str(&b, 1, "k8s.pod", "pod-1");
		pb_end(&b);
		pb_end(&b);
		pb_begin(&b, 1);
		pb_begin(&b, 1);
		pb_begin(&b, 1);
		pb_str(&b, 1, "service.name");
		pb_begin(&b, 2);
		pb_double(&b, 4, -0.25);
		pb_end(&b);
		pb_end(&b);
		pb_end(&b);
		pb_begin(&b, 1);
		pb_kv_str(&b, 1, "other", "x");
		pb_end(&b);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_end(&b);
		pb_end(&b);
		pb_end(&b);
		r = decode_pb(&b);
		CHECK(r.ok && r.b.count == 3);
		if (r.ok && r.b.count == 3)
		{
			CHECK_STR(r.b.records[0].stream, "42");
			CHECK(r.b.records[1].stream == NULL);
			CHECK_STR(r.b.records[2].stream, "-0.25");
			CHECK_STR(r.b.records[0].text, "{}");
		}
		done(&r);
		r = decode(b.d, b.len, OTLP_PROTO, "k8s.pod");
		CHECK(r.ok && r.b.count == 3);
		if (r.ok && r.b.count == 3)
		{
			CHECK(r.b.records[0].stream == NULL);
			CHECK_STR(r.b.records[1].stream, "pod-1");
			CHECK(r.b.records[2].stream == NULL);
		}
		done(&r);
		pb_free(&b);
	}
}

static void
test_empty(void)
{
	static const char *const ok[] = {
		"{}", " {\"resourceLogs\":[]} ", "{\"resourceLogs\":null}",
		"{\"resourceLogs\":[{}]}", "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[]}]}]}",
		"{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"a\"}}]},\"scopeLogs\":[]}]}",
		"{\"resourceLogs\":[null,{\"scopeLogs\":[null]}]}",
	};
	Pb			b = {0};
	Dec			r;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
	{
		r = decode_json(ok[i]);
		CHECK_MSG(r.ok && r.b.count == 0 && r.b.records == NULL, "%s: %s", ok[i], r.err);
		done(&r);
	}
	r = decode(NULL, 0, OTLP_PROTO, "service.name");
	CHECK(r.ok && r.b.count == 0);
	done(&r);
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_kv_str(&b, 1, "service.name", "a");
	pb_end(&b);
	pb_begin(&b, 2);
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 1);
	pb_end(&b);
	r = decode_pb(&b);
	CHECK(r.ok && r.b.count == 0);
	done(&r);
	pb_free(&b);
}

/* Unknown fields of every wire type at every level are skipped. */
static void
test_unknown_fields(void)
{
	Pb			b = {0};
	Dec			p,
				j;
	const char *json =
		"{\"x\":[1,{\"y\":[null,true]}],\"resourceLogs\":[{\"schemaUrl\":\"u\",\"resource\":{\"droppedAttributesCount\":0,"
		"\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"s\",\"other\":{}},\"extra\":1}],\"entityRefs\":[]},"
		"\"scopeLogs\":[{\"scope\":{\"name\":\"n\",\"attributes\":[{\"key\":\"k\"}]},\"schemaUrl\":\"\","
		"\"logRecords\":[{\"observedTimeUnixNano\":\"5\",\"timeUnixNano\":\"1700000000000000000\",\"traceId\":\"0102\",\"spanId\":\"03\","
		"\"flags\":1,\"droppedAttributesCount\":2,\"eventName\":\"e\",\"future\":{\"a\":[[[]]]},"
		"\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"intValue\":\"1\"}}],\"more\":\"x\"}}}]}]}],\"z\":null}";

	/* unknown fields: varint, fixed64, length-delimited, fixed32 */
#define UNKNOWN(b) do { pb_uint((b), 100, 5); pb_fixed64((b), 101, 6); pb_str((b), 102, "u"); pb_fixed32((b), 103, 7); } while (0)
	UNKNOWN(&b);
	pb_begin(&b, 1);
	UNKNOWN(&b);
	pb_str(&b, 3, "u");
	pb_begin(&b, 1);
	pb_uint(&b, 2, 0);
	UNKNOWN(&b);
	pb_begin(&b, 1);
	pb_str(&b, 1, "service.name");
	UNKNOWN(&b);
	pb_begin(&b, 2);
	pb_str(&b, 1, "s");
	UNKNOWN(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_begin(&b, 2);
	UNKNOWN(&b);
	pb_begin(&b, 1);
	pb_str(&b, 1, "n");
	UNKNOWN(&b);
	pb_end(&b);
	pb_str(&b, 3, "");
	pb_begin(&b, 2);
	UNKNOWN(&b);
	pb_fixed64(&b, 11, 5);
	pb_fixed64(&b, 1, 1700000000000000000ULL);
	pb_bytes(&b, 9, "\x01\x02", 2);
	pb_bytes(&b, 10, "\x03", 1);
	pb_fixed32(&b, 8, 1);
	pb_uint(&b, 7, 2);
	pb_str(&b, 12, "e");
	pb_begin(&b, 5);
	UNKNOWN(&b);
	pb_begin(&b, 6);
	UNKNOWN(&b);
	pb_begin(&b, 1);
	UNKNOWN(&b);
	pb_str(&b, 1, "k");
	pb_begin(&b, 2);
	pb_uint(&b, 3, 1);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	UNKNOWN(&b);
	p = decode_pb(&b);
	j = decode_json(json);
	{
		const char *texts[1] = {"{\"body\":{\"k\":1}}"};

		check_same("unknown fields", &p, &j, texts, 1);
	}
	if (p.ok && p.b.count == 1)
	{
		CHECK_STR(p.b.records[0].stream, "s");
		CHECK_INT(p.b.records[0].time_unix_nano, ==, 1700000000000000000ULL);
	}
	done(&p);
	done(&j);
	pb_free(&b);
}

static void
test_proto_errors(void)
{
	Pb			b = {0};

	/* wrong wire types of known fields */
	pb_uint(&b, 1, 3);
	check_pb_fails(&b, "field 1 of LogsData at byte 0 has wire type 0, expected 2 (length-delimited)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_uint(&b, 2, 1);
	pb_end(&b);
	check_pb_fails(&b, "field 2 of ResourceLogs at byte 2 has wire type 0, expected 2 (length-delimited)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_uint(&b, 1, 5);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	check_pb_fails(&b, "field 1 of LogRecord at byte 6 has wire type 0, expected 1 (64-bit)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_fixed64(&b, 8, 5);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	check_pb_fails(&b, "field 8 of LogRecord at byte 6 has wire type 1, expected 5 (32-bit)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_begin(&b, 2);
	pb_begin(&b, 2);
	pb_begin(&b, 5);
	pb_fixed32(&b, 3, 5);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	check_pb_fails(&b, "field 3 of AnyValue at byte 8 has wire type 5, expected 0 (varint)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_uint(&b, 1, 5);
	pb_end(&b);
	pb_end(&b);
	pb_end(&b);
	check_pb_fails(&b, "field 1 of KeyValue");
	pb_free(&b);

	/* groups and invalid wire types, anywhere */
	pb_tag(&b, 5, 3);
	check_pb_fails(&b, "field 5 of LogsData at byte 0 is a group (wire type 3)");
	pb_free(&b);
	pb_begin(&b, 1);
	pb_tag(&b, 9, 4);
	pb_end(&b);
	check_pb_fails(&b, "group (wire type 4)");
	pb_free(&b);
	pb_tag(&b, 5, 6);
	check_pb_fails(&b, "invalid wire type 6");
	pb_free(&b);
	pb_tag(&b, 5, 7);
	check_pb_fails(&b, "invalid wire type 7");
	pb_free(&b);
	pb_tag(&b, 0, 0);
	pb_varint(&b, 0);
	check_pb_fails(&b, "invalid field number 0");
	pb_free(&b);

	/* truncations */
	pb_raw(&b, "\x0a\x80", 2);
	check_pb_fails(&b, "truncated varint at byte 1");
	pb_free(&b);
	pb_raw(&b, "\x0a\x05\x0a\x00", 4);
	check_pb_fails(&b, "length 5 of field 1 of LogsData at byte 1 runs past its end at byte 4");
	pb_free(&b);
	pb_raw(&b, "\x0a\x04\x0a\x05\x00\x00", 6);
	check_pb_fails(&b, "length 5 of field 1 of ResourceLogs at byte 3 runs past its end at byte 6");
	pb_free(&b);
	pb_raw(&b, "\x0a\x03\x11\x00\x00", 5);
	check_pb_fails(&b, "truncated 64-bit value of field 2 of ResourceLogs at byte 3");
	pb_free(&b);
	pb_raw(&b, "\x1d\x00", 2);
	check_pb_fails(&b, "truncated 32-bit value");
	pb_free(&b);
	pb_raw(&b, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11);
	check_pb_fails(&b, "varint longer than 64 bits at byte 1");
	pb_free(&b);
	pb_raw(&b, "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);	/* 2^64 - 1 is fine */
	{
		Dec			r = decode_pb(&b);

		CHECK(r.ok);
		done(&r);
	}
	pb_free(&b);
	pb_raw(&b, "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);	/* a huge length */
	check_pb_fails(&b, "runs past its end");
	pb_free(&b);
}

/* depth nested arrayValues around a string, as the body: proto and JSON. */
static void
nested(int depth, Pb *any, char **json)
{
	size_t		cap = (size_t) depth * 40 + 100,
				n = 0;
	char	   *j = malloc(cap);

	for (int i = 1; i < depth; i++)
	{
		pb_begin(any, 5);
		pb_begin(any, 1);
		n += (size_t) sprintf(j + n, "{\"arrayValue\":{\"values\":[");
	}
	pb_str(any, 1, "deep");
	n += (size_t) sprintf(j + n, "{\"stringValue\":\"deep\"}");
	for (int i = 1; i < depth; i++)
	{
		pb_end(any);
		pb_end(any);
		n += (size_t) sprintf(j + n, "]}}");
	}
	*json = j;
}

static void
test_depth(void)
{
	Pb			v = {0};
	char	   *json,
			   *expect = malloc(200),
			   *e;

	/* OTLP_MAX_DEPTH levels are fine */
	nested(OTLP_MAX_DEPTH, &v, &json);
	e = expect;
	for (int i = 1; i < OTLP_MAX_DEPTH; i++)
		*e++ = '[';
	e += sprintf(e, "\"deep\"");
	for (int i = 1; i < OTLP_MAX_DEPTH; i++)
		*e++ = ']';
	*e = '\0';
	check_body("32 levels", &v, json, expect);
	pb_free(&v);
	free(json);

	/* one more fails, in both encodings */
	nested(OTLP_MAX_DEPTH + 1, &v, &json);
	{
		Pb			b = {0};
		char	   *doc = malloc(strlen(json) + 100);

		pb_begin(&b, 1);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_bytes(&b, 5, v.d, v.len);
		pb_end(&b);
		pb_end(&b);
		pb_end(&b);
		check_pb_fails(&b, "AnyValue nested deeper than 32 levels at byte");
		sprintf(doc, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":%s}]}]}]}", json);
		check_json_fails(doc, "AnyValue nested deeper than 32 levels at byte");
		free(doc);
		pb_free(&b);
	}
	pb_free(&v);
	free(json);
	free(expect);

	/* a KeyValue in a kvlist at the limit: its value at 33 fails even when absent */
	{
		Pb			b = {0};
		char	   *doc = malloc(OTLP_MAX_DEPTH * 40 + 200);
		size_t		k = (size_t) sprintf(doc, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");

		pb_begin(&b, 1);
		pb_begin(&b, 2);
		pb_begin(&b, 2);
		pb_begin(&b, 5);
		for (int i = 1; i < OTLP_MAX_DEPTH; i++)
		{
			pb_begin(&b, 5);
			pb_begin(&b, 1);
			k += (size_t) sprintf(doc + k, "{\"arrayValue\":{\"values\":[");
		}
		pb_begin(&b, 6);
		pb_begin(&b, 1);
		pb_str(&b, 1, "k");
		k += (size_t) sprintf(doc + k, "{\"kvlistValue\":{\"values\":[{\"key\":\"k\"}]}}");
		for (int i = 0; i < 2 * (OTLP_MAX_DEPTH - 1) + 6; i++)
			pb_end(&b);
		for (int i = 1; i < OTLP_MAX_DEPTH; i++)
			k += (size_t) sprintf(doc + k, "]}}");
		sprintf(doc + k, "}]}]}]}");
		check_pb_fails(&b, "AnyValue nested deeper than 32 levels");
		check_json_fails(doc, "AnyValue nested deeper than 32 levels");
		free(doc);
		pb_free(&b);
	}

	/* 100,000 levels: in an unknown field, and as AnyValues; fails fast, no stack */
	{
		size_t		n = 100000;
		char	   *doc = malloc(n * 30 + 200);
		size_t		k = (size_t) sprintf(doc, "{\"x\":");
		clock_t		t0 = clock();

		for (size_t i = 0; i < n; i++)
			doc[k++] = '[';
		for (size_t i = 0; i < n; i++)
			doc[k++] = ']';
		doc[k++] = '}';
		doc[k] = '\0';
		check_json_fails(doc, "JSON nested deeper than");
		k = (size_t) sprintf(doc, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
		for (size_t i = 0; i < n; i++)
			k += (size_t) sprintf(doc + k, "{\"arrayValue\":{\"values\":[");
		doc[k] = '\0';
		check_json_fails(doc, "AnyValue nested deeper than 32 levels");
		CHECK_MSG((double) (clock() - t0) / CLOCKS_PER_SEC < 2.0, "%.2f s",
				  (double) (clock() - t0) / CLOCKS_PER_SEC);
		free(doc);
	}
	/* and in protobuf: below a KeyValue's key, a deep chain is not descended */
	{
		Pb			b = {0};
		size_t		n = 100000;
		size_t	   *inner = malloc((n + 1) * sizeof(size_t));

		/* field 1 in field 1 in ...: the lengths from the inside out */
		inner[n] = 0;
		for (size_t i = n; i-- > 0;)
		{
			uint8_t		t[10];

			inner[i] = 1 + varint_bytes(inner[i + 1], t) + inner[i + 1];
		}
		for (size_t i = 0; i < n; i++)
		{
			pb_tag(&b, 1, 2);
			pb_varint(&b, inner[i + 1]);
		}
		free(inner);
		{
			Dec			r = decode_pb(&b);

			/* a Resource holding a KeyValue whose key holds the rest: valid, no records */
			CHECK(r.ok && r.b.count == 0);
			done(&r);
		}
		pb_free(&b);
	}
}

static void
test_json_errors(void)
{
	static const struct
	{
		const char *json;
		const char *err;
	}			cases[] = {
		{"", "invalid JSON at byte 0: empty document"},
		{"  ", "invalid JSON at byte 2: document holds only whitespace"},
		{"[]", "the document at byte 0 is an array, expected an object"},
		{"{\"resourceLogs\":{}}", "resourceLogs at byte 16 is an object, expected an array"},
		{"{\"resourceLogs\":\"x\"}", "resourceLogs at byte 16 is a string, expected an array"},
		{"{\"resourceLogs\":[1]}", "a resourceLogs element at byte 17 is a number, expected an object"},
		{"{\"resourceLogs\":[{\"scopeLogs\":{}}]}", "scopeLogs at byte 30 is an object, expected an array"},
		{"{\"resourceLogs\":[{\"resource\":[]}]}", "resource at byte 29 is an array, expected an object"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[[]]}]}]}", "a log record at byte 46 is an array"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":\"text\"}]}]}]}", "AnyValue at byte 54 is a string, expected an object"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":1}}]}]}]}", "stringValue at byte 69 is a number, expected a string"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":\"1x\"}}]}]}]}", "intValue at byte 66 is not an integer"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":\"9223372036854775808\"}}]}]}]}", "intValue at byte 66 is out of range"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":1e3}}]}]}]}", "not an integer"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"doubleValue\":\"inf\"}}]}]}]}", "doubleValue at byte 69 is not a number"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"boolValue\":1}}]}]}]}", "boolValue at byte 67 is a number, expected a boolean"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"a\"}}]}]}]}", "bytesValue at byte 68 is not base64"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":\"a!==\"}}]}]}]}", "not base64"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"-1\"}]}]}]}", "timeUnixNano at byte 62 is not an integer"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"18446744073709551616\"}]}]}]}", "out of range"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"attributes\":[{\"key\":1}]}]}]}]}", "key at byte 68 is a number, expected a string"},
		{"{\"resourceLogs\":[]", "invalid JSON at byte 18: expected ',' or '}'"},
		{"{\"resourceLogs\":[]}x", "invalid JSON at byte 19: unexpected data after the document"},
		{"{\"resourceLogs\":[],}", "invalid JSON at byte 19: expected a string key"},
		{"{\"a\":[1,]}", "invalid JSON at byte 8: unexpected character ']'"},
		{"{\"a\":01}", "invalid JSON at byte 5: number with a leading zero"},
		{"{\"a\":\"\xff\"}", "invalid JSON at byte 6: invalid UTF-8 in a string"},
		{"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
		{"{\"a\":\"\\ud800\"}", "invalid JSON at byte 6: lone high surrogate"},
		{"{\"a\":\"\\udc00\"}", "lone low surrogate"},
		{"{\"a\":\"\\x\"}", "invalid escape"},
		{"{\"a\":\"\x01\"}", "control character in a string"},
		{"{\"a\":tru}", "invalid literal"},
		{"{\"a\" 1}", "expected ':'"},
		{"{\"a\":\"x}", "unterminated string"},
		{"{'a':1}", "expected a string key"},
		{"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"\\ud83d\"}}]}]}]}", "lone high surrogate"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_json_fails(cases[i].json, cases[i].err);

	/* valid oddities: escapes in member names, whitespace, numbers in strings */
	{
		Dec			j = decode_json(" {\r\n\t\"resource\\u004cogs\" : [ { \"scopeLogs\" : [ { \"logRecords\" : [ "
									"{ \"body\" : { \"string\\u0056alue\" : \"\\u00e9\\/\\ud83d\\ude00\" } , \"timeUnixNano\" : 12 } ] } ] } ] } ");

		CHECK_MSG(j.ok && j.b.count == 1, "%s", j.err);
		if (j.ok && j.b.count == 1)
		{
			CHECK_STR(j.b.records[0].text, "{\"body\":\"\xc3\xa9/\xf0\x9f\x98\x80\"}");
			CHECK_INT(j.b.records[0].time_unix_nano, ==, 12);
		}
		done(&j);
	}
	/* a duplicate key replaces: the second logRecords wins */
	{
		Dec			j = decode_json("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{},{}],\"logRecords\":[{\"body\":{\"stringValue\":\"x\"}}]}]}]}");

		CHECK(j.ok && j.b.count == 1);
		if (j.ok && j.b.count == 1)
		{
			CHECK_STR(j.b.records[0].text, "{\"body\":\"x\"}");
			CHECK_INT(j.b.records[0].index, ==, 0);
		}
		done(&j);
	}
}

/* Many records: linear time, and the generator's kind of batch. */
static void
test_many(void)
{
	size_t		n = 100000;
	Pb			b = {0};
	size_t		cap = n * 300 + 1000,
				k = 0;
	char	   *json = malloc(cap);
	Dec			p,
				j;
	clock_t		t0;
	double		tp,
				tj;

	pb_begin(&b, 1);
	pb_begin(&b, 1);
	pb_kv_str(&b, 1, "service.name", "bulk");
	pb_end(&b);
	pb_begin(&b, 2);
	k += (size_t) sprintf(json, "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"bulk\"}}]},"
						  "\"scopeLogs\":[{\"logRecords\":[");
	for (size_t i = 0; i < n; i++)
	{
		char		body[64];

		sprintf(body, "GET /api/orders/%zu 200 %zums", i, i % 97);
		pb_begin(&b, 2);
		pb_fixed64(&b, 1, 1000 + i);
		pb_uint(&b, 2, 9);
		pb_begin(&b, 5);
		pb_str(&b, 1, body);
		pb_end(&b);
		pb_kv_int(&b, 6, "http.status_code", 200);
		pb_kv_str(&b, 6, "http.method", "GET");
		pb_end(&b);
		k += (size_t) sprintf(json + k, "%s{\"timeUnixNano\":\"%zu\",\"severityNumber\":9,\"body\":{\"stringValue\":\"%s\"},"
							  "\"attributes\":[{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
							  "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}}]}",
							  i ? "," : "", 1000 + i, body);
	}
	pb_end(&b);
	pb_end(&b);
	k += (size_t) sprintf(json + k, "]}]}]}");
	t0 = clock();
	p = decode_pb(&b);
	tp = (double) (clock() - t0) / CLOCKS_PER_SEC;
	t0 = clock();
	j = decode(json, k, OTLP_JSON, "service.name");
	tj = (double) (clock() - t0) / CLOCKS_PER_SEC;
	check_same("100,000 records", &p, &j, NULL, n);
	if (p.ok && p.b.count == n)
	{
		CHECK_STR(p.b.records[n - 1].text,
				  "{\"severity\":\"INFO\",\"body\":\"GET /api/orders/99999 200 89ms\",\"attributes\":{\"http.method\":\"GET\",\"http.status_code\":200}}");
		CHECK_INT(p.b.records[n - 1].index, ==, n - 1);
		CHECK_INT(p.b.records[n - 1].time_unix_nano, ==, 1000 + n - 1);
		CHECK_STR(p.b.records[n - 1].stream, "bulk");
		CHECK(p.b.records[0].stream == p.b.records[n - 1].stream);
	}
	/* generous: sanitizers and valgrind are slow (about 0.1 s without them) */
	CHECK_MSG(tp < 30 && tj < 30, "proto %.2f s, json %.2f s", tp, tj);
	printf("100,000 records: proto %.3f s (%zu bytes), json %.3f s (%zu bytes)\n", tp, b.len, tj, k);
	done(&p);
	done(&j);
	pb_free(&b);
	free(json);
}

int
main(void)
{
	test_services();
	test_any_values();
	test_severity();
	test_attributes();
	test_streams();
	test_empty();
	test_unknown_fields();
	test_proto_errors();
	test_depth();
	test_json_errors();
	test_many();
	return UNIT_REPORT();
}
