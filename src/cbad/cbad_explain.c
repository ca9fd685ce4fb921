/*
 * cbad_explain.c -- the plain-English paragraph behind a verdict
 *
 * Deterministic (the same verdict and state give the same text) and plain
 * ASCII: bytes of the payload that are not printable ASCII are shown as '?'.
 * For an anomaly it names its pattern and where the stream stands with it,
 * and what was new: the first few tokens of the event that occur nowhere in
 * the dictionary.
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

bool
cbad_next_new_token(const cbad_detector *det, const uint8_t *masked, size_t len, size_t *pos,
					size_t *start, size_t *tok_len)
{
	size_t		i = *pos;

	while (i < len)
	{
		size_t		s,
					n;

		while (i < len && is_separator(masked[i]))
			i++;
		s = i;
		while (i < len && !is_separator(masked[i]))
			i++;
		n = i - s;
		if (n < 3 || occurs_in(&det->baseline, masked + s, n) ||
			occurs_in(&det->pending, masked + s, n))
			continue;
		*pos = i;
		*start = s;
		*tok_len = n;
		return true;
	}
	*pos = i;
	return false;
}

/*
 * Name up to MAX_NEW_TOKENS tokens of the masked event that the dictionary
 * and the recent normal events lack, quoting the original bytes.
 */
static void
put_new_tokens(text *t, const cbad_detector *det, const uint8_t *masked,
			   const uint8_t *raw, size_t len)
{
	int			found = 0;
	size_t		pos = 0,
				start,
				n;

	while (found < MAX_NEW_TOKENS && cbad_next_new_token(det, masked, len, &pos, &start, &n))
	{
		put(t, found == 0 ? " New in it: " : ", ");
		put_token(t, raw + start, n);
		found++;
	}
	if (found > 0)
		put(t, ".");
	else
		put(t, " Each of its tokens occurs in the baseline; what is unusual is their combination or order.");
}

/* Where the event's pattern stands, in a sentence. */
static void
put_pattern(text *t, const cbad_verdict *v, const char *pattern)
{
	put(t, " Its pattern \"%s\" ", pattern);
	switch (v->pattern_status)
	{
		case CBAD_PATTERN_NEW:
			put(t, "is new in this stream.");
			break;
		case CBAD_PATTERN_REPEAT:
			put(t, "has occurred %llu times since event %llu without being learnt as normal.",
				(unsigned long long) v->pattern_count, (unsigned long long) v->pattern_first_event);
			break;
		case CBAD_PATTERN_KNOWN:
			put(t, "is known (learnt as normal before); what is unusual is in the rest of the event.");
			break;
	}
}

/* How many calibration scores are at least as high as this event's. */
static int
as_bad(const cbad_detector *det, double ncd)
{
	const cbad_calibration *cal = &det->cal;
	int			lo = 0,
				hi = cal->count;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (cal->sorted[mid] < ncd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return cal->count - lo;
}

size_t
cbad_explain(const cbad_detector *det, const uint8_t *event, size_t len,
			 const cbad_verdict *v, char *buf, size_t buflen)
{
	text		t = {buf, buflen, 0};
	size_t		max = (size_t) det->cfg.max_event_bytes;
	size_t		scored = v->raw_bytes < max ? v->raw_bytes : max;
	const uint8_t *m = event;
	char		pattern[CBAD_PATTERN_TEXT_MAX];

	/* the event may be passed shortened to what was scored, or not at all */
	if (len > scored)
		len = scored;
	if (buflen > 0)
		buf[0] = '\0';
	pattern[0] = '\0';

	if (!v->warm && !v->has_calibration)
	{
		put(&t, "Warming up: %llu more events before verdicts, so none yet; the baseline and the "
			"calibration of p-values are still filling.",
			(unsigned long long) v->warmup_left);
		if (v->has_dictionary)
			put(&t, " Given the %d baseline events so far this %zu-byte event compressed to %.2f "
				"of its stand-alone size.", v->baseline_events, v->raw_bytes, v->ncd);
	}
	else if (!v->warm)
	{
		put(&t, "Settling after a drift: %llu more events before verdicts resume, while the "
			"calibration adapts to the stream's new normal (p = %.3g, not judged). Given the baseline "
			"of %d events this %zu-byte event cost %.2f of its stand-alone compressed size.",
			(unsigned long long) v->warmup_left, v->p_value, v->baseline_events,
			v->raw_bytes, v->ncd);
	}
	else if (v->is_anomaly)
	{
		int			n = as_bad(det, v->ncd);
		const char *known = cbad_pattern_text(v->pattern_id);

		/* what is new in it is looked for in the masked bytes, as scored */
		if (event != NULL && len > 0 && det->cfg.mask)
		{
			cbad_scratch *s = cbad_scratch_get(len);

			if (s == NULL)
				m = NULL;
			else
			{
				cbad_mask(event, len, s->masked);
				m = s->masked;
			}
		}
		/* the pattern's text: as the verdict just computed it, if it is at hand */
		if (known != NULL)
			strcpy(pattern, known);
		else if (m != NULL || len == 0)
			cbad_pattern_of(m, m != NULL ? len : 0, pattern, sizeof(pattern));

		put(&t, "Anomalous (p = %.3g, alpha = %g): given the baseline of %d recent normal events, "
			"this %zu-byte event still cost %.2f of its stand-alone compressed size (%zu of %zu bytes), "
			"%.1f times the typical %.2f; ",
			v->p_value, det->cfg.alpha, v->baseline_events, v->raw_bytes,
			v->ncd, v->cond_bytes, v->alone_bytes, v->score, v->typical_ncd);
		if (n == 0)
			put(&t, "none of the %d recent normal events compressed as badly.", v->calibration_events);
		else
			put(&t, "only %d of the %d recent normal events compressed as badly.",
				n, v->calibration_events);
		put_pattern(&t, v, pattern);
		if (m != NULL && len > 0)
			put_new_tokens(&t, det, m, event, len);
	}
	else
	{
		put(&t, "Normal (p = %.3g): given the baseline of %d recent normal events, "
			"this %zu-byte event cost %.2f of its stand-alone compressed size, "
			"%.1f times the typical %.2f.",
			v->p_value, v->baseline_events, v->raw_bytes, v->ncd, v->score, v->typical_ncd);
	}
	if (v->warm && 1.0 / (v->calibration_events + 1.0) > det->cfg.alpha)
		put(&t, " With %d calibration scores, p-values below %.3g come from the fitted tail of "
			"their distribution rather than from counts.",
			v->calibration_events, 1.0 / (v->calibration_events + 1.0));
	if (v->truncated)
		put(&t, " Only its first %zu of %zu bytes were scored (max_event_bytes).", scored, v->raw_bytes);
	if (v->drift == CBAD_DRIFT_SUSTAINED)
		put(&t, " Drift: at least %.0f%% of the last %d events were anomalous, a lasting shift rather "
			"than a burst; the recent anomalies were learnt as the new normal and the detector settles "
			"for %d events.", det->cfg.drift_threshold * 100.0, det->cfg.drift_window, det->cfg.warmup);
	else if (v->drift == CBAD_DRIFT_STORM)
		put(&t, " Drift: half of the last 20 events were anomalous and each was new even given the "
			"ones before it (a restart or a new source rather than one incident recurring); the recent "
			"anomalies were learnt as the new normal and the detector settles for %d events.",
			det->cfg.warmup);
	return t.len;
}
