/*
 * json_path.c -- find the value at a dotted path in a JSON document
 *
 * A single forward pass over doc[0..len) that validates the whole document
 * (RFC 8259) and, on the way, follows the path.  No recursion: the scan is
 * a loop over steps (a value, an object key, what follows a value, a
 * container's end), each a function of its own, and the kind of each open
 * container (object or array) is kept in a bit stack, one bit per level, in
 * a 64-bit word up to 64 levels and in a malloc'd buffer (grown by
 * doubling, at most JSON_PATH_MAX_DEPTH / 8 bytes) beyond; it is freed
 * before returning.
 *
 * Why not PostgreSQL's JSON parser: the worker reads one field of every
 * message, and test/bench/bench_json_path.sh measured 0.39 us per ~230-byte
 * event here against 1.0 us for payload::json #>> and 2.3 us for
 * payload::jsonb #>> on the same events; and this code has no PostgreSQL
 * dependency, so it is unit-tested and fuzzed on its own.
 *
 * Choices made where the header leaves room:
 *
 *  - The path is checked before the document: an empty path or an empty
 *    segment gives JSON_PATH_BAD_PATH whatever the document holds.
 *  - A valid document whose top-level value is not an object (an array, a
 *    string, a number, ...) gives JSON_PATH_MISSING: a path names object
 *    members, and there is no member at all, so nothing is at that path.
 *  - Keys are compared after unescaping, byte for byte ("stream\u005fid"
 *    matches the segment stream_id).  \u0000 decodes to a NUL byte; such a
 *    key never matches (a segment cannot hold a NUL), and such a value is
 *    returned as is, with *outlen counting the NUL.
 *  - Duplicate keys: the last occurrence wins at every level.  A later
 *    duplicate of an intermediate key replaces the whole earlier subtree, so
 *    {"a":{"b":"x"},"a":{}} has nothing at a.b.
 *  - Byte offsets in error messages are 0-based indexes into doc.
 *  - On any result but JSON_PATH_STRING, out (if outcap > 0) is set to the
 *    empty string and *outlen to 0; *type_name is NULL unless the result is
 *    JSON_PATH_NOT_STRING; err is the empty string unless the result is
 *    JSON_PATH_INVALID.  out, outlen, type_name and err may be NULL.
 *  - If the bit stack cannot be allocated (more than 64 levels and malloc
 *    fails), the result is JSON_PATH_INVALID with an "out of memory" message.
 */
#include "message/json_path.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define JP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define JP_LIKELY(x) __builtin_expect(!!(x), 1)
#define JP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define JP_PRINTF(f, a)
#define JP_LIKELY(x) (x)
#define JP_UNLIKELY(x) (x)
#endif

/* Byte classes inside a string. */
#define SC_PLAIN	0			/* ASCII 0x20..0x7f except '"' and '\\' */
#define SC_QUOTE	1
#define SC_BSLASH	2
#define SC_CTRL		3			/* 0x00..0x1f */
#define SC_UTF8		4			/* 0x80..0xff: lead or stray byte */

