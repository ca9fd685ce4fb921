/*
 * otlp_logs.c -- decode an OTLP logs export batch (protobuf or OTLP/JSON)
 *
 * Both readers are single forward passes that render as they go into a
 * per-record scratch buffer: every value (a body, an attribute's key or
 * value, an array element) becomes a range of that buffer, and a record's
 * text is put together from its ranges when the record ends.  So fields may
 * come in any order, a later occurrence simply replaces the range of an
 * earlier one (what is replaced stays behind as garbage until the next
 * record), and both encodings share the rendering code, which is what makes
 * their texts byte-identical.  Arrays and kvlists keep their elements'
 * ranges on a stack and are copied together when they close: at most
 * OTLP_MAX_DEPTH copies of any byte.
 *
 * Errors longjmp out of the reader to otlp_decode, which frees what was
 * malloc'd; nothing between holds a resource of its own.
 *
 * Choices made where the header leaves room:
 *
 *  - A non-repeated message field given twice (a LogRecord's body, a
 *    KeyValue's value, a LogRecord in JSON with two "body" keys) is
 *    replaced by the later one, not merged as protobuf would.  In protobuf,
 *    Resource given twice in a ResourceLogs adds up (its attributes are a
 *    repeated field); in JSON a duplicate key replaces the earlier one at
 *    every level (a second "logRecords" drops the first one's records).
 *  - Strings are rendered with U+FFFD for each maximal invalid UTF-8
 *    subpart; keys (for sorting and the stream attribute's value) are
 *    repaired the same way.  The stream attribute's key is compared with
 *    the key as it is in the message.
 *  - Empty severityText is absent (proto3: "" is the default); a
 *    severityNumber outside 1..24 names no severity.
 *  - JSON: null stands for an absent field anywhere, also for an array
 *    element (an empty message); known fields that are not rendered (traceId,
 *    spanId, flags, droppedAttributesCount, eventName, scope, schemaUrl) are
 *    skipped as any JSON value; intValue must be an integer (no fraction or
 *    exponent), doubleValue a number or one of "NaN", "Infinity",
 *    "-Infinity" or a number in a string; bytesValue standard or URL-safe
 *    base64, padding optional.  Containers in skipped values may nest up to
 *    OTLP_JSON_SKIP_DEPTH levels.
 *  - Byte offsets in errors are 0-based indexes into buf.
 */
#include "message/json_path.h"
#include "message/otlp_logs.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define OT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define OT_NORETURN __attribute__((noreturn))
#define OT_LIKELY(x) __builtin_expect(!!(x), 1)
#define OT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define OT_PRINTF(f, a)
#define OT_NORETURN
#define OT_LIKELY(x) (x)
#define OT_UNLIKELY(x) (x)
#endif

/* Deepest nesting of containers in a skipped JSON value (a bit stack of 128 bytes). */
#define OTLP_JSON_SKIP_DEPTH 1024

#define ARENA_BLOCK 65536

/* A block of output memory when malloc'd: freed by otlp_batch_free. */
typedef struct Block
{
	struct Block *next;
} Block;

/* A growable byte buffer (the scratch). */
typedef struct Sb
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Sb;

/* A key (or nothing) and a value, as ranges of the scratch. */
typedef struct Kv
{
	size_t		koff;
	size_t		klen;
	size_t		voff;
	size_t		vlen;
} Kv;

typedef enum VType
{
	V_NULL,
	V_STRING,
	V_BOOL,
	V_INT,
	V_DOUBLE,
	V_BYTES,
	V_ARRAY,
	V_KVLIST
} VType;

/* A rendered AnyValue; for a string also its bytes when want_raw. */
typedef struct Val
{
	VType		type;
	size_t		off;
	size_t		len;
	bool		want_raw;
	size_t		raw_off;
	size_t		raw_len;
} Val;

/* What a log record holds while it is being read. */
typedef struct Rec
{
	bool		has_sev_text;
	size_t		sev_off;
	size_t		sev_len;
	int64_t		sev_num;
	bool		has_body;
	size_t		body_off;
	size_t		body_len;
	uint64_t	time;
	size_t		rec_off;		/* the LogRecord's bytes in the message */
	size_t		rec_len;
} Rec;

typedef struct St
{
	const uint8_t *d;
	size_t		len;
	size_t		p;				/* JSON: the next byte */
	const OtlpAllocator *allocator;
	Block	   *blocks;
	char	   *cur;			/* arena: free space of the current block */
	size_t		left;
	OtlpRecord *recs;
	size_t		nrecs;
	size_t		caprecs;
	Sb			sb;
	Kv		   *kvs;
	size_t		nkvs;
	size_t		capkvs;
	Kv		   *tmpkvs;			/* merge sort's other half */
	size_t		captmp;
	const char *stream_attr;
	size_t		stream_attr_len;
	const char *stream;			/* of the current resource */
	size_t		stream_len;
	size_t		stream_kv_off;	/* the KeyValue that named it, in the message */
	size_t		stream_kv_len;
	char	   *err;
	size_t		errlen;
	jmp_buf		jb;
} St;

static void fail(St *st, const char *fmt,...) OT_PRINTF(2, 3) OT_NORETURN;

static void
fail(St *st, const char *fmt,...)
{
	va_list		ap;

	if (st->err != NULL && st->errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(st->err, st->errlen, fmt, ap);
		va_end(ap);
	}
	longjmp(st->jb, 1);
}

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/*
 * Grow a scratch array from old (oldsize bytes in use) to newsize: realloc
 * when malloc'd (otlp_decode frees it), a fresh copy from the allocator
 * otherwise (the old one is abandoned: growth by doubling wastes at most as
 * much as it keeps).
 */
static void *
grow(St *st, void *old, size_t oldsize, size_t newsize)
{
	void	   *p;

	if (st->allocator == NULL)
	{
		p = realloc(old, newsize);
		if (p == NULL)
			fail(st, "out of memory");
		return p;
	}
	p = st->allocator->alloc(st->allocator->ctx, newsize);
	if (oldsize > 0)
		memcpy(p, old, oldsize);
	return p;
}

/* n bytes of output that live as long as the batch. */
static char *
arena_alloc(St *st, size_t n)
{
	char	   *p;

	if (n > st->left)
	{
		size_t		size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;

		if (st->allocator != NULL)
			p = st->allocator->alloc(st->allocator->ctx, size);
		else
		{
			Block	   *b;

			if (size > SIZE_MAX - sizeof(Block))
				fail(st, "out of memory");
			b = malloc(sizeof(Block) + size);
			if (b == NULL)
				fail(st, "out of memory");
			b->next = st->blocks;
			st->blocks = b;
			p = (char *) (b + 1);
		}
		if (size == n)			/* a big one of its own: keep the current block */
			return p;
		st->cur = p;
		st->left = size;
	}
	p = st->cur;
	st->cur += n;
	st->left -= n;
	return p;
}

