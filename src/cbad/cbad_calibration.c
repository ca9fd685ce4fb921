/*
 * cbad_calibration.c -- conformal p-values over the scores of recent normal
 * events
 *
 * For a new score s and the n calibration scores, p = (1 + #{c >= s}) / (1 + n).
 * When the calibration scores and s come from the same (exchangeable) stream,
 * P(p <= alpha) <= alpha, so on a normal stream about alpha of the events are
 * flagged, by construction.  Ties count against the event (>=), which keeps
 * repeated identical scores from being flagged.
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
