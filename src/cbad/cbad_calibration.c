/*
 * cbad_calibration.c -- p-values from the scores of recent normal events
 *
 * The calibration holds the scores (ncd) of the last calibration_size events
 * the detector judged normal.  Flagged events never join it: were they let
 * in, a stream with a few percent of recurring anomalies would soon fill it
 * with anomaly scores, and later anomalies would no longer look extreme.
 *
 * For a score s at or below the calibration's 90th percentile q90 the
 * p-value is conformal, p = (1 + #{c >= s}) / (1 + n).  Above it, where the
 * missing alarm scores would bias any count, it comes from a model of the
 * tail fitted to the body of the calibration: scores are taken to fall off
 * exponentially beyond q90, at the rate the spacing between the median and
 * q90 implies (half the scores lie above the median and a tenth above q90):
 *
 *   p(s) = 0.1 * exp(-ln 5 * (s - q90) / (q90 - q50))
 *
 * Both quantiles sit well inside the calibration, so a few percent of
 * anomalies that recur do not move them much (the threshold does not creep
 * up).  The share f of recent judged events that were flagged, and so are
 * missing from the calibration, is added back (the shares above q90 and the
 * median become f + 0.9 * 0.1 and f + 0.5 * 0.9...), so withholding alarms
 * does not lower the quantiles either: without it the threshold crept down
 * at alpha = 0.05 until 18% of a normal stream was flagged.  Scores this
 * side of q90 keep the conformal guarantee; beyond it the model is
 * conservative for the light tails compression scores have (on a stationary
 * stream about 0.1-0.3 of alpha is flagged; docs/detector.md).
 */
#include "cbad_internal.h"

#include <math.h>
#include <string.h>

bool
cbad_calibration_init(cbad_mem *mem, cbad_calibration *cal, int cap)
{
	memset(cal, 0, sizeof(*cal));
	cal->ring = cbad_mem_alloc(mem, sizeof(double) * (size_t) cap);
	cal->sorted = cbad_mem_alloc(mem, sizeof(double) * (size_t) cap);
	if (cal->ring == NULL || cal->sorted == NULL)
		return false;
	cal->cap = cap;
	return true;
}

void
cbad_calibration_release(cbad_mem *mem, cbad_calibration *cal)
{
	cbad_mem_free(mem, cal->ring);
	cbad_mem_free(mem, cal->sorted);
	memset(cal, 0, sizeof(*cal));
}

void
cbad_calibration_clear(cbad_calibration *cal)
{
	cal->count = 0;
	cal->head = 0;
}

/* First index in sorted whose value is >= s. */
static int
lower_bound(const cbad_calibration *cal, double s)
{
	int			lo = 0,
				hi = cal->count;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (cal->sorted[mid] < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
cbad_calibration_add(cbad_calibration *cal, double score)
{
	int			pos;

	if (cal->cap == 0)
		return;
	if (cal->count == cal->cap)
	{
		/* forget the oldest score, from the ring and from the sorted copy */
		double		old = cal->ring[cal->head];

		pos = lower_bound(cal, old);
		memmove(cal->sorted + pos, cal->sorted + pos + 1,
				sizeof(double) * (size_t) (cal->count - pos - 1));
		cal->count--;
		cal->ring[cal->head] = score;
		cal->head = (cal->head + 1) % cal->cap;
	}
	else
		cal->ring[(cal->head + cal->count) % cal->cap] = score;

	pos = lower_bound(cal, score);
	memmove(cal->sorted + pos + 1, cal->sorted + pos,
			sizeof(double) * (size_t) (cal->count - pos));
	cal->sorted[pos] = score;
	cal->count++;
}

double
cbad_calibration_pvalue(const cbad_calibration *cal, double s)
{
	int			at_least = cal->count - lower_bound(cal, s);

	return (1.0 + at_least) / (1.0 + cal->count);
}

double
cbad_calibration_threshold(const cbad_calibration *cal, double alpha)
{
	/*
	 * p <= alpha needs #{c >= s} <= k with k = floor(alpha * (n + 1)) - 1:
	 * s must exceed the (k+1)-th largest score.
	 */
	int			k = (int) floor(alpha * (cal->count + 1.0) + 1e-9) - 1;

	if (k < 0 || cal->count == 0)
		return INFINITY;
	if (k >= cal->count)
		return -INFINITY;
	return cal->sorted[cal->count - 1 - k];
}

double
cbad_calibration_median(const cbad_calibration *cal)
{
	if (cal->count == 0)
		return NAN;
	if (cal->count % 2)
		return cal->sorted[cal->count / 2];
	return 0.5 * (cal->sorted[cal->count / 2 - 1] + cal->sorted[cal->count / 2]);
}

/* The score with a share `share` of the calibration at or above it. */
static double
upper_quantile(const cbad_calibration *cal, double share)
{
	int			i = cal->count - (int) ceil(share * cal->count);

	return cal->sorted[i < 0 ? 0 : i];
}

void
cbad_tail_fit(cbad_tail *tail, const cbad_calibration *cal, double alpha, double flagged)
{
	double		q50,
				q90,
				s50,
				s90;

	tail->valid = false;
	tail->z = INFINITY;
	tail->flagged = flagged;
	if (cal->count < CBAD_TAIL_MIN)
		return;
	q90 = upper_quantile(cal, CBAD_TAIL_SHARE);
	q50 = upper_quantile(cal, 0.5);
	/* half the calibration is one value: no spread to extrapolate from */
	if (!(q90 - q50 > 1e-9))
		return;
	/* the shares of all recent scores, the flagged ones included, above them */
	s90 = flagged + (1 - flagged) * CBAD_TAIL_SHARE;
	s50 = flagged + (1 - flagged) * 0.5;
	tail->valid = true;
	tail->t = q90;
	tail->mass = s90;
	tail->rate = log(s50 / s90) / (q90 - q50);
	tail->z = alpha < s90 ? q90 + log(s90 / alpha) / tail->rate : q90;
}

double
cbad_tail_pvalue(const cbad_tail *tail, const cbad_calibration *cal, double s)
{
	double		p;

	if (!tail->valid || s <= tail->t)
		return tail->flagged + (1 - tail->flagged) * cbad_calibration_pvalue(cal, s);
	p = tail->mass * exp(-tail->rate * (s - tail->t));
	/* a probability, never exactly 0 */
	return p > 1e-300 ? p : 1e-300;
}