static char *
arena_strdup(St *st, const char *s, size_t n)
{
	char	   *p = arena_alloc(st, n + 1);

	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Room for n more bytes in the scratch. */
static inline void
sb_reserve(St *st, size_t n)
{
	Sb		   *sb = &st->sb;

	if (OT_UNLIKELY(n > sb->cap - sb->len))
	{
		size_t		cap = sb->cap ? sb->cap : 1024;

		if (n > SIZE_MAX / 4 - sb->len)
			fail(st, "out of memory");
		while (cap - sb->len < n)
			cap *= 2;
		sb->data = grow(st, sb->data, sb->len, cap);
		sb->cap = cap;
	}
}

static inline void
sb_put(St *st, const void *s, size_t n)
{
	if (n == 0)
		return;
	sb_reserve(st, n);
	memcpy(st->sb.data + st->sb.len, s, n);
	st->sb.len += n;
}

static inline void
sb_putc(St *st, char c)
{
	sb_reserve(st, 1);
	st->sb.data[st->sb.len++] = c;
}

#define SB_LIT(st, s) sb_put((st), (s), sizeof(s) - 1)

/* Append a copy of the scratch's own range [off, off + n). */
static inline void
sb_put_self(St *st, size_t off, size_t n)
{
	if (n == 0)
		return;
	sb_reserve(st, n);
	memcpy(st->sb.data + st->sb.len, st->sb.data + off, n);
	st->sb.len += n;
}

static void
kv_push(St *st, const Kv *kv)
{
	if (st->nkvs == st->capkvs)
	{
		size_t		cap = st->capkvs ? st->capkvs * 2 : 64;

		st->kvs = grow(st, st->kvs, st->nkvs * sizeof(Kv), cap * sizeof(Kv));
		st->capkvs = cap;
	}
	st->kvs[st->nkvs++] = *kv;
}

/* ------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------ */

/* 0: copied as is; 1: escaped; 2: a byte >= 0x80 */
static const unsigned char str_class[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/*
 * Does any of the 8 bytes at s need a look (a control character, '"', '\\'
 * or a byte >= 0x80)?  May say yes for a plain byte after one that does;
 * the byte loops after it decide.
 */
static inline bool
word_special(const uint8_t *s)
{
	const uint64_t ones = 0x0101010101010101ULL,
				highs = 0x8080808080808080ULL;
	uint64_t	w,
				q,
				b;

	memcpy(&w, s, 8);
	q = w ^ (ones * '"');
	b = w ^ (ones * '\\');
	return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & highs;
}

/*
 * The UTF-8 sequence led by s[i] (a byte >= 0x80): its length when valid
 * (no overlongs, surrogates or code points above U+10FFFF), else 0 with
 * *bad the length of its maximal invalid subpart, the bytes one U+FFFD
 * replaces.
 */
static inline size_t
utf8_seq(const uint8_t *s, size_t n, size_t i, size_t *bad)
{
	uint8_t		c = s[i];
	uint8_t		lo = 0x80,
				hi = 0xbf;
	size_t		k,
				j;

	*bad = 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
	{
		k = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	}
	else if (c >= 0xf0 && c <= 0xf4)
	{
		k = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	}
	else
		return 0;
	if (i + 1 >= n || s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (j = 2; j < k; j++)
	{
		if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
		{
			*bad = j;
			return 0;
		}
	}
	return k;
}

/*
 * Append s[0..n) with invalid UTF-8 replaced by U+FFFD; as a quoted,
 * escaped JSON string when json.  Reserves the worst case first, so s may
 * not point into the scratch (use put_str_self).
 */
static void
put_str(St *st, const uint8_t *s, size_t n, bool json)
{
	static const char hexd[] = "0123456789abcdef";
	char	   *o;
	size_t		i = 0;

	if (n > SIZE_MAX / 8)
		fail(st, "out of memory");
	sb_reserve(st, 6 * n + 2);
	o = st->sb.data + st->sb.len;
	if (json)
		*o++ = '"';
	while (i < n)
	{
		size_t		run = i;
		uint8_t		c;

		while (n - i >= 8 && !word_special(s + i))
			i += 8;
		while (i < n && str_class[s[i]] == 0)
			i++;
		memcpy(o, s + run, i - run);
		o += i - run;
		if (i >= n)
			break;
		c = s[i];
		if (c >= 0x80)
		{
			size_t		bad;
			size_t		k = utf8_seq(s, n, i, &bad);

			if (k > 0)
			{
				memcpy(o, s + i, k);
				o += k;
				i += k;
			}
			else
			{
				memcpy(o, "\xef\xbf\xbd", 3);
				o += 3;
				i += bad;
			}
			continue;
		}
		i++;
		if (!json)
		{
			*o++ = (char) c;
			continue;
		}
		*o++ = '\\';
		switch (c)
		{
			case '"':
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				break;
			case '\n':
				*o++ = 'n';
				break;
			case '\r':
				*o++ = 'r';
				break;
			case '\t':
				*o++ = 't';
				break;
			case '\b':
				*o++ = 'b';
				break;
			case '\f':
				*o++ = 'f';
				break;
			default:
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hexd[c >> 4];
				*o++ = hexd[c & 15];
				break;
		}
	}
	if (json)
		*o++ = '"';
	st->sb.len = (size_t) (o - st->sb.data);
}

/* put_str of the scratch's own range. */
static void
put_str_self(St *st, size_t off, size_t n, bool json)
{
	sb_reserve(st, 6 * n + 2);
	put_str(st, (const uint8_t *) st->sb.data + off, n, json);
}

static void
put_int(St *st, int64_t v)
{
	char		tmp[24];
	size_t		i = sizeof(tmp);
	uint64_t	u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	do
	{
		tmp[--i] = (char) ('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		tmp[--i] = '-';
	sb_put(st, tmp + i, sizeof(tmp) - i);
}

static void
put_double(St *st, double v)
{
	char		tmp[40];
	int			n;

	if (isnan(v))
		SB_LIT(st, "\"NaN\"");
	else if (isinf(v))
	{
		if (v > 0)
			SB_LIT(st, "\"Infinity\"");
		else
			SB_LIT(st, "\"-Infinity\"");
	}
	else
	{
		n = snprintf(tmp, sizeof(tmp), "%.17g", v);
		sb_put(st, tmp, (size_t) n);
	}
}

static void
put_base64(St *st, const uint8_t *s, size_t n)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char	   *o;
	size_t		i;

	if (n > SIZE_MAX / 4)
		fail(st, "out of memory");
	sb_reserve(st, (n + 2) / 3 * 4 + 2);
	o = st->sb.data + st->sb.len;
	*o++ = '"';
	for (i = 0; i + 3 <= n; i += 3)
	{
		uint32_t	w = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8 | s[i + 2];

		*o++ = b64[w >> 18];
		*o++ = b64[(w >> 12) & 63];
		*o++ = b64[(w >> 6) & 63];
		*o++ = b64[w & 63];
	}
	if (n - i == 1)
	{
		uint32_t	w = (uint32_t) s[i] << 16;

		*o++ = b64[w >> 18];
		*o++ = b64[(w >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	}
	else if (n - i == 2)
	{
		uint32_t	w = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8;

		*o++ = b64[w >> 18];
		*o++ = b64[(w >> 12) & 63];
		*o++ = b64[(w >> 6) & 63];
		*o++ = '=';
	}
	*o++ = '"';
	st->sb.len = (size_t) (o - st->sb.data);
}

/*
 * Put together the elements on the kv stack from base as an array or
 * object.  Everything in the scratch from mark on (the elements and what
 * they replaced) is then spent: the result moves down to mark, so nested
 * lists do not pile up copies of their contents.
 */
static void
assemble(St *st, size_t base, size_t mark, bool object, Val *v)
{
	size_t		need = 2;
	size_t		i,
				start;

	for (i = base; i < st->nkvs; i++)
		need += st->kvs[i].vlen + 1 + (object ? 6 * st->kvs[i].klen + 3 : 0);
	sb_reserve(st, need);
	start = st->sb.len;
	sb_putc(st, object ? '{' : '[');
	for (i = base; i < st->nkvs; i++)
	{
		const Kv   *kv = &st->kvs[i];

		if (i > base)
			sb_putc(st, ',');
		if (object)
		{
			put_str_self(st, kv->koff, kv->klen, true);
			sb_putc(st, ':');
		}
		sb_put_self(st, kv->voff, kv->vlen);
	}
	sb_putc(st, object ? '}' : ']');
	v->len = st->sb.len - start;
	memmove(st->sb.data + mark, st->sb.data + start, v->len);
	v->off = mark;
	st->sb.len = mark + v->len;
	v->type = object ? V_KVLIST : V_ARRAY;
	st->nkvs = base;
}

static inline int
key_cmp(const St *st, const Kv *a, const Kv *b)
{
	size_t		n = a->klen < b->klen ? a->klen : b->klen;
	int			c = memcmp(st->sb.data + a->koff, st->sb.data + b->koff, n);

	if (c != 0)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen ? 1 : 0;
}

/* Stable sort of kvs[0..n) by key: insertion sort for short runs, merged. */
static void
sort_kvs(St *st, Kv *kvs, size_t n)
{
	size_t		width,
				i;

	for (i = 0; i < n; i += 8)
	{
		size_t		end = i + 8 < n ? i + 8 : n;

		for (size_t j = i + 1; j < end; j++)
		{
			Kv			x = kvs[j];
			size_t		k = j;

			while (k > i && key_cmp(st, &kvs[k - 1], &x) > 0)
			{
				kvs[k] = kvs[k - 1];
				k--;
			}
			kvs[k] = x;
		}
	}
	if (n <= 8)
		return;
	if (st->captmp < n)
	{
		st->tmpkvs = grow(st, st->tmpkvs, 0, n * sizeof(Kv));
		st->captmp = n;
	}
	for (width = 8; width < n; width *= 2)
	{
		Kv		   *src = kvs,
				   *dst = st->tmpkvs;

		for (i = 0; i < n; i += 2 * width)
		{
			size_t		a = i,
						am = i + width < n ? i + width : n,
						b = am,
						bm = i + 2 * width < n ? i + 2 * width : n,
						o = i;

			while (a < am && b < bm)
				dst[o++] = key_cmp(st, &src[b], &src[a]) < 0 ? src[b++] : src[a++];
			while (a < am)
				dst[o++] = src[a++];
			while (b < bm)
				dst[o++] = src[b++];
		}
		memcpy(kvs, dst, n * sizeof(Kv));
	}
}

static const char *const severity_names[6] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* The record read so far (attributes: kvs[0..nkvs)) becomes an OtlpRecord. */
static void
finish_record(St *st, const Rec *r)
{
	size_t		out = st->sb.len;
	size_t		n = st->nkvs;
	bool		any = false;
	OtlpRecord *rec;

	SB_LIT(st, "{");
	if (r->has_sev_text && r->sev_len > 0)
	{
		SB_LIT(st, "\"severity\":");
		put_str_self(st, r->sev_off, r->sev_len, true);
		any = true;
	}
	else if (r->sev_num >= 1 && r->sev_num <= 24)
	{
		SB_LIT(st, "\"severity\":\"");
		sb_put(st, severity_names[(r->sev_num - 1) / 4],
			   strlen(severity_names[(r->sev_num - 1) / 4]));
		SB_LIT(st, "\"");
		any = true;
	}
	if (r->has_body)
	{
		if (any)
			SB_LIT(st, ",");
		SB_LIT(st, "\"body\":");
		sb_put_self(st, r->body_off, r->body_len);
		any = true;
	}
	if (n > 0)
	{
		bool		first = true;

		sort_kvs(st, st->kvs, n);
		if (any)
			SB_LIT(st, ",");
		SB_LIT(st, "\"attributes\":{");
		for (size_t i = 0; i < n; i++)
		{
			const Kv   *kv = &st->kvs[i];

			/* the last of equal keys wins (the sort is stable) */
			if (i + 1 < n && key_cmp(st, kv, &st->kvs[i + 1]) == 0)
				continue;
			if (!first)
				SB_LIT(st, ",");
			first = false;
			put_str_self(st, kv->koff, kv->klen, true);
			SB_LIT(st, ":");
			sb_put_self(st, kv->voff, kv->vlen);
		}
		SB_LIT(st, "}");
	}
	SB_LIT(st, "}");

	if (st->nrecs == st->caprecs)
	{
		size_t		cap = st->caprecs ? st->caprecs * 2 : 16;

		if (st->nrecs >= UINT32_MAX)
			fail(st, "more than %u log records in one message", (unsigned) UINT32_MAX);
		st->recs = grow(st, st->recs, st->nrecs * sizeof(OtlpRecord), cap * sizeof(OtlpRecord));
		st->caprecs = cap;
	}
	rec = &st->recs[st->nrecs];
	rec->stream = NULL;
	rec->stream_len = 0;
	rec->text_len = st->sb.len - out;
	rec->text = arena_strdup(st, st->sb.data + out, rec->text_len);
	rec->time_unix_nano = r->time;
	rec->index = (uint32_t) st->nrecs;
	rec->record_off = r->rec_off;
	rec->record_len = r->rec_len;
	rec->stream_kv_off = 0;
	rec->stream_kv_len = 0;
	st->nrecs++;
}

static void
begin_record(St *st, Rec *r)
{
	memset(r, 0, sizeof(*r));
	st->sb.len = 0;
	st->nkvs = 0;
}

/* A resource attribute: is it the stream's?  Then its value is the stream. */
static void
resource_attribute(St *st, const Kv *kv, const Val *v, size_t kv_off, size_t kv_len)
{
	size_t		off = v->off,
				len = v->len;

	if (kv->klen != st->stream_attr_len ||
		memcmp(st->sb.data + kv->koff, st->stream_attr, kv->klen) != 0)
		return;
	switch (v->type)
	{
		case V_STRING:
			off = v->raw_off;
			len = v->raw_len;
			break;
		case V_DOUBLE:
			if (st->sb.data[off] == '"')	/* NaN, Infinity: bare */
			{
				off++;
				len -= 2;
			}
			break;
		case V_INT:
		case V_BOOL:
			break;
		default:
			st->stream = NULL;
			st->stream_len = 0;
			st->stream_kv_len = 0;
			return;
	}
	st->stream = arena_strdup(st, st->sb.data + off, len);
	st->stream_len = len;
	st->stream_kv_off = kv_off;
	st->stream_kv_len = kv_len;
}

/* Records [first, nrecs) are the current resource's. */
static void
set_streams(St *st, size_t first)
{
	for (size_t i = first; i < st->nrecs; i++)
	{
		st->recs[i].stream = st->stream;
		st->recs[i].stream_len = st->stream_len;
		st->recs[i].stream_kv_off = st->stream_kv_off;
		st->recs[i].stream_kv_len = st->stream_kv_len;
	}
}

static void
check_depth(St *st, int depth, size_t pos)
{
	if (depth > OTLP_MAX_DEPTH)
		fail(st, "AnyValue nested deeper than %d levels at byte %zu", OTLP_MAX_DEPTH, pos);
}

/* ------------------------------------------------------------------------
 * Protobuf
 * ------------------------------------------------------------------------ */

enum
{
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_I32 = 5
};

typedef struct PField
{
	uint32_t	num;
	int			wt;
	size_t		tagpos;
	uint64_t	v;				/* varint, fixed32 or fixed64 */
	size_t		start;			/* length-delimited: the bytes */
	size_t		end;
} PField;

static uint64_t
p_varint(St *st, size_t *pos, size_t end)
{
	size_t		p = *pos;
	uint64_t	v = 0;

	for (int i = 0; i < 10; i++)
	{
		uint8_t		b;

		if (OT_UNLIKELY(p >= end))
			fail(st, "truncated varint at byte %zu", *pos);
		b = st->d[p++];
		if (OT_UNLIKELY(i == 9 && b > 1))
			fail(st, "varint longer than 64 bits at byte %zu", *pos);
		v |= (uint64_t) (b & 0x7f) << (7 * i);
		if (!(b & 0x80))
		{
			*pos = p;
			return v;
		}
	}
	return v;					/* not reached: the 10th byte ends it or fails */
}

static const char *
wt_name(int wt)
{
	switch (wt)
	{
		case WT_VARINT:
			return "varint";
		case WT_I64:
			return "64-bit";
		case WT_LEN:
			return "length-delimited";
		case WT_I32:
			return "32-bit";
		default:
			return "?";
	}
}

/* The next field of a message ending at end, or false at its end. */
static bool
p_next(St *st, size_t *pos, size_t end, PField *f, const char *msg)
{
	uint64_t	tag,
				n;

	if (*pos >= end)
		return false;
	f->tagpos = *pos;
	tag = p_varint(st, pos, end);
	f->wt = (int) (tag & 7);
	if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
		fail(st, "invalid field number %llu in %s at byte %zu",
			 (unsigned long long) (tag >> 3), msg, f->tagpos);
	f->num = (uint32_t) (tag >> 3);
	switch (f->wt)
	{
		case WT_VARINT:
			f->v = p_varint(st, pos, end);
			break;
		case WT_I64:
		case WT_I32:
			n = f->wt == WT_I64 ? 8 : 4;
			if (end - *pos < n)
				fail(st, "truncated %s value of field %u of %s at byte %zu",
					 wt_name(f->wt), f->num, msg, *pos);
			f->v = 0;
			for (size_t i = 0; i < n; i++)
				f->v |= (uint64_t) st->d[*pos + i] << (8 * i);
			*pos += n;
			break;
		case WT_LEN:
			{
				size_t		lenpos = *pos;

				n = p_varint(st, pos, end);
				if (n > end - *pos)
					fail(st, "length %llu of field %u of %s at byte %zu runs past its end at byte %zu",
						 (unsigned long long) n, f->num, msg, lenpos, end);
				f->start = *pos;
				f->end = *pos + n;
				*pos = f->end;
			}
			break;
		case 3:
		case 4:
			fail(st, "field %u of %s at byte %zu is a group (wire type %d), which is not supported",
				 f->num, msg, f->tagpos, f->wt);
		default:
			fail(st, "field %u of %s at byte %zu has invalid wire type %d",
				 f->num, msg, f->tagpos, f->wt);
	}
	return true;
}

static void
p_want(St *st, const PField *f, int wt, const char *msg)
{
	if (f->wt != wt)
		fail(st, "field %u of %s at byte %zu has wire type %d, expected %d (%s)",
			 f->num, msg, f->tagpos, f->wt, wt, wt_name(wt));
}

static void p_keyvalue(St *st, size_t start, size_t end, int depth, Kv *kv, Val *v);

/* An AnyValue in d[start..end), rendered into the scratch. */
static void
p_any(St *st, size_t start, size_t end, int depth, Val *v)
{
	size_t		pos = start;
	PField		f;
	bool		set = false;

	check_depth(st, depth, start);
	while (p_next(st, &pos, end, &f, "AnyValue"))
	{
		switch (f.num)
		{
			case 1:
				p_want(st, &f, WT_LEN, "AnyValue");
				if (v->want_raw)
				{
					v->raw_off = st->sb.len;
					put_str(st, st->d + f.start, f.end - f.start, false);
					v->raw_len = st->sb.len - v->raw_off;
				}
				v->off = st->sb.len;
				put_str(st, st->d + f.start, f.end - f.start, true);
				v->type = V_STRING;
				break;
			case 2:
				p_want(st, &f, WT_VARINT, "AnyValue");
				v->off = st->sb.len;
				if (f.v)
					SB_LIT(st, "true");
				else
					SB_LIT(st, "false");
				v->type = V_BOOL;
				break;
			case 3:
				p_want(st, &f, WT_VARINT, "AnyValue");
				v->off = st->sb.len;
				put_int(st, (int64_t) f.v);
				v->type = V_INT;
				break;
			case 4:
				{
					double		dv;

					p_want(st, &f, WT_I64, "AnyValue");
					memcpy(&dv, &f.v, sizeof(dv));
					v->off = st->sb.len;
					put_double(st, dv);
					v->type = V_DOUBLE;
				}
				break;
			case 5:
			case 6:
				{
					size_t		base = st->nkvs;
					size_t		mark = st->sb.len;
					size_t		ep = f.start;
					PField		e;
					const char *msg = f.num == 5 ? "ArrayValue" : "KeyValueList";

					p_want(st, &f, WT_LEN, "AnyValue");
					while (p_next(st, &ep, f.end, &e, msg))
					{
						Kv			kv = {0, 0, 0, 0};
						Val			ev;

						if (e.num != 1)
							continue;
						p_want(st, &e, WT_LEN, msg);
						memset(&ev, 0, sizeof(ev));
						if (f.num == 5)
						{
							p_any(st, e.start, e.end, depth + 1, &ev);
							kv.voff = ev.off;
							kv.vlen = ev.len;
						}
						else
							p_keyvalue(st, e.start, e.end, depth + 1, &kv, &ev);
						kv_push(st, &kv);
					}
					assemble(st, base, mark, f.num == 6, v);
				}
				break;
			case 7:
				p_want(st, &f, WT_LEN, "AnyValue");
				v->off = st->sb.len;
				put_base64(st, st->d + f.start, f.end - f.start);
				v->type = V_BYTES;
				break;
			default:
				continue;
		}
		v->len = st->sb.len - v->off;
		set = true;
	}
	if (!set)
	{
		v->type = V_NULL;
		v->off = st->sb.len;
		SB_LIT(st, "null");
		v->len = 4;
	}
}

/* A KeyValue: its key (repaired UTF-8) and rendered value as ranges in kv. */
static void
p_keyvalue(St *st, size_t start, size_t end, int depth, Kv *kv, Val *v)
{
	size_t		pos = start;
	PField		f;
	bool		has_key = false,
				has_value = false;

	while (p_next(st, &pos, end, &f, "KeyValue"))
	{
		if (f.num == 1)
		{
			p_want(st, &f, WT_LEN, "KeyValue");
			kv->koff = st->sb.len;
			put_str(st, st->d + f.start, f.end - f.start, false);
			kv->klen = st->sb.len - kv->koff;
			has_key = true;
		}
		else if (f.num == 2)
		{
			p_want(st, &f, WT_LEN, "KeyValue");
			p_any(st, f.start, f.end, depth, v);
			has_value = true;
		}
	}
	if (!has_key)
	{
		kv->koff = st->sb.len;
		kv->klen = 0;
	}
	if (!has_value)
	{
		/* an absent value is an empty AnyValue, at its depth */
		check_depth(st, depth, start);
		v->type = V_NULL;
		v->off = st->sb.len;
		SB_LIT(st, "null");
		v->len = 4;
	}
	kv->voff = v->off;
	kv->vlen = v->len;
}

static void
p_log_record(St *st, size_t start, size_t end)
{
	size_t		pos = start;
	PField		f;
	Rec			r;

	begin_record(st, &r);
	r.rec_off = start;
	r.rec_len = end - start;
	while (p_next(st, &pos, end, &f, "LogRecord"))
	{
		switch (f.num)
		{
			case 1:
				p_want(st, &f, WT_I64, "LogRecord");
				r.time = f.v;
				break;
			case 11:
				p_want(st, &f, WT_I64, "LogRecord");
				break;
			case 2:
				p_want(st, &f, WT_VARINT, "LogRecord");
				r.sev_num = (int32_t) (uint32_t) f.v;	/* an enum is an int32 */
				break;
			case 3:
				p_want(st, &f, WT_LEN, "LogRecord");
				r.has_sev_text = true;
				r.sev_off = st->sb.len;
				sb_put(st, st->d + f.start, f.end - f.start);
				r.sev_len = f.end - f.start;
				break;
			case 5:
				{
					Val			v;

					p_want(st, &f, WT_LEN, "LogRecord");
					memset(&v, 0, sizeof(v));
					p_any(st, f.start, f.end, 1, &v);
					r.has_body = true;
					r.body_off = v.off;
					r.body_len = v.len;
				}
				break;
			case 6:
				{
					Kv			kv;
					Val			v;

					p_want(st, &f, WT_LEN, "LogRecord");
					memset(&v, 0, sizeof(v));
					p_keyvalue(st, f.start, f.end, 1, &kv, &v);
					kv_push(st, &kv);
				}
				break;
			case 7:
				p_want(st, &f, WT_VARINT, "LogRecord");
				break;
			case 8:
				p_want(st, &f, WT_I32, "LogRecord");
				break;
			case 9:
			case 10:
			case 12:
				p_want(st, &f, WT_LEN, "LogRecord");
				break;
			default:
				break;
		}
	}
	finish_record(st, &r);
}

/* InstrumentationScope: not rendered, but its fields must be well-formed. */
static void
p_scope(St *st, size_t start, size_t end)
{
	size_t		pos = start;
	PField		f;

	while (p_next(st, &pos, end, &f, "InstrumentationScope"))
	{
		if (f.num >= 1 && f.num <= 3)
			p_want(st, &f, WT_LEN, "InstrumentationScope");
		else if (f.num == 4)
			p_want(st, &f, WT_VARINT, "InstrumentationScope");
	}
}

static void
p_scope_logs(St *st, size_t start, size_t end)
{
	size_t		pos = start;
	PField		f;

	while (p_next(st, &pos, end, &f, "ScopeLogs"))
	{
		if (f.num == 1)
		{
			p_want(st, &f, WT_LEN, "ScopeLogs");
			p_scope(st, f.start, f.end);
		}
		else if (f.num == 2)
		{
			p_want(st, &f, WT_LEN, "ScopeLogs");
			p_log_record(st, f.start, f.end);
		}
		else if (f.num == 3)
			p_want(st, &f, WT_LEN, "ScopeLogs");
	}
}

static void
p_resource(St *st, size_t start, size_t end)
{
	size_t		pos = start;
	PField		f;

	while (p_next(st, &pos, end, &f, "Resource"))
	{
		if (f.num == 1)
		{
			Kv			kv;
			Val			v;

			p_want(st, &f, WT_LEN, "Resource");
			st->sb.len = 0;
			st->nkvs = 0;
			memset(&v, 0, sizeof(v));
			v.want_raw = true;
			p_keyvalue(st, f.start, f.end, 1, &kv, &v);
			resource_attribute(st, &kv, &v, f.start, f.end - f.start);
		}
		else if (f.num == 2)
			p_want(st, &f, WT_VARINT, "Resource");
	}
}

static void
p_resource_logs(St *st, size_t start, size_t end)
{
	size_t		pos = start;
	size_t		first = st->nrecs;
	PField		f;

	st->stream = NULL;
	st->stream_len = 0;
	st->stream_kv_len = 0;
	while (p_next(st, &pos, end, &f, "ResourceLogs"))
	{
		if (f.num == 1)
		{
			p_want(st, &f, WT_LEN, "ResourceLogs");
			p_resource(st, f.start, f.end);
		}
		else if (f.num == 2)
		{
			p_want(st, &f, WT_LEN, "ResourceLogs");
			p_scope_logs(st, f.start, f.end);
		}
		else if (f.num == 3)
			p_want(st, &f, WT_LEN, "ResourceLogs");
	}
	set_streams(st, first);
}

static void
p_logs_data(St *st)
{
	size_t		pos = 0;
	PField		f;

	while (p_next(st, &pos, st->len, &f, "LogsData"))
	{
		if (f.num == 1)
		{
			p_want(st, &f, WT_LEN, "LogsData");
			p_resource_logs(st, f.start, f.end);
		}
	}
}

/* ------------------------------------------------------------------------
 * OTLP/JSON
 * ------------------------------------------------------------------------ */

static void jfail(St *st, size_t pos, const char *what) OT_NORETURN;

static void
jfail(St *st, size_t pos, const char *what)
{
	fail(st, "invalid JSON at byte %zu: %s", pos, what);
}

static void
jfail_unexpected(St *st) OT_NORETURN;

static void
jfail_unexpected(St *st)
{
	size_t		p = st->p;

	if (p >= st->len)
		fail(st, "invalid JSON at byte %zu: unexpected end of document", p);
	if (st->d[p] >= 0x21 && st->d[p] < 0x7f)
		fail(st, "invalid JSON at byte %zu: unexpected character '%c'", p, (char) st->d[p]);
	fail(st, "invalid JSON at byte %zu: unexpected byte 0x%02x", p, (unsigned) st->d[p]);
}

static inline void
ws(St *st)
{
	while (st->p < st->len && (st->d[st->p] == ' ' || st->d[st->p] == '\n' ||
							   st->d[st->p] == '\r' || st->d[st->p] == '\t'))
		st->p++;
}

static inline int
hexv(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static long
hex4(const St *st, size_t pos)
{
	long		v = 0;

	if (st->len - pos < 4)
		return -1;
	for (int i = 0; i < 4; i++)
	{
		int			h = hexv(st->d[pos + i]);

		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* 0: plain; 1: '"'; 2: '\\'; 3: control; 4: >= 0x80 */
static const unsigned char jstr_class[256] = {
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

/* A scanned JSON string: its contents d[start..end), escapes or not. */
typedef struct JStr
{
	size_t		start;
	size_t		end;
	bool		escaped;
} JStr;

/* Validate the string whose opening quote is at st->p; st->p goes past it. */
static void
jstring(St *st, JStr *s)
{
	const uint8_t *d = st->d;
	size_t		p = st->p + 1;

	s->start = p;
	s->escaped = false;
	for (;;)
	{
		int			cls;

		while (st->len - p >= 8 && !word_special(d + p))
			p += 8;
		while (p < st->len && jstr_class[d[p]] == 0)
			p++;
		if (OT_UNLIKELY(p >= st->len))
			jfail(st, s->start - 1, "unterminated string");
		cls = jstr_class[d[p]];
		if (cls == 1)
			break;
		if (cls == 4)
		{
			size_t		bad;
			size_t		k = utf8_seq(d, st->len, p, &bad);

			if (k == 0)
				jfail(st, p, "invalid UTF-8 in a string");
			p += k;
			continue;
		}
		if (cls == 3)
			jfail(st, p, "control character in a string");
		/* a backslash */
		s->escaped = true;
		if (p + 1 >= st->len)
			jfail(st, s->start - 1, "unterminated string");
		switch (d[p + 1])
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				break;
			case 'u':
				{
					long		cp = hex4(st, p + 2);

					if (cp < 0)
						jfail(st, p, "invalid \\u escape");
					if (cp >= 0xdc00 && cp <= 0xdfff)
						jfail(st, p, "lone low surrogate in a \\u escape");
					if (cp >= 0xd800 && cp <= 0xdbff)
					{
						long		lo = -1;

						if (st->len - (p + 6) >= 6 && d[p + 6] == '\\' && d[p + 7] == 'u')
							lo = hex4(st, p + 8);
						if (lo < 0xdc00 || lo > 0xdfff)
							jfail(st, p, "lone high surrogate in a \\u escape");
						p += 6;
					}
					p += 6;
				}
				break;
			default:
				jfail(st, p, "invalid escape in a string");
		}
	}
	s->end = p;
	st->p = p + 1;
}

/* Append the decoded bytes of a validated string. */
static void
jdecode(St *st, const JStr *s)
{
	const uint8_t *d = st->d;
	size_t		p = s->start;
	char	   *o;

	if (!s->escaped)
	{
		sb_put(st, d + p, s->end - p);
		return;
	}
	sb_reserve(st, s->end - s->start);
	o = st->sb.data + st->sb.len;
	while (p < s->end)
	{
		long		cp;

		if (d[p] != '\\')
		{
			*o++ = (char) d[p++];
			continue;
		}
		switch (d[p + 1])
		{
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				cp = hex4(st, p + 2);
				if (cp >= 0xd800 && cp <= 0xdbff)
				{
					cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(st, p + 8) - 0xdc00);
					p += 6;
				}
				p += 4;
				if (cp < 0x80)
					*o++ = (char) cp;
				else if (cp < 0x800)
				{
					*o++ = (char) (0xc0 | (cp >> 6));
					*o++ = (char) (0x80 | (cp & 0x3f));
				}
				else if (cp < 0x10000)
				{
					*o++ = (char) (0xe0 | (cp >> 12));
					*o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
					*o++ = (char) (0x80 | (cp & 0x3f));
				}
				else
				{
					*o++ = (char) (0xf0 | (cp >> 18));
					*o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
					*o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
					*o++ = (char) (0x80 | (cp & 0x3f));
				}
				break;
			default:			/* '"', '\\', '/' */
				*o++ = (char) d[p + 1];
				break;
		}
		p += 2;
	}
	st->sb.len = (size_t) (o - st->sb.data);
}

/* Validate a number at st->p; *is_int when it has no fraction or exponent. */
static void
jnumber(St *st, size_t *start, bool *is_int)
{
	*start = st->p;
	switch (json_number_scan(st->d, st->len, &st->p, is_int))
	{
		case JSON_NUMBER_OK:
			return;
		case JSON_NUMBER_LEADING_ZERO:
			jfail(st, *start, "number with a leading zero");
		default:
			jfail(st, *start, "invalid number");
	}
}

static void
jliteral(St *st, const char *lit)
{
	size_t		n = strlen(lit);

	if (st->len - st->p < n || memcmp(st->d + st->p, lit, n) != 0)
		jfail(st, st->p, "invalid literal");
	st->p += n;
}

/* What the value at st->p is, for messages. */
static const char *
jkind(St *st)
{
	if (st->p >= st->len)
		jfail_unexpected(st);
	switch (st->d[st->p])
	{
		case '{':
			return "an object";
		case '[':
			return "an array";
		case '"':
			return "a string";
		case 't':
		case 'f':
			return "a boolean";
		case 'n':
			return "null";
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			return "a number";
		default:
			jfail_unexpected(st);
	}
}

static void jwrong(St *st, const char *field, const char *expected) OT_NORETURN;

static void
jwrong(St *st, const char *field, const char *expected)
{
	const char *kind = jkind(st);

	fail(st, "%s at byte %zu is %s, expected %s", field, st->p, kind, expected);
}

/* Skip any JSON value at st->p (whitespace skipped), iteratively. */
static void
jskip(St *st)
{
	uint8_t		kinds[OTLP_JSON_SKIP_DEPTH / 8];	/* bit set: object */
	size_t		depth = 0;
	const uint8_t *d = st->d;

	for (;;)
	{
		/* a value */
		ws(st);
		if (st->p >= st->len)
			jfail_unexpected(st);
		switch (d[st->p])
		{
			case '{':
			case '[':
				{
					bool		obj = d[st->p] == '{';

					if (depth >= OTLP_JSON_SKIP_DEPTH)
						fail(st, "JSON nested deeper than %d levels at byte %zu",
							 OTLP_JSON_SKIP_DEPTH, st->p);
					if (obj)
						kinds[depth >> 3] |= (uint8_t) (1 << (depth & 7));
					else
						kinds[depth >> 3] &= (uint8_t) ~(1 << (depth & 7));
					depth++;
					st->p++;
					ws(st);
					if (st->p < st->len && d[st->p] == (obj ? '}' : ']'))
					{
						st->p++;
						depth--;
						break;
					}
					if (obj)
					{
						JStr		k;

						if (st->p >= st->len || d[st->p] != '"')
							jfail(st, st->p, "expected a string key");
						jstring(st, &k);
						ws(st);
						if (st->p >= st->len || d[st->p] != ':')
							jfail(st, st->p, "expected ':'");
						st->p++;
					}
					continue;	/* its first value */
				}
			case '"':
				{
					JStr		s;

					jstring(st, &s);
				}
				break;
			case 't':
				jliteral(st, "true");
				break;
			case 'f':
				jliteral(st, "false");
				break;
			case 'n':
				jliteral(st, "null");
				break;
			default:
				{
					size_t		start;
					bool		is_int;

					if (d[st->p] != '-' && (d[st->p] < '0' || d[st->p] > '9'))
						jfail_unexpected(st);
					jnumber(st, &start, &is_int);
				}
				break;
		}
		/* after a value: closing brackets, then ',' or the end */
		for (;;)
		{
			bool		obj;

			if (depth == 0)
				return;
			ws(st);
			if (st->p >= st->len)
				jfail_unexpected(st);
			obj = (kinds[(depth - 1) >> 3] >> ((depth - 1) & 7)) & 1;
			if (d[st->p] == ',')
			{
				st->p++;
				if (obj)
				{
					JStr		k;

					ws(st);
					if (st->p >= st->len || d[st->p] != '"')
						jfail(st, st->p, "expected a string key");
					jstring(st, &k);
					ws(st);
					if (st->p >= st->len || d[st->p] != ':')
						jfail(st, st->p, "expected ':'");
					st->p++;
				}
				break;			/* the next value */
			}
			if (d[st->p] != (obj ? '}' : ']'))
				jfail(st, st->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
			st->p++;
			depth--;
		}
	}
}

/* Member names of the OTLP messages. */
typedef enum Name
{
	N_OTHER,
	N_RESOURCE_LOGS,
	N_RESOURCE,
	N_ATTRIBUTES,
	N_SCOPE_LOGS,
	N_LOG_RECORDS,
	N_TIME,
	N_OBSERVED_TIME,
	N_SEV_NUMBER,
	N_SEV_TEXT,
	N_BODY,
	N_KEY,
	N_VALUE,
	N_VALUES,
	N_STRING,
	N_BOOL,
	N_INT,
	N_DOUBLE,
	N_ARRAY,
	N_KVLIST,
	N_BYTES
} Name;

/* sorted by length, then name: name_of knows where each length starts */
#define NAME(s, n) {s, sizeof(s) - 1, n}
static const struct
{
	const char *s;
	size_t		len;
	Name		n;
}			names[] = {
	NAME("key", N_KEY),
	NAME("body", N_BODY),
	NAME("value", N_VALUE),
	NAME("values", N_VALUES),
	NAME("intValue", N_INT),
	NAME("resource", N_RESOURCE),
	NAME("boolValue", N_BOOL),
	NAME("scopeLogs", N_SCOPE_LOGS),
	NAME("arrayValue", N_ARRAY),
	NAME("attributes", N_ATTRIBUTES),
	NAME("bytesValue", N_BYTES),
	NAME("logRecords", N_LOG_RECORDS),
	NAME("doubleValue", N_DOUBLE),
	NAME("kvlistValue", N_KVLIST),
	NAME("stringValue", N_STRING),
	NAME("resourceLogs", N_RESOURCE_LOGS),
	NAME("severityText", N_SEV_TEXT),
	NAME("timeUnixNano", N_TIME),
	NAME("severityNumber", N_SEV_NUMBER),
	NAME("observedTimeUnixNano", N_OBSERVED_TIME),
};

static Name
name_of(const char *s, size_t n)
{
	size_t		lo,
				hi;

	/* the candidates of this length: names[] is sorted by length below */
	switch (n)
	{
		case 3:
			lo = 0, hi = 1;
			break;
		case 4:
			lo = 1, hi = 2;
			break;
		case 5:
			lo = 2, hi = 3;
			break;
		case 6:
			lo = 3, hi = 4;
			break;
		case 8:
			lo = 4, hi = 6;
			break;
		case 9:
			lo = 6, hi = 8;
			break;
		case 10:
			lo = 8, hi = 12;
			break;
		case 11:
			lo = 12, hi = 15;
			break;
		case 12:
			lo = 15, hi = 18;
			break;
		case 14:
			lo = 18, hi = 19;
			break;
		case 20:
			lo = 19, hi = 20;
			break;
		default:
			return N_OTHER;
	}
	for (size_t i = lo; i < hi; i++)
		if (names[i].s[0] == s[0] && memcmp(names[i].s, s, n) == 0)
			return names[i].n;
	return N_OTHER;
}

/*
 * Open the object at st->p ('{' expected; null: false, absent), naming it
 * field in a message when it is something else.
 */
static bool
jobj_open(St *st, const char *field)
{
	if (st->p < st->len && st->d[st->p] == 'n')
	{
		jliteral(st, "null");
		return false;
	}
	if (st->p >= st->len || st->d[st->p] != '{')
		jwrong(st, field, "an object");
	st->p++;
	return true;
}

/* The next member of an open object: its name, st->p at its value; false at '}'. */
static bool
jobj_next(St *st, bool *first, Name *name)
{
	JStr		k;

	ws(st);
	if (st->p < st->len && st->d[st->p] == '}')
	{
		st->p++;
		return false;
	}
	if (!*first)
	{
		if (st->p >= st->len || st->d[st->p] != ',')
			jfail(st, st->p, "expected ',' or '}'");
		st->p++;
		ws(st);
	}
	else if (st->p >= st->len)
		jfail_unexpected(st);
	*first = false;
	if (st->p >= st->len || st->d[st->p] != '"')
		jfail(st, st->p, "expected a string key");
	jstring(st, &k);
	if (!k.escaped)
		*name = name_of((const char *) st->d + k.start, k.end - k.start);
	else
	{
		size_t		mark = st->sb.len;

		jdecode(st, &k);
		*name = name_of(st->sb.data + mark, st->sb.len - mark);
		st->sb.len = mark;
	}
	ws(st);
	if (st->p >= st->len || st->d[st->p] != ':')
		jfail(st, st->p, "expected ':'");
	st->p++;
	ws(st);
	if (st->p >= st->len)
		jfail_unexpected(st);
	return true;
}

/* Open the array at st->p (null: false). */
static bool
jarr_open(St *st, const char *field)
{
	if (st->p < st->len && st->d[st->p] == 'n')
	{
		jliteral(st, "null");
		return false;
	}
	if (st->p >= st->len || st->d[st->p] != '[')
		jwrong(st, field, "an array");
	st->p++;
	return true;
}

/* The next element of an open array, st->p at it; false at ']'. */
static bool
jarr_next(St *st, bool *first)
{
	ws(st);
	if (*first)
	{
		*first = false;
		if (st->p < st->len && st->d[st->p] == ']')
		{
			st->p++;
			return false;
		}
	}
	else
	{
		if (st->p < st->len && st->d[st->p] == ']')
		{
			st->p++;
			return false;
		}
		if (st->p >= st->len || st->d[st->p] != ',')
			jfail(st, st->p, "expected ',' or ']'");
		st->p++;
		ws(st);
	}
	if (st->p >= st->len)
		jfail_unexpected(st);
	return true;
}

/* null at st->p: consume it. */
static bool
jnull(St *st)
{
	if (st->p < st->len && st->d[st->p] == 'n')
	{
		jliteral(st, "null");
		return true;
	}
	return false;
}

/*
 * An integer: a JSON number without fraction or exponent, or a string of
 * one (optional '-', digits).  Into *u as unsigned when !sign.
 */
static void
jinteger(St *st, const char *field, bool sign, int64_t *i, uint64_t *u)
{
	size_t		start,
				end,
				p;
	bool		neg = false;
	uint64_t	v = 0;
	size_t		at = st->p;

	if (st->p < st->len && st->d[st->p] == '"')
	{
		JStr		s;

		jstring(st, &s);
		start = s.start;
		end = s.end;
	}
	else if (st->p < st->len && (st->d[st->p] == '-' || (st->d[st->p] >= '0' && st->d[st->p] <= '9')))
	{
		bool		is_int;

		jnumber(st, &start, &is_int);
		end = st->p;
		if (!is_int)
			fail(st, "%s at byte %zu is not an integer", field, at);
	}
	else
		jwrong(st, field, "an integer or a string");
	p = start;
	if (p < end && st->d[p] == '-' && sign)
	{
		neg = true;
		p++;
	}
	if (p >= end)
		fail(st, "%s at byte %zu is not an integer", field, at);
	for (; p < end; p++)
	{
		uint8_t		c = st->d[p];

		if (c < '0' || c > '9')
			fail(st, "%s at byte %zu is not an integer", field, at);
		if (v > (UINT64_MAX - (c - '0')) / 10)
			fail(st, "%s at byte %zu is out of range", field, at);
		v = v * 10 + (c - '0');
	}
	if (sign)
	{
		if (neg ? v > (uint64_t) INT64_MAX + 1 : v > (uint64_t) INT64_MAX)
			fail(st, "%s at byte %zu is out of range", field, at);
		*i = neg ? (int64_t) (0 - v) : (int64_t) v;
	}
	else
		*u = v;
}

/* Parse the number d[start..end) (valid JSON) as a double. */
static double
jdouble_of(St *st, size_t start, size_t end)
{
	size_t		mark = st->sb.len;
	double		v;

	sb_put(st, st->d + start, end - start);
	sb_putc(st, '\0');
	v = strtod(st->sb.data + mark, NULL);
	st->sb.len = mark;
	return v;
}

/* Is d[start..end) a JSON number? */
static bool
is_json_number(const St *st, size_t start, size_t end)
{
	size_t		p = start;

	return json_number_scan(st->d, end, &p, NULL) == JSON_NUMBER_OK && p == end;
}

static int
b64v(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode the base64 string s into the scratch; false if it is not base64. */
static bool
jbase64(St *st, const JStr *s, size_t *off, size_t *len)
{
	size_t		mark = st->sb.len;
	size_t		n,
				i;
	uint32_t	acc = 0;
	int			bits = 0;
	char	   *o;
	const uint8_t *src;

	/* the alphabet needs no escapes; an escaped string is decoded first */
	if (s->escaped)
	{
		jdecode(st, s);
		n = st->sb.len - mark;
	}
	else
		n = s->end - s->start;
	sb_reserve(st, n);
	src = s->escaped ? (const uint8_t *) st->sb.data + mark : st->d + s->start;
	o = st->sb.data + st->sb.len;
	while (n > 0 && src[n - 1] == '=')
		n--;
	if (n % 4 == 1 || (s->escaped ? st->sb.len - mark : s->end - s->start) - n > 2)
		return false;
	for (i = 0; i < n; i++)
	{
		int			v = b64v(src[i]);

		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			*o++ = (char) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*off = st->sb.len;
	*len = (size_t) (o - (st->sb.data + st->sb.len));
	st->sb.len += *len;
	return true;
}

static void j_keyvalue(St *st, int depth, Kv *kv, Val *v);
static void j_any(St *st, int depth, Val *v);

static void
jput_null(St *st, Val *v)
{
	v->type = V_NULL;
	v->off = st->sb.len;
	SB_LIT(st, "null");
	v->len = 4;
}

/* {"values": [...]} of an arrayValue or kvlistValue, assembled into v. */
static void
j_list(St *st, int depth, bool kvlist, Val *v)
{
	size_t		base = st->nkvs;
	size_t		mark = st->sb.len;
	bool		first = true;
	Name		nm;
	const char *field = kvlist ? "kvlistValue" : "arrayValue";

	if (!jobj_open(st, field))
		return;
	while (jobj_next(st, &first, &nm))
	{
		bool		efirst = true;

		if (nm != N_VALUES)
		{
			jskip(st);
			continue;
		}
		st->nkvs = base;		/* a duplicate replaces */
		if (!jarr_open(st, "values"))
			continue;
		while (jarr_next(st, &efirst))
		{
			Kv			kv = {0, 0, 0, 0};
			Val			ev;

			memset(&ev, 0, sizeof(ev));
			if (kvlist)
				j_keyvalue(st, depth + 1, &kv, &ev);
			else
			{
				j_any(st, depth + 1, &ev);
				kv.voff = ev.off;
				kv.vlen = ev.len;
			}
			kv_push(st, &kv);
		}
	}
	assemble(st, base, mark, kvlist, v);
}

/* An AnyValue at st->p, rendered into the scratch. */
static void
j_any(St *st, int depth, Val *v)
{
	bool		first = true,
				set = false;
	Name		nm;

	check_depth(st, depth, st->p);
	if (!jobj_open(st, "AnyValue"))
	{
		jput_null(st, v);
		return;
	}
	while (jobj_next(st, &first, &nm))
	{
		size_t		at = st->p;

		if (nm != N_OTHER && nm >= N_STRING && jnull(st))
			continue;			/* null: not set */
		switch (nm)
		{
			case N_STRING:
				{
					JStr		s;

					if (st->d[st->p] != '"')
						jwrong(st, "stringValue", "a string");
					jstring(st, &s);
					v->raw_off = st->sb.len;
					if (!s.escaped)
					{
						v->off = st->sb.len;
						sb_put(st, st->d + s.start - 1, s.end - s.start + 2);
						v->raw_off = v->off + 1;
						v->raw_len = s.end - s.start;
					}
					else
					{
						jdecode(st, &s);
						v->raw_len = st->sb.len - v->raw_off;
						v->off = st->sb.len;
						put_str_self(st, v->raw_off, v->raw_len, true);
					}
					v->type = V_STRING;
				}
				break;
			case N_BOOL:
				v->off = st->sb.len;
				if (st->d[st->p] == 't')
				{
					jliteral(st, "true");
					SB_LIT(st, "true");
				}
				else if (st->d[st->p] == 'f')
				{
					jliteral(st, "false");
					SB_LIT(st, "false");
				}
				else
					jwrong(st, "boolValue", "a boolean");
				v->type = V_BOOL;
				break;
			case N_INT:
				{
					int64_t		i = 0;

					jinteger(st, "intValue", true, &i, NULL);
					v->off = st->sb.len;
					put_int(st, i);
					v->type = V_INT;
				}
				break;
			case N_DOUBLE:
				{
					double		dv;

					if (st->d[st->p] == '"')
					{
						JStr		s;
						size_t		n;
						const char *c;

						jstring(st, &s);
						c = (const char *) st->d + s.start;
						n = s.end - s.start;
						if (s.escaped)
							fail(st, "doubleValue at byte %zu is not a number", at);
						if (n == 3 && memcmp(c, "NaN", 3) == 0)
							dv = NAN;
						else if (n == 8 && memcmp(c, "Infinity", 8) == 0)
							dv = INFINITY;
						else if (n == 9 && memcmp(c, "-Infinity", 9) == 0)
							dv = -INFINITY;
						else if (is_json_number(st, s.start, s.end))
							dv = jdouble_of(st, s.start, s.end);
						else
							fail(st, "doubleValue at byte %zu is not a number", at);
					}
					else if (st->d[st->p] == '-' || (st->d[st->p] >= '0' && st->d[st->p] <= '9'))
					{
						size_t		start;
						bool		is_int;

						jnumber(st, &start, &is_int);
						dv = jdouble_of(st, start, st->p);
					}
					else
						jwrong(st, "doubleValue", "a number");
					v->off = st->sb.len;
					put_double(st, dv);
					v->type = V_DOUBLE;
				}
				break;
			case N_ARRAY:
			case N_KVLIST:
				if (st->d[st->p] != '{')
					jwrong(st, nm == N_ARRAY ? "arrayValue" : "kvlistValue", "an object");
				j_list(st, depth, nm == N_KVLIST, v);
				break;
			case N_BYTES:
				{
					JStr		s;
					size_t		off,
								len;

					if (st->d[st->p] != '"')
						jwrong(st, "bytesValue", "a string");
					jstring(st, &s);
					if (!jbase64(st, &s, &off, &len))
						fail(st, "bytesValue at byte %zu is not base64", at);
					v->off = st->sb.len;
					sb_reserve(st, (len + 2) / 3 * 4 + 2);
					put_base64(st, (const uint8_t *) st->sb.data + off, len);
					v->type = V_BYTES;
				}
				break;
			default:
				jskip(st);
				continue;
		}
		v->len = st->sb.len - v->off;
		set = true;
	}
	if (!set)
		jput_null(st, v);
}

/* A KeyValue at st->p: key and rendered value as ranges in kv. */
static void
j_keyvalue(St *st, int depth, Kv *kv, Val *v)
{
	bool		first = true,
				has_key = false,
				has_value = false;
	Name		nm;
	size_t		start = st->p;

	if (jobj_open(st, "KeyValue"))
	{
		while (jobj_next(st, &first, &nm))
		{
			if (nm == N_KEY)
			{
				JStr		s;

				if (jnull(st))
				{
					has_key = false;
					continue;
				}
				if (st->d[st->p] != '"')
					jwrong(st, "key", "a string");
				jstring(st, &s);
				kv->koff = st->sb.len;
				jdecode(st, &s);
				kv->klen = st->sb.len - kv->koff;
				has_key = true;
			}
			else if (nm == N_VALUE)
			{
				if (jnull(st))
				{
					has_value = false;
					continue;
				}
				j_any(st, depth, v);
				has_value = true;
			}
			else
				jskip(st);
		}
	}
	if (!has_key)
	{
		kv->koff = st->sb.len;
		kv->klen = 0;
	}
	if (!has_value)
	{
		check_depth(st, depth, start);
		jput_null(st, v);
	}
	kv->voff = v->off;
	kv->vlen = v->len;
}

static const char *const severity_enum[25] = {
	"UNSPECIFIED",
	"TRACE", "TRACE2", "TRACE3", "TRACE4",
	"DEBUG", "DEBUG2", "DEBUG3", "DEBUG4",
	"INFO", "INFO2", "INFO3", "INFO4",
	"WARN", "WARN2", "WARN3", "WARN4",
	"ERROR", "ERROR2", "ERROR3", "ERROR4",
	"FATAL", "FATAL2", "FATAL3", "FATAL4",
};

static int64_t
j_severity_number(St *st)
{
	size_t		at = st->p;

	if (st->d[st->p] == '"')
	{
		JStr		s;
		const char *c;
		size_t		n;

		jstring(st, &s);
		c = (const char *) st->d + s.start;
		n = s.end - s.start;
		if (!s.escaped && n > 16 && memcmp(c, "SEVERITY_NUMBER_", 16) == 0)
		{
			for (int i = 0; i < 25; i++)
				if (strlen(severity_enum[i]) == n - 16 && memcmp(c + 16, severity_enum[i], n - 16) == 0)
					return i;
		}
		/* a number in a string, as protobuf's JSON also reads it */
		st->p = at;
	}
	else if (st->d[st->p] != '-' && (st->d[st->p] < '0' || st->d[st->p] > '9'))
		jwrong(st, "severityNumber", "an integer or a severity name");
	{
		int64_t		v = 0;

		jinteger(st, "severityNumber", true, &v, NULL);
		if (v < INT32_MIN || v > INT32_MAX)
			fail(st, "severityNumber at byte %zu is out of range", at);
		return v;
	}
}

static void
j_log_record(St *st)
{
	Rec			r;
	bool		first = true;
	Name		nm;

	begin_record(st, &r);
	r.rec_off = st->p;
	if (jobj_open(st, "a log record"))
	{
		while (jobj_next(st, &first, &nm))
		{
			switch (nm)
			{
				case N_TIME:
					r.time = 0;
					if (!jnull(st))
						jinteger(st, "timeUnixNano", false, NULL, &r.time);
					break;
				case N_OBSERVED_TIME:
					{
						uint64_t	t;

						if (!jnull(st))
							jinteger(st, "observedTimeUnixNano", false, NULL, &t);
					}
					break;
				case N_SEV_NUMBER:
					r.sev_num = 0;
					if (!jnull(st))
						r.sev_num = j_severity_number(st);
					break;
				case N_SEV_TEXT:
					r.has_sev_text = false;
					if (!jnull(st))
					{
						JStr		s;

						if (st->d[st->p] != '"')
							jwrong(st, "severityText", "a string");
						jstring(st, &s);
						r.has_sev_text = true;
						r.sev_off = st->sb.len;
						jdecode(st, &s);
						r.sev_len = st->sb.len - r.sev_off;
					}
					break;
				case N_BODY:
					r.has_body = false;
					if (!jnull(st))
					{
						Val			v;

						memset(&v, 0, sizeof(v));
						j_any(st, 1, &v);
						r.has_body = true;
						r.body_off = v.off;
						r.body_len = v.len;
					}
					break;
				case N_ATTRIBUTES:
					{
						bool		afirst = true;

						st->nkvs = 0;
						if (!jarr_open(st, "attributes"))
							break;
						while (jarr_next(st, &afirst))
						{
							Kv			kv;
							Val			v;

							memset(&v, 0, sizeof(v));
							j_keyvalue(st, 1, &kv, &v);
							kv_push(st, &kv);
						}
					}
					break;
				default:
					jskip(st);
					break;
			}
		}
	}
	r.rec_len = st->p - r.rec_off;
	finish_record(st, &r);
}

static void
j_scope_logs(St *st)
{
	bool		first = true;
	Name		nm;
	size_t		start = st->nrecs;

	if (!jobj_open(st, "a scopeLogs element"))
		return;
	while (jobj_next(st, &first, &nm))
	{
		bool		efirst = true;

		if (nm != N_LOG_RECORDS)
		{
			jskip(st);
			continue;
		}
		st->nrecs = start;
		if (!jarr_open(st, "logRecords"))
			continue;
		while (jarr_next(st, &efirst))
			j_log_record(st);
	}
}

static void
j_resource(St *st)
{
	bool		first = true;
	Name		nm;

	st->stream = NULL;
	st->stream_len = 0;
	st->stream_kv_len = 0;
	if (!jobj_open(st, "resource"))
		return;
	while (jobj_next(st, &first, &nm))
	{
		bool		efirst = true;

		if (nm != N_ATTRIBUTES)
		{
			jskip(st);
			continue;
		}
		st->stream = NULL;
		st->stream_len = 0;
		st->stream_kv_len = 0;
		if (!jarr_open(st, "attributes"))
			continue;
		while (jarr_next(st, &efirst))
		{
			Kv			kv;
			Val			v;
			size_t		kv_off = st->p;

			st->sb.len = 0;
			st->nkvs = 0;
			memset(&v, 0, sizeof(v));
			v.want_raw = true;
			j_keyvalue(st, 1, &kv, &v);
			resource_attribute(st, &kv, &v, kv_off, st->p - kv_off);
		}
	}
}

static void
j_resource_logs(St *st)
{
	bool		first = true;
	Name		nm;
	size_t		start = st->nrecs;

	st->stream = NULL;
	st->stream_len = 0;
	st->stream_kv_len = 0;
	if (jobj_open(st, "a resourceLogs element"))
	{
		while (jobj_next(st, &first, &nm))
		{
			if (nm == N_RESOURCE)
				j_resource(st);
			else if (nm == N_SCOPE_LOGS)
			{
				bool		efirst = true;

				st->nrecs = start;
				if (!jarr_open(st, "scopeLogs"))
					continue;
				while (jarr_next(st, &efirst))
					j_scope_logs(st);
			}
			else
				jskip(st);
		}
	}
	set_streams(st, start);
}

static void
j_document(St *st)
{
	bool		first = true;
	Name		nm;

	ws(st);
	if (st->p >= st->len)
		jfail(st, st->p, st->len == 0 ? "empty document" : "document holds only whitespace");
	if (st->d[st->p] != '{')
	{
		const char *kind = jkind(st);

		fail(st, "the document at byte %zu is %s, expected an object", st->p, kind);
	}
	st->p++;
	while (jobj_next(st, &first, &nm))
	{
		bool		efirst = true;

		if (nm != N_RESOURCE_LOGS)
		{
			jskip(st);
			continue;
		}
		st->nrecs = 0;
		if (!jarr_open(st, "resourceLogs"))
			continue;
		while (jarr_next(st, &efirst))
			j_resource_logs(st);
	}
	ws(st);
	if (st->p < st->len)
		jfail(st, st->p, "unexpected data after the document");
}

/* ------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------ */

static void
free_blocks(Block *b)
{
	while (b != NULL)
	{
		Block	   *next = b->next;

		free(b);
		b = next;
	}
}

/* The decode itself: the only place that catches the longjmp of fail(). */
static bool
run(St *st, OtlpEncoding encoding)
{
	if (setjmp(st->jb) != 0)
		return false;
	if (encoding == OTLP_PROTO)
		p_logs_data(st);
	else if (encoding == OTLP_JSON)
		j_document(st);
	else
		fail(st, "unknown encoding %d", (int) encoding);
	return true;
}

bool
otlp_decode(const uint8_t *buf, size_t len, OtlpEncoding encoding,
			const char *stream_attribute, const OtlpAllocator *allocator,
			OtlpBatch *out, char *err, size_t errlen)
{
	St		   *st;
	bool		ok;

	memset(out, 0, sizeof(*out));
	out->allocator = allocator;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	/* on the heap: a jmp_buf and the state are too big to care about the stack */
	if (allocator != NULL)
		st = allocator->alloc(allocator->ctx, sizeof(St));
	else if ((st = malloc(sizeof(St))) == NULL)
	{
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		return false;
	}
	memset(st, 0, sizeof(*st));
	st->d = buf;
	st->len = buf == NULL ? 0 : len;
	st->allocator = allocator;
	st->stream_attr = stream_attribute ? stream_attribute : "";
	st->stream_attr_len = strlen(st->stream_attr);
	st->err = err;
	st->errlen = errlen;

	ok = run(st, encoding);
	if (allocator == NULL)
	{
		free(st->sb.data);
		free(st->kvs);
		free(st->tmpkvs);
	}
	if (ok)
	{
		out->records = st->recs;
		out->count = st->nrecs;
		out->blocks = st->blocks;
	}
	else if (allocator == NULL)
	{
		free(st->recs);
		free_blocks(st->blocks);
	}
	if (allocator == NULL)
		free(st);
	return ok;
}

/* Output of otlp_single_record: written while it fits, counted always. */
typedef struct Out
{
	uint8_t    *d;
	size_t		cap;
	size_t		len;
} Out;

static void
out_put(Out *o, const void *s, size_t n)
{
	if (o->len + n <= o->cap && n > 0)
		memcpy(o->d + o->len, s, n);
	o->len += n;
}

static size_t
varint_size(uint64_t v)
{
	size_t		n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

/* A length-delimited field's tag and length (its bytes follow). */
static void
out_len_field(Out *o, int num, size_t len)
{
	uint8_t		b[11];
	size_t		n = 0;
	uint64_t	v = len;

	b[n++] = (uint8_t) ((num << 3) | WT_LEN);
	while (v >= 0x80)
	{
		b[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t) v;
	out_put(o, b, n);
}

#define OUT_LIT(o, lit) out_put((o), (lit), sizeof(lit) - 1)

size_t
otlp_single_record(const uint8_t *buf, OtlpEncoding encoding, const OtlpRecord *record,
				   uint8_t *out, size_t cap)
{
	Out			o = {out, cap, 0};
	const uint8_t *rec = buf + record->record_off;
	const uint8_t *kv = buf + record->stream_kv_off;
	size_t		rlen = record->record_len;
	size_t		kvlen = record->stream_kv_len;

	if (encoding == OTLP_JSON)
	{
		OUT_LIT(&o, "{\"resourceLogs\":[{");
		if (kvlen > 0)
		{
			OUT_LIT(&o, "\"resource\":{\"attributes\":[");
			out_put(&o, kv, kvlen);
			OUT_LIT(&o, "]},");
		}
		OUT_LIT(&o, "\"scopeLogs\":[{\"logRecords\":[");
		out_put(&o, rec, rlen);
		OUT_LIT(&o, "]}]}]}");
	}
	else
	{
		/* LogsData{1: ResourceLogs{1: Resource{1: kv}, 2: ScopeLogs{2: record}}} */
		size_t		scope_logs = 1 + varint_size(rlen) + rlen;
		size_t		resource = kvlen > 0 ? 1 + varint_size(kvlen) + kvlen : 0;
		size_t		resource_logs = (kvlen > 0 ? 1 + varint_size(resource) + resource : 0) +
			1 + varint_size(scope_logs) + scope_logs;

		out_len_field(&o, 1, resource_logs);
		if (kvlen > 0)
		{
			out_len_field(&o, 1, resource);
			out_len_field(&o, 1, kvlen);
			out_put(&o, kv, kvlen);
		}
		out_len_field(&o, 2, scope_logs);
		out_len_field(&o, 2, rlen);
		out_put(&o, rec, rlen);
	}
	return o.len;
}

void
otlp_batch_free(OtlpBatch *batch)
{
	if (batch == NULL)
		return;
	if (batch->allocator == NULL)
	{
		free(batch->records);
		free_blocks(batch->blocks);
	}
	batch->records = NULL;
	batch->count = 0;
	batch->blocks = NULL;
}
