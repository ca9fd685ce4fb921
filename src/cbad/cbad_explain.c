/*
 * cbad_explain.c -- the plain-English paragraph behind a verdict
 *
 * Deterministic (the same verdict and state give the same text) and plain
 * ASCII: bytes of the payload that are not printable ASCII are shown as '?'.
 * For an anomaly it names what was new: the first few tokens of the event
 * that occur nowhere in the baseline.
 */
#include "cbad_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_NEW_TOKENS 3
#define MAX_TOKEN_SHOWN 32

typedef struct text
{
	char	   *buf;
	size_t		cap;
	size_t		len;			/* length needed so far */
} text;

#if defined(__GNUC__)
static void put(text *t, const char *fmt,...) __attribute__((format(printf, 2, 3)));
#endif

static void
put(text *t, const char *fmt,...)
{
	va_list		ap;
	int			n;
	size_t		room = t->len < t->cap ? t->cap - t->len : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t) n;
}

static bool
is_separator(uint8_t c)
{
	return c <= ' ' || strchr("{}[]\",:;=()<>|'`", c) != NULL;
}

static bool
occurs_in(const cbad_events *ev, const uint8_t *tok, size_t len)
{
	const uint8_t *hay = ev->bytes.data;
	size_t		n = ev->bytes.len;

	if (len == 0 || n < len)
		return false;
	for (size_t i = 0; i + len <= n; i++)
	{
		const uint8_t *p = memchr(hay + i, tok[0], n - len - i + 1);

		if (p == NULL)
			return false;
		i = (size_t) (p - hay);
		if (memcmp(p, tok, len) == 0)
			return true;
	}
	return false;
}

/* Quote the original bytes at [start, start+len), shortened and made ASCII. */
static void
put_token(text *t, const uint8_t *raw, size_t len)
{
	char		shown[MAX_TOKEN_SHOWN + 4];
	size_t		n = len < MAX_TOKEN_SHOWN ? len : MAX_TOKEN_SHOWN;

	for (size_t i = 0; i < n; i++)
		shown[i] = (raw[i] >= 0x20 && raw[i] < 0x7f && raw[i] != '"') ? (char) raw[i] : '?';
	if (n < len)
		memcpy(shown + n, "...", 4);
	else
		shown[n] = '\0';
	put(t, "\"%s\"", shown);
}

/*
 * Name up to MAX_NEW_TOKENS tokens of the masked event that the baseline and
 * the recent normal events lack, quoting the original bytes.
 */
static void
put_new_tokens(text *t, const cbad_detector *det, const uint8_t *masked,
			   const uint8_t *raw, size_t len)
{
	int			found = 0;
	size_t		i = 0;

	while (i < len && found < MAX_NEW_TOKENS)
	{
		size_t		start,
					n;

		while (i < len && is_separator(masked[i]))
			i++;
		start = i;
		while (i < len && !is_separator(masked[i]))
			i++;
		n = i - start;
		if (n < 3)
			continue;
		if (occurs_in(&det->baseline, masked + start, n) ||
			occurs_in(&det->pending, masked + start, n))
			continue;
		put(t, found == 0 ? " New in it: " : ", ");
		put_token(t, raw + start, n);
		found++;
	}
	if (found > 0)
		put(t, ".");
	else
		put(t, " Each of its tokens occurs in the baseline; what is unusual is their combination or order.");
}

size_t
cbad_explain(const cbad_detector *det, const uint8_t *event, size_t len,
			 const cbad_verdict *v, char *buf, size_t buflen)
{
	text		t = {buf, buflen, 0};
	size_t		max = (size_t) det->cfg.max_event_bytes;
	size_t		scored = v->raw_bytes < max ? v->raw_bytes : max;

	/* the event may be passed shortened to what was scored, or not at all */
	if (len > scored)
		len = scored;

	if (buflen > 0)
		buf[0] = '\0';

	if (!v->warm)
	{
		put(&t, "Warming up: %llu of %d events seen, so there is no verdict yet; "
			"the baseline and the calibration of p-values are still filling. "
			"This %zu-byte event compressed to %.2f of its own compressed size given the %d baseline events so far.",
			(unsigned long long) (det->events < (uint64_t) det->cfg.warmup ? det->events : (uint64_t) det->cfg.warmup),
			det->cfg.warmup, v->raw_bytes, v->ncd, v->baseline_events);
	}
	else if (v->is_anomaly)
	{
		put(&t, "Anomalous (p = %.3g, alpha = %g): given the baseline of %d recent normal events, "
			"this %zu-byte event still cost %.2f of its stand-alone compressed size (%zu of %zu bytes), "
			"%.1f times the typical %.2f; ",
			v->p_value, det->cfg.alpha, v->baseline_events, v->raw_bytes,
			v->ncd, v->cond_bytes, v->alone_bytes, v->score, v->typical_ncd);
		{
			int			higher = (int) llround(v->p_value * (v->calibration_events + 1.0)) - 1;

			if (higher <= 0)
				put(&t, "none of the %d recent normal events compressed as badly.", v->calibration_events);
			else
				put(&t, "only %d of the %d recent normal events compressed as badly.",
					higher, v->calibration_events);
		}
		if (event != NULL && len > 0)
		{
			cbad_scratch *s = cbad_scratch_get(len);

			if (s != NULL)
			{
				const uint8_t *m = event;

				if (det->cfg.mask)
				{
					cbad_mask(event, len, s->masked);
					m = s->masked;
				}
				put_new_tokens(&t, det, m, event, len);
			}
		}
	}
	else
	{
		put(&t, "Normal (p = %.3g): given the baseline of %d recent normal events, "
			"this %zu-byte event cost %.2f of its stand-alone compressed size, "
			"%.1f times the typical %.2f.",
			v->p_value, v->baseline_events, v->raw_bytes, v->ncd, v->score, v->typical_ncd);
		if (1.0 / (v->calibration_events + 1.0) > det->cfg.alpha)
			put(&t, " No event can be flagged yet: with %d calibration scores the smallest possible p-value is %.3g, above alpha = %g.",
				v->calibration_events, 1.0 / (v->calibration_events + 1.0), det->cfg.alpha);
	}
	if (v->truncated)
		put(&t, " Only its first %zu of %zu bytes were scored (max_event_bytes).", scored, v->raw_bytes);
	if (v->drift)
		put(&t, " Drift: at least %.0f%% of the last %d events were anomalous, which is a lasting shift "
			"rather than a burst, so the baseline was rebuilt from the recent events and the detector "
			"now treats the new pattern as normal.",
			det->cfg.drift_threshold * 100.0, det->cfg.drift_window);
	return t.len;
}
