/*
 * fuzz_otlp_logs.c -- otlp_decode (src/message/otlp_logs.c) on arbitrary
 * messages, in both encodings.
 *
 * Input: one byte of settings, then the message.  Bit 0 of the settings:
 * 0 protobuf, 1 JSON (the seeds start with '0' or '1'); bit 1: the stream
 * attribute is "k" instead of "service.name".  Each message is decoded
 * twice, with malloc and with a caller's allocator.  Checks, besides memory
 * safety on an exactly-sized buffer and no leaks:
 *  - both decodes agree: success or failure, the same error, the same
 *    records (texts, streams, times, indexes);
 *  - on success: indexes 0..count-1; every text NUL-terminated at text_len,
 *    without other NULs, valid UTF-8, a JSON object (json_path_lookup
 *    validates it); every stream NUL-terminated at stream_len and valid
 *    UTF-8; records is NULL exactly when count is 0;
 *  - each of the first 8 records, alone (otlp_single_record), decodes to
 *    the same record;
 *  - on failure: the error is a non-empty NUL-terminated sentence, the
 *    batch empty; a small error buffer receives a prefix of it;
 *  - the allocator is only asked for what it is given (no NULL, no frees).
 */
#include "message/json_path.h"
#include "message/otlp_logs.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An allocator that keeps every block in a list, freed after the checks. */
typedef struct Pool
{
	void	  **blocks;
	size_t		n;
	size_t		cap;
} Pool;

static void *
pool_alloc(void *ctx, size_t size)
{
	Pool	   *pool = ctx;
	void	   *p = malloc(size ? size : 1);

	CHECK(p != NULL);
	if (pool->n == pool->cap)
	{
		pool->cap = pool->cap ? pool->cap * 2 : 16;
		pool->blocks = realloc(pool->blocks, pool->cap * sizeof(void *));
		CHECK(pool->blocks != NULL);
	}
	pool->blocks[pool->n++] = p;
	memset(p, 0xa5, size);		/* no reliance on zeroed memory */
	return p;
}

static void
pool_free(Pool *pool)
{
	for (size_t i = 0; i < pool->n; i++)
		free(pool->blocks[i]);
	free(pool->blocks);
}

static void
check_record(const OtlpRecord *r, size_t i)
{
	json_path_result jr;

	CHECK(r->index == i);
	CHECK(r->text != NULL && r->text[r->text_len] == '\0');
	CHECK(strlen(r->text) == r->text_len);
	CHECK(valid_utf8((const unsigned char *) r->text, r->text_len));
	CHECK(r->text_len >= 2 && r->text[0] == '{' && r->text[r->text_len - 1] == '}');
	jr = json_path_lookup(r->text, r->text_len, "severity", NULL, 0, NULL, NULL, NULL, 0);
	CHECK(jr == JSON_PATH_STRING || jr == JSON_PATH_MISSING);
	if (r->stream != NULL)
	{
		CHECK(r->stream[r->stream_len] == '\0');
		CHECK(valid_utf8((const unsigned char *) r->stream, r->stream_len));
	}
	else
		CHECK(r->stream_len == 0);
}

static bool
same_record(const OtlpRecord *a, const OtlpRecord *b)
{
	if (a->text_len != b->text_len || memcmp(a->text, b->text, a->text_len) != 0)
		return false;
	if ((a->stream == NULL) != (b->stream == NULL))
		return false;
	if (a->stream && (a->stream_len != b->stream_len || memcmp(a->stream, b->stream, a->stream_len) != 0))
		return false;
	return a->time_unix_nano == b->time_unix_nano && a->index == b->index;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		settings;
	uint8_t    *msg;
	size_t		len;
	OtlpEncoding enc;
	const char *attr;
	OtlpBatch	a,
				b,
				c;
	char		erra[256],
				errb[256],
				errc[12];
	bool		oka,
				okb,
				okc;
	Pool		pool = {0};
	OtlpAllocator al = {pool_alloc, &pool};

	if (size == 0)
		return 0;
	settings = data[0];
	len = size - 1;
	msg = malloc(len ? len : 1);
	CHECK(msg != NULL);
	memcpy(msg, data + 1, len);
	enc = (settings & 1) ? OTLP_JSON : OTLP_PROTO;
	attr = (settings & 2) ? "k" : "service.name";

	memset(erra, 0x55, sizeof(erra));
	memset(errb, 0x55, sizeof(errb));
	memset(errc, 0x55, sizeof(errc));
	oka = otlp_decode(msg, len, enc, attr, NULL, &a, erra, sizeof(erra));
	okb = otlp_decode(msg, len, enc, attr, &al, &b, errb, sizeof(errb));
	okc = otlp_decode(msg, len, enc, attr, NULL, &c, errc, sizeof(errc));

	CHECK(oka == okb && oka == okc);
	CHECK(memchr(erra, '\0', sizeof(erra)) != NULL);
	CHECK(memchr(errc, '\0', sizeof(errc)) != NULL);
	if (oka)
	{
		CHECK(erra[0] == '\0' && errb[0] == '\0' && errc[0] == '\0');
		CHECK(a.count == b.count && a.count == c.count);
		CHECK((a.records == NULL) == (a.count == 0));
		for (size_t i = 0; i < a.count; i++)
		{
			check_record(&a.records[i], i);
			CHECK(same_record(&a.records[i], &b.records[i]));
			CHECK(same_record(&a.records[i], &c.records[i]));
		}
		/* the first records alone (otlp_single_record): the same record */
		for (size_t i = 0; i < a.count && i < 8; i++)
		{
			size_t		n = otlp_single_record(msg, enc, &a.records[i], NULL, 0);
			uint8_t    *one = malloc(n);
			OtlpBatch	ob;
			char		oerr[200];

			CHECK(one != NULL);
			CHECK(otlp_single_record(msg, enc, &a.records[i], one, n) == n);
			CHECK(otlp_decode(one, n, enc, attr, NULL, &ob, oerr, sizeof(oerr)));
			CHECK(ob.count == 1);
			ob.records[0].index = a.records[i].index;
			CHECK(same_record(&a.records[i], &ob.records[0]));
			otlp_batch_free(&ob);
			free(one);
		}
	}
	else
	{
		CHECK(erra[0] != '\0');
		CHECK(strcmp(erra, errb) == 0);
		CHECK(strncmp(erra, errc, strlen(errc)) == 0);
		CHECK(a.count == 0 && a.records == NULL && b.count == 0 && b.records == NULL);
		CHECK(c.count == 0 && c.records == NULL);
	}
	otlp_batch_free(&a);
	otlp_batch_free(&b);
	otlp_batch_free(&c);
	CHECK(a.records == NULL && a.count == 0);
	pool_free(&pool);
	free(msg);
	return 0;
}
