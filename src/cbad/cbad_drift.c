/*
 * cbad_drift.c -- telling a lasting shift from an incident
 *
 * Anomalies never teach the detector by themselves (cbad_detector.c): a
 * burst of one kind of anomaly stays flagged for as long as it goes on, and
 * recurring anomalies stay flagged every time.  Two patterns of flags mean
 * instead that the stream's normal behaviour has changed (a deployment, a
 * restart, a new source), and then the recent anomalies become its new
 * normal:
 *
 *   - a sustained shift: at least drift_threshold of the last drift_window
 *     warm events were flagged (60% of 200 by default: a burst shorter than
 *     120 events never qualifies);
 *   - a storm of novelty: at least half of the last STORM_WINDOW events were
 *     flagged, and the last STORM_EVENTS anomalies are each new even given
 *     the anomalies before them -- on average at least drift_novelty of each
 *     is left unexplained (C(x | earlier anomalies) / C(x)).  A restart or a
 *     reboot writes dozens of messages never seen before, each unlike the
 *     last; an attack or an incident repeats a few kinds of message, which
 *     explain one another (measured in docs/detector.md: the 100 anomalous
 *     transactions of bench_accuracy reach at most 0.31, the restarts and
 *     reboots in the shared real logs 0.45-0.72).
 *
 * Either way the anomalies kept since the last drift are learnt, the
 * calibration is seeded anew from the baseline, and the detector warms up
 * again for `warmup` events: it flags nothing while its calibration adapts
 * to the new normal (cbad_detector.c).
 */
#include "cbad_internal.h"

#include <string.h>

#define STORM_WINDOW 20			/* events looked at for a storm */
#define STORM_EVENTS 10			/* anomalies compared with each other */

void
cbad_drift_clear(cbad_detector *det)
{
	det->flags_head = 0;
	det->flags_count = 0;
	det->flagged_in_window = 0;
	det->recent_flags = 0;
}

/* Record whether a warm event was flagged. */
void
cbad_drift_push(cbad_detector *det, bool flagged)
{
	int			cap = det->cfg.drift_window;

	if (det->flags_count == cap)
	{
		det->flagged_in_window -= det->flags[det->flags_head];
		det->flags[det->flags_head] = flagged;
		det->flags_head = (det->flags_head + 1) % cap;
	}
	else
	{
		det->flags[(det->flags_head + det->flags_count) % cap] = flagged;
		det->flags_count++;
	}
	det->flagged_in_window += flagged;
	det->recent_flags = (det->recent_flags << 1 | (flagged ? 1u : 0u)) &
		((1u << STORM_WINDOW) - 1);
}

static int
bit_count(uint32_t v)
{
	int			n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/*
 * Mean share of each of the last STORM_EVENTS - 1 anomalies that the ones
 * before it leave unexplained; -1 when memory is short.
 */
static double
suspects_novelty(cbad_detector *det)
{
	const cbad_events *sus = &det->suspects;
	int			first = sus->count - STORM_EVENTS;
	size_t		start = 0,
				offset;
	size_t		max_len = 0;
	cbad_scratch *s;
	double		sum = 0;

	for (int i = 0; i < first; i++)
		start += sus->lens[i];
	offset = start;
	for (int i = first; i < sus->count; i++)
		if (sus->lens[i] > max_len)
			max_len = sus->lens[i];
	if ((s = cbad_scratch_get(max_len)) == NULL)
		return -1;
	offset += sus->lens[first];
	for (int i = first + 1; i < sus->count; i++)
	{
		const uint8_t *x = sus->bytes.data + offset;
		size_t		alone = cbad_compressed_size(s, x, sus->lens[i], det->cfg.zstd_level);
		size_t		given = cbad_compressed_size_prefix(s, sus->bytes.data + start, offset - start,
														x, sus->lens[i], det->cfg.zstd_level);

		if (alone == 0 || given == 0)
			return -1;
		sum += (double) given / (double) alone;
		offset += sus->lens[i];
	}
	return sum / (STORM_EVENTS - 1);
}

cbad_status
cbad_drift_check(cbad_detector *det, bool flagged, cbad_drift_kind *drift)
{
	*drift = CBAD_DRIFT_NONE;
	if (det->flags_count == det->cfg.drift_window &&
		det->flagged_in_window >= det->cfg.drift_threshold * det->cfg.drift_window)
		*drift = CBAD_DRIFT_SUSTAINED;
	else if (flagged && det->suspects.count >= STORM_EVENTS &&
			 det->flags_count >= STORM_WINDOW &&
			 2 * bit_count(det->recent_flags) >= STORM_WINDOW)
	{
		double		novelty = suspects_novelty(det);

		if (novelty < 0)
			return CBAD_ENOMEM;
		if (novelty >= det->cfg.drift_novelty)
			*drift = CBAD_DRIFT_STORM;
	}
	return CBAD_OK;
}
