/*
 * json_path.c -- find the value at a dotted path in a JSON document
 *
 * A single forward pass over doc[0..len) that validates the whole document
 * (RFC 8259) and, on the way, follows the path.  No recursion: the kind of
 * each open container (object or array) is kept in a bit stack, one bit per
 * level, in a 64-bit word on the C stack up to 64 levels and in a malloc'd
 * buffer (grown by doubling, at most JSON_PATH_MAX_DEPTH / 8 bytes) beyond;
 * it is freed before returning.
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

/* Scan a number at d[*pp] per the JSON grammar.  Returns 0, or -1 with err. */
static int
scan_number(const unsigned char *d, size_t len, size_t *pp, char *err, size_t errlen)
{
	size_t		start = *pp;
	size_t		p = start;

	if (d[p] == '-')
		p++;
	if (p < len && d[p] == '0')
	{
		p++;
		if (p < len && d[p] >= '0' && d[p] <= '9')
		{
			set_err(err, errlen, "number with a leading zero at byte %zu", start);
			return -1;
		}
	}
	else if (p < len && d[p] >= '1' && d[p] <= '9')
	{
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	else
		goto bad;
	if (p < len && d[p] == '.')
	{
		p++;
		if (p >= len || d[p] < '0' || d[p] > '9')
			goto bad;
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	if (p < len && (d[p] == 'e' || d[p] == 'E'))
	{
		p++;
		if (p < len && (d[p] == '+' || d[p] == '-'))
			p++;
		if (p >= len || d[p] < '0' || d[p] > '9')
			goto bad;
		while (p < len && d[p] >= '0' && d[p] <= '9')
			p++;
	}
	*pp = p;
	return 0;

bad:
	set_err(err, errlen, "invalid number at byte %zu", start);
	return -1;
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

json_path_result
json_path_lookup(const char *doc, size_t len, const char *path,
				 char *out, size_t outcap, size_t *outlen,
				 const char **type_name, char *err, size_t errlen)
{
	const unsigned char *d = (const unsigned char *) doc;
	size_t		p = 0;
	size_t		nseg;
	size_t		i;
	const char *seg;
	size_t		seglen;
	size_t		depth = 0;		/* open containers */
	size_t		matched = 0;	/* containers 1..matched are on the path */
	int			role = ROLE_DESCEND;
	uint64_t	inline_bits = 0;	/* bit set: object, clear: array */
	uint64_t   *bits = &inline_bits;
	uint64_t   *heap = NULL;
	size_t		nwords = 1;
	json_path_result result = JSON_PATH_MISSING;
	const char *found_type = NULL;
	size_t		found_len = 0;
	sink		s;

	if (type_name)
		*type_name = NULL;
	if (outlen)
		*outlen = 0;
	if (out && outcap > 0)
		out[0] = '\0';
	if (err && errlen > 0)
		err[0] = '\0';

	/* the path: non-empty segments separated by single dots */
	if (path == NULL || path[0] == '\0')
		return JSON_PATH_BAD_PATH;
	nseg = 1;
	for (i = 0; path[i] != '\0'; i++)
	{
		if (path[i] == '.')
		{
			if (i == 0 || path[i + 1] == '\0' || path[i + 1] == '.')
				return JSON_PATH_BAD_PATH;
			nseg++;
		}
	}
	seg = path;
	seglen = 0;
	while (seg[seglen] != '\0' && seg[seglen] != '.')
		seglen++;

	if (d == NULL)
		len = 0;

	for (;;)
	{
		/* ---- a value starts here (whitespace skipped) ---- */
		while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
			p++;
		if (JP_UNLIKELY(p >= len))
		{
			if (depth > 0)
				err_unexpected(err, errlen, d, len, p);
			else if (len == 0)
				set_err(err, errlen, "empty document");
			else
				set_err(err, errlen, "document holds only whitespace");
			goto invalid;
		}

		switch (d[p])
		{
			case '{':
			case '[':
				if (JP_UNLIKELY(depth >= JSON_PATH_MAX_DEPTH))
				{
					set_err(err, errlen, "nested deeper than %d levels at byte %zu",
							JSON_PATH_MAX_DEPTH, p);
					goto invalid;
				}
				if (JP_UNLIKELY((depth >> 6) >= nwords))
				{
					size_t		nw = nwords * 2;
					uint64_t   *nb = malloc(nw * sizeof(uint64_t));

					if (nb == NULL)
					{
						set_err(err, errlen, "out of memory at byte %zu", p);
						goto invalid;
					}
					memcpy(nb, bits, nwords * sizeof(uint64_t));
					free(heap);
					heap = bits = nb;
					nwords = nw;
				}
				if (d[p] == '{')
				{
					bits[depth >> 6] |= (uint64_t) 1 << (depth & 63);
					if (role == ROLE_TARGET)
					{
						result = JSON_PATH_NOT_STRING;
						found_type = "object";
					}
				}
				else
				{
					bits[depth >> 6] &= ~((uint64_t) 1 << (depth & 63));
					if (role == ROLE_TARGET)
					{
						result = JSON_PATH_NOT_STRING;
						found_type = "array";
					}
				}
				depth++;
				p++;
				if (d[p - 1] == '{')
				{
					if (role == ROLE_DESCEND)
					{
						if (depth > 1)
							seg_next(&seg, &seglen);
						matched = depth;
					}
					while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
						p++;
					if (p < len && d[p] == '}')
					{
						p++;
						goto close_container;
					}
					goto object_key;
				}
				else
				{
					while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
						p++;
					if (p < len && d[p] == ']')
					{
						p++;
						goto close_container;
					}
					role = ROLE_NONE;
					continue;	/* the first element */
				}

			case '"':
				if (role == ROLE_TARGET)
				{
					s.mode = SINK_COPY;
					s.out = out;
					s.cap = (out && outcap > 0) ? outcap - 1 : 0;
				}
				else
					s.mode = SINK_NONE;
				s.n = 0;
				if (scan_string(d, len, &p, &s, err, errlen) < 0)
					goto invalid;
				if (role == ROLE_TARGET)
				{
					result = JSON_PATH_STRING;
					found_len = s.n;
					if (out && outcap > 0)
						out[s.n < s.cap ? s.n : s.cap] = '\0';
				}
				break;

			case 't':
			case 'f':
			case 'n':
				{
					const char *lit = d[p] == 't' ? "true" : d[p] == 'f' ? "false" : "null";
					size_t		n = strlen(lit);

					if (len - p < n || memcmp(d + p, lit, n) != 0)
					{
						set_err(err, errlen, "invalid literal at byte %zu", p);
						goto invalid;
					}
					p += n;
					if (role == ROLE_TARGET)
					{
						result = JSON_PATH_NOT_STRING;
						found_type = lit[0] == 'n' ? "null" : "boolean";
					}
				}
				break;

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
				if (scan_number(d, len, &p, err, errlen) < 0)
					goto invalid;
				if (role == ROLE_TARGET)
				{
					result = JSON_PATH_NOT_STRING;
					found_type = "number";
				}
				break;

			default:
				err_unexpected(err, errlen, d, len, p);
				goto invalid;
		}

		/* ---- after a value ---- */
after_value:
		while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
			p++;
		if (depth == 0)
		{
			if (p < len)
			{
				set_err(err, errlen, "unexpected %s after the document at byte %zu",
						d[p] >= 0x21 && d[p] < 0x7f ? "character" : "byte", p);
				goto invalid;
			}
			break;				/* done */
		}
		if (p >= len)
		{
			set_err(err, errlen, "unexpected end of document at byte %zu", p);
			goto invalid;
		}
		if (bits[(depth - 1) >> 6] & ((uint64_t) 1 << ((depth - 1) & 63)))
		{
			/* in an object */
			if (d[p] == ',')
			{
				p++;
				while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
					p++;
				goto object_key;
			}
			if (d[p] != '}')
			{
				if (d[p] >= 0x21 && d[p] < 0x7f)
					set_err(err, errlen, "expected ',' or '}' but found '%c' at byte %zu",
							(char) d[p], p);
				else
					err_unexpected(err, errlen, d, len, p);
				goto invalid;
			}
		}
		else
		{
			/* in an array */
			if (d[p] == ',')
			{
				p++;
				role = ROLE_NONE;
				continue;		/* the next element */
			}
			if (d[p] != ']')
			{
				if (d[p] >= 0x21 && d[p] < 0x7f)
					set_err(err, errlen, "expected ',' or ']' but found '%c' at byte %zu",
							(char) d[p], p);
				else
					err_unexpected(err, errlen, d, len, p);
				goto invalid;
			}
		}
		p++;

close_container:
		if (matched == depth)
		{
			matched--;
			if (depth > 1)
				seg_prev(path, &seg, &seglen);
		}
		depth--;
		goto after_value;

		/* ---- a key, then ':' (whitespace before the key skipped) ---- */
object_key:
		if (p >= len || d[p] != '"')
		{
			if (p < len && d[p] >= 0x21 && d[p] < 0x7f)
				set_err(err, errlen, "expected a string key but found '%c' at byte %zu",
						(char) d[p], p);
			else
				err_unexpected(err, errlen, d, len, p);
			goto invalid;
		}
		if (matched == depth)
		{
			s.mode = SINK_CMP;
			s.cmp = seg;
			s.cmplen = seglen;
			s.equal = 1;
		}
		else
			s.mode = SINK_NONE;
		s.n = 0;
		if (scan_string(d, len, &p, &s, err, errlen) < 0)
			goto invalid;
		role = ROLE_NONE;
		if (s.mode == SINK_CMP && s.equal && s.n == seglen)
		{
			/* a later duplicate replaces whatever the earlier one held */
			result = JSON_PATH_MISSING;
			role = depth == nseg ? ROLE_TARGET : ROLE_DESCEND;
		}
		while (p < len && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t'))
			p++;
		if (p >= len || d[p] != ':')
		{
			if (p < len && d[p] >= 0x21 && d[p] < 0x7f)
				set_err(err, errlen, "expected ':' but found '%c' at byte %zu", (char) d[p], p);
			else
				err_unexpected(err, errlen, d, len, p);
			goto invalid;
		}
		p++;
		/* the value follows: back to the top of the loop */
	}

	free(heap);
	if (result == JSON_PATH_STRING)
	{
		if (outlen)
			*outlen = found_len;
	}
	else
	{
		if (out && outcap > 0)
			out[0] = '\0';
		if (result == JSON_PATH_NOT_STRING && type_name)
			*type_name = found_type;
	}
	return result;

invalid:
	free(heap);
	if (out && outcap > 0)
		out[0] = '\0';
	return JSON_PATH_INVALID;
}