static const unsigned char string_class[256] = {
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

/* What becomes of the decoded bytes of the string being scanned. */
#define SINK_NONE	0			/* only validate */
#define SINK_CMP	1			/* compare with a path segment */
#define SINK_COPY	2			/* copy to the caller's buffer */

typedef struct sink
{
	int			mode;
	const char *cmp;			/* SINK_CMP: the segment */
	size_t		cmplen;
	int			equal;			/* SINK_CMP: still equal so far */
	char	   *out;			/* SINK_COPY: buffer, room for cap bytes + NUL */
	size_t		cap;
	size_t		n;				/* decoded bytes so far */
} sink;

static void set_err(char *err, size_t errlen, const char *fmt,...) JP_PRINTF(3, 4);

static void
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Describe the byte at doc[pos] ("'x'" or "byte 0x1f") and report it. */
static void
err_unexpected(char *err, size_t errlen, const unsigned char *d, size_t len,
			   size_t pos)
{
	if (pos >= len)
		set_err(err, errlen, "unexpected end of document at byte %zu", pos);
	else if (d[pos] >= 0x21 && d[pos] < 0x7f)
		set_err(err, errlen, "unexpected character '%c' at byte %zu", (char) d[pos], pos);
	else
		set_err(err, errlen, "unexpected byte 0x%02x at byte %zu", (unsigned) d[pos], pos);
}

static inline void
sink_put(sink *s, const unsigned char *b, size_t n)
{
	if (s->mode == SINK_CMP)
	{
		if (s->equal && (s->n + n > s->cmplen || memcmp(s->cmp + s->n, b, n) != 0))
			s->equal = 0;
	}
	else if (s->n < s->cap)
	{
		size_t		room = s->cap - s->n;

		memcpy(s->out + s->n, b, n < room ? n : room);
	}
	s->n += n;
}

static inline int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Read 4 hex digits at d[pos..pos+4); -1 if they are not all there. */
static long
read_hex4(const unsigned char *d, size_t len, size_t pos)
{
	long		v = 0;
	int			i;

	if (len - pos < 4)
		return -1;
	for (i = 0; i < 4; i++)
	{
		int			h = hex_value(d[pos + i]);

		if (h < 0)
			return -1;
		v = (v << 4) | h;
	}
	return v;
}

/*
 * Length of the valid UTF-8 sequence led by d[pos] (a byte >= 0x80), or 0 if
 * it is not valid (bad lead byte, overlong form, UTF-16 surrogate, above
 * U+10FFFF, missing or bad continuation byte, or cut by the end of doc).
 */
static inline size_t
utf8_seq_len(const unsigned char *d, size_t len, size_t pos)
{
	unsigned char c = d[pos];
	unsigned char lo = 0x80,
				hi = 0xbf;
	size_t		n,
				i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
	{
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;			/* no overlongs */
		else if (c == 0xed)
			hi = 0x9f;			/* no surrogates */
	}
	else if (c >= 0xf0 && c <= 0xf4)
	{
		n = 4;
		if (c == 0xf0)
			lo = 0x90;			/* no overlongs */
		else if (c == 0xf4)
			hi = 0x8f;			/* nothing above U+10FFFF */
	}
	else
		return 0;
	if (len - pos < n)
		return 0;
	if (d[pos + 1] < lo || d[pos + 1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((d[pos + i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Scan the string whose opening quote is at d[*pp]; on success *pp is just
 * past the closing quote and the decoded bytes went to s.  Returns 0, or -1
 * with err set.
 */
static int
scan_string(const unsigned char *d, size_t len, size_t *pp, sink *s,
			char *err, size_t errlen)
{
	size_t		start = *pp;
	size_t		p = start + 1;
	size_t		run = p;		/* start of the raw bytes not yet sunk */

	for (;;)
	{
		unsigned char c;
		int			cls;

		/* fast path: plain ASCII */
		while (p < len && string_class[d[p]] == SC_PLAIN)
			p++;
		if (JP_UNLIKELY(p >= len))
		{
			set_err(err, errlen, "unterminated string starting at byte %zu", start);
			return -1;
		}
		c = d[p];
		cls = string_class[c];
		if (cls == SC_QUOTE)
		{
			if (s->mode != SINK_NONE && p > run)
				sink_put(s, d + run, p - run);
			*pp = p + 1;
			return 0;
		}
		if (cls == SC_UTF8)
		{
			size_t		n = utf8_seq_len(d, len, p);

			if (n == 0)
			{
				set_err(err, errlen, "invalid UTF-8 at byte %zu", p);
				return -1;
			}
			p += n;
			continue;
		}
		if (cls == SC_CTRL)
		{
			set_err(err, errlen, "control character 0x%02x in string at byte %zu",
					(unsigned) c, p);
			return -1;
		}

		/* a backslash */
		{
			unsigned char buf[4];
			size_t		nbuf = 1;
			size_t		esc = p;
			long		cp;

			if (s->mode != SINK_NONE && p > run)
				sink_put(s, d + run, p - run);
			if (p + 1 >= len)
			{
				set_err(err, errlen, "unterminated string starting at byte %zu", start);
				return -1;
			}
			switch (d[p + 1])
			{
				case '"':
					buf[0] = '"';
					break;
				case '\\':
					buf[0] = '\\';
					break;
				case '/':
					buf[0] = '/';
					break;
				case 'b':
					buf[0] = '\b';
					break;
				case 'f':
					buf[0] = '\f';
					break;
				case 'n':
					buf[0] = '\n';
					break;
				case 'r':
					buf[0] = '\r';
					break;
				case 't':
					buf[0] = '\t';
					break;
				case 'u':
					cp = read_hex4(d, len, p + 2);
					if (cp < 0)
					{
						set_err(err, errlen, "invalid \\u escape at byte %zu", esc);
						return -1;
					}
					p += 4;
					if (cp >= 0xdc00 && cp <= 0xdfff)
					{
						set_err(err, errlen, "lone low surrogate in \\u escape at byte %zu", esc);
						return -1;
					}
					if (cp >= 0xd800 && cp <= 0xdbff)
					{
						long		lo = -1;

						if (len - (p + 2) >= 6 && d[p + 2] == '\\' && d[p + 3] == 'u')
							lo = read_hex4(d, len, p + 4);
						if (lo < 0xdc00 || lo > 0xdfff)
						{
							set_err(err, errlen, "lone high surrogate in \\u escape at byte %zu", esc);
							return -1;
						}
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p += 6;
					}
					if (cp < 0x80)
						buf[0] = (unsigned char) cp;
					else if (cp < 0x800)
					{
						buf[0] = (unsigned char) (0xc0 | (cp >> 6));
						buf[1] = (unsigned char) (0x80 | (cp & 0x3f));
						nbuf = 2;
					}
					else if (cp < 0x10000)
					{
						buf[0] = (unsigned char) (0xe0 | (cp >> 12));
						buf[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
						buf[2] = (unsigned char) (0x80 | (cp & 0x3f));
						nbuf = 3;
					}
					else
					{
						buf[0] = (unsigned char) (0xf0 | (cp >> 18));
						buf[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
						buf[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
						buf[3] = (unsigned char) (0x80 | (cp & 0x3f));
						nbuf = 4;
					}
					break;
				default:
					set_err(err, errlen, "invalid escape at byte %zu", esc);
					return -1;
			}
			p += 2;
			if (s->mode != SINK_NONE)
				sink_put(s, buf, nbuf);
			run = p;
		}
	}
}

json_number_result
json_number_scan(const unsigned char *d, size_t len, size_t *pp, bool *is_int)
{
	size_t		p = *pp;
	bool		integer = true;

	if (p < len && d[p] == '-')
		p++;
	if (p < len && d[p] == '0')
	{
		p++;
		if (p < len && d[p] >= '0' && d[p] <= '9')
			return JSON_NUMBER_LEADING_ZERO;
	}
	else if (p < len && d[p] >= '1' && d[p] <= '9')
	{
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	else
		return JSON_NUMBER_INVALID;
	if (p < len && d[p] == '.')
	{
		integer = false;
		p++;
		if (p >= len || d[p] < '0' || d[p] > '9')
			return JSON_NUMBER_INVALID;
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	if (p < len && (d[p] == 'e' || d[p] == 'E'))
	{
		integer = false;
		p++;
		if (p < len && (d[p] == '+' || d[p] == '-'))
			p++;
		if (p >= len || d[p] < '0' || d[p] > '9')
			return JSON_NUMBER_INVALID;
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	*pp = p;
	if (is_int)
		*is_int = integer;
	return JSON_NUMBER_OK;
}

/* Scan a number at d[*pp] per the JSON grammar.  Returns 0, or -1 with err. */
static int
scan_number(const unsigned char *d, size_t len, size_t *pp, char *err, size_t errlen)
{
	switch (json_number_scan(d, len, pp, NULL))
	{
		case JSON_NUMBER_OK:
			return 0;
		case JSON_NUMBER_LEADING_ZERO:
			set_err(err, errlen, "number with a leading zero at byte %zu", *pp);
			return -1;
		default:
			set_err(err, errlen, "invalid number at byte %zu", *pp);
			return -1;
	}
}

/* Step the path cursor (segment [*seg, *seg + *seglen)) one segment on. */
static void
seg_next(const char **seg, size_t *seglen)
{
	const char *s = *seg + *seglen + 1;
	size_t		n = 0;

	while (s[n] != '\0' && s[n] != '.')
		n++;
	*seg = s;
	*seglen = n;
}

/* Step the path cursor one segment back (there is one before it). */
static void
seg_prev(const char *path, const char **seg, size_t *seglen)
{
	const char *end = *seg - 1;	/* the '.' before the current segment */
	const char *s = end;

	while (s > path && s[-1] != '.')
		s--;
	*seg = s;
	*seglen = (size_t) (end - s);
}

/* What the value about to be parsed is to the path. */
#define ROLE_NONE	0			/* off the path */
#define ROLE_TARGET	1			/* the value at the full path */
#define ROLE_DESCEND 2			/* an object here is on the path */

/* Where the scan is: what the next piece of the document must be. */
typedef enum step
{
	STEP_VALUE,					/* a value (whitespace before it not skipped) */
	STEP_KEY,					/* an object's key and ':' (whitespace skipped) */
	STEP_AFTER,					/* ',', a closing bracket or the end */
	STEP_CLOSE,					/* a container just closed */
	STEP_DONE,					/* the document is complete and valid */
	STEP_INVALID				/* err says why */
} step;

/* The scan of one document against one path. */
typedef struct scan
{
	const unsigned char *d;
	size_t		len;
	size_t		p;				/* the next byte */
	const char *path;
	size_t		nseg;			/* segments of the path */
	const char *seg;			/* the segment at depth matched + 1 */
	size_t		seglen;
	size_t		depth;			/* open containers */
	size_t		matched;		/* containers 1..matched are on the path */
	int			role;			/* of the value about to be parsed */
	/* kinds of the open containers, one bit per level (set: object) */
	uint64_t	inline_bits;
	uint64_t   *bits;
	uint64_t   *heap;			/* bits when malloc'd (beyond 64 levels) */
	size_t		nwords;
	/* what was found at the path */
	json_path_result result;
	const char *found_type;
	size_t		found_len;
	char	   *out;
	size_t		outcap;
	char	   *err;
	size_t		errlen;
} scan;

static inline void
skip_ws(scan *st)
{
	while (st->p < st->len && (st->d[st->p] == ' ' || st->d[st->p] == '\n' ||
							   st->d[st->p] == '\r' || st->d[st->p] == '\t'))
		st->p++;
}

/* The number of segments of a valid path: non-empty, separated by single dots; 0 if invalid. */
static size_t
path_segments(const char *path)
{
	size_t		nseg = 1;

	if (path == NULL || path[0] == '\0')
		return 0;
	for (size_t i = 0; path[i] != '\0'; i++)
	{
		if (path[i] == '.')
		{
			if (i == 0 || path[i + 1] == '\0' || path[i + 1] == '.')
				return 0;
			nseg++;
		}
	}
	return nseg;
}

/* The value at the path is a non-string of this kind (if it is the target). */
static inline void
found_other(scan *st, const char *type)
{
	if (st->role == ROLE_TARGET)
	{
		st->result = JSON_PATH_NOT_STRING;
		st->found_type = type;
	}
}

/* Record the kind of the container opening at st->depth, growing the bit stack. */
static bool
push_container(scan *st, bool object)
{
	if (JP_UNLIKELY(st->depth >= JSON_PATH_MAX_DEPTH))
	{
		set_err(st->err, st->errlen, "nested deeper than %d levels at byte %zu",
				JSON_PATH_MAX_DEPTH, st->p);
		return false;
	}
	if (JP_UNLIKELY((st->depth >> 6) >= st->nwords))
	{
		size_t		nw = st->nwords * 2;
		uint64_t   *nb = malloc(nw * sizeof(uint64_t));

		if (nb == NULL)
		{
			set_err(st->err, st->errlen, "out of memory at byte %zu", st->p);
			return false;
		}
		memcpy(nb, st->bits, st->nwords * sizeof(uint64_t));
		free(st->heap);
		st->heap = st->bits = nb;
		st->nwords = nw;
	}
	if (object)
		st->bits[st->depth >> 6] |= (uint64_t) 1 << (st->depth & 63);
	else
		st->bits[st->depth >> 6] &= ~((uint64_t) 1 << (st->depth & 63));
	st->depth++;
	return true;
}

static inline bool
in_object(const scan *st)
{
	return (st->bits[(st->depth - 1) >> 6] >> ((st->depth - 1) & 63)) & 1;
}

/* '{' or '[' at st->p: open it, then its first key or element, or its end. */
static step
open_container(scan *st)
{
	bool		object = st->d[st->p] == '{';

	if (!push_container(st, object))
		return STEP_INVALID;
	found_other(st, object ? "object" : "array");
	st->p++;
	if (object && st->role == ROLE_DESCEND)
	{
		if (st->depth > 1)
			seg_next(&st->seg, &st->seglen);
		st->matched = st->depth;
	}
	skip_ws(st);
	if (st->p < st->len && st->d[st->p] == (object ? '}' : ']'))
	{
		st->p++;
		return STEP_CLOSE;
	}
	if (object)
		return STEP_KEY;
	st->role = ROLE_NONE;		/* array elements are off the path */
	return STEP_VALUE;
}

/* A string value at st->p, copied out when it is the target. */
static step
string_value(scan *st)
{
	sink		s;

	s.n = 0;
	if (st->role == ROLE_TARGET)
	{
		s.mode = SINK_COPY;
		s.out = st->out;
		s.cap = (st->out && st->outcap > 0) ? st->outcap - 1 : 0;
	}
	else
		s.mode = SINK_NONE;
	if (scan_string(st->d, st->len, &st->p, &s, st->err, st->errlen) < 0)
		return STEP_INVALID;
	if (st->role == ROLE_TARGET)
	{
		st->result = JSON_PATH_STRING;
		st->found_len = s.n;
		if (st->out && st->outcap > 0)
			st->out[s.n < s.cap ? s.n : s.cap] = '\0';
	}
	return STEP_AFTER;
}

/* true, false or null at st->p. */
static step
literal_value(scan *st)
{
	const char *lit = st->d[st->p] == 't' ? "true" : st->d[st->p] == 'f' ? "false" : "null";
	size_t		n = strlen(lit);

	if (st->len - st->p < n || memcmp(st->d + st->p, lit, n) != 0)
	{
		set_err(st->err, st->errlen, "invalid literal at byte %zu", st->p);
		return STEP_INVALID;
	}
	st->p += n;
	found_other(st, lit[0] == 'n' ? "null" : "boolean");
	return STEP_AFTER;
}

/* A value: whitespace, then a container, a string, a literal or a number. */
static step
value(scan *st)
{
	skip_ws(st);
	if (JP_UNLIKELY(st->p >= st->len))
	{
		if (st->depth > 0)
			err_unexpected(st->err, st->errlen, st->d, st->len, st->p);
		else if (st->len == 0)
			set_err(st->err, st->errlen, "empty document");
		else
			set_err(st->err, st->errlen, "document holds only whitespace");
		return STEP_INVALID;
	}
	switch (st->d[st->p])
	{
		case '{':
		case '[':
			return open_container(st);
		case '"':
			return string_value(st);
		case 't':
		case 'f':
		case 'n':
			return literal_value(st);
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
			if (scan_number(st->d, st->len, &st->p, st->err, st->errlen) < 0)
				return STEP_INVALID;
			found_other(st, "number");
			return STEP_AFTER;
		default:
			err_unexpected(st->err, st->errlen, st->d, st->len, st->p);
			return STEP_INVALID;
	}
}

/* Report what was found at st->p where what was expected. */
static step
expected(scan *st, const char *what)
{
	if (st->p < st->len && st->d[st->p] >= 0x21 && st->d[st->p] < 0x7f)
		set_err(st->err, st->errlen, "expected %s but found '%c' at byte %zu",
				what, (char) st->d[st->p], st->p);
	else
		err_unexpected(st->err, st->errlen, st->d, st->len, st->p);
	return STEP_INVALID;
}

/* After a value: the end of the document, or ',' or the container's end. */
static step
after_value(scan *st)
{
	bool		object;

	skip_ws(st);
	if (st->depth == 0)
	{
		if (st->p < st->len)
		{
			set_err(st->err, st->errlen, "unexpected %s after the document at byte %zu",
					st->d[st->p] >= 0x21 && st->d[st->p] < 0x7f ? "character" : "byte", st->p);
			return STEP_INVALID;
		}
		return STEP_DONE;
	}
	if (st->p >= st->len)
	{
		set_err(st->err, st->errlen, "unexpected end of document at byte %zu", st->p);
		return STEP_INVALID;
	}
	object = in_object(st);
	if (st->d[st->p] == ',')
	{
		st->p++;
		if (object)
		{
			skip_ws(st);
			return STEP_KEY;
		}
		st->role = ROLE_NONE;
		return STEP_VALUE;		/* the next element */
	}
	if (st->d[st->p] != (object ? '}' : ']'))
		return expected(st, object ? "',' or '}'" : "',' or ']'");
	st->p++;
	return STEP_CLOSE;
}

/* A container closed: step the path back if it was on it. */
static step
close_container(scan *st)
{
	if (st->matched == st->depth)
	{
		st->matched--;
		if (st->depth > 1)
			seg_prev(st->path, &st->seg, &st->seglen);
	}
	st->depth--;
	return STEP_AFTER;
}

/* An object's key at st->p, compared with the path's segment when on it, then ':'. */
static step
object_key(scan *st)
{
	const unsigned char *d = st->d;
	sink		s;

	if (st->p >= st->len || d[st->p] != '"')
		return expected(st, "a string key");
	s.n = 0;
	if (st->matched == st->depth)
	{
		s.mode = SINK_CMP;
		s.cmp = st->seg;
		s.cmplen = st->seglen;
		s.equal = 1;
	}
	else
		s.mode = SINK_NONE;
	if (scan_string(d, st->len, &st->p, &s, st->err, st->errlen) < 0)
		return STEP_INVALID;
	st->role = ROLE_NONE;
	if (s.mode == SINK_CMP && s.equal && s.n == st->seglen)
	{
		/* a later duplicate replaces whatever the earlier one held */
		st->result = JSON_PATH_MISSING;
		st->role = st->depth == st->nseg ? ROLE_TARGET : ROLE_DESCEND;
	}
	skip_ws(st);
	if (st->p >= st->len || d[st->p] != ':')
		return expected(st, "':'");
	st->p++;
	return STEP_VALUE;
}

json_path_result
json_path_lookup(const char *doc, size_t len, const char *path,
				 char *out, size_t outcap, size_t *outlen,
				 const char **type_name, char *err, size_t errlen)
{
	scan		st;
	step		next = STEP_VALUE;

	if (type_name)
		*type_name = NULL;
	if (outlen)
		*outlen = 0;
	if (out && outcap > 0)
		out[0] = '\0';
	if (err && errlen > 0)
		err[0] = '\0';

	memset(&st, 0, sizeof(st));
	if ((st.nseg = path_segments(path)) == 0)
		return JSON_PATH_BAD_PATH;
	st.d = (const unsigned char *) doc;
	st.len = doc == NULL ? 0 : len;
	st.path = path;
	st.seg = path;
	while (st.seg[st.seglen] != '\0' && st.seg[st.seglen] != '.')
		st.seglen++;
	st.role = ROLE_DESCEND;
	st.bits = &st.inline_bits;
	st.nwords = 1;
	st.result = JSON_PATH_MISSING;
	st.out = out;
	st.outcap = outcap;
	st.err = err;
	st.errlen = errlen;

	while (next != STEP_DONE && next != STEP_INVALID)
	{
		switch (next)
		{
			case STEP_VALUE:
				next = value(&st);
				break;
			case STEP_KEY:
				next = object_key(&st);
				break;
			case STEP_AFTER:
				next = after_value(&st);
				break;
			case STEP_CLOSE:
				next = close_container(&st);
				break;
			default:
				break;
		}
	}
	free(st.heap);

	if (next == STEP_INVALID)
	{
		if (out && outcap > 0)
			out[0] = '\0';
		return JSON_PATH_INVALID;
	}
	if (st.result == JSON_PATH_STRING)
	{
		if (outlen)
			*outlen = st.found_len;
	}
	else
	{
		if (out && outcap > 0)
			out[0] = '\0';
		if (st.result == JSON_PATH_NOT_STRING && type_name)
			*type_name = st.found_type;
	}
	return st.result;
}
