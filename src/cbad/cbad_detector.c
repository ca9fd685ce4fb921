/*
 * cbad_detector.c -- the streaming detector: score, gate, calibrate, drift
 *
 * For an event x (masked, see cbad_mask.c) and the baseline B:
 *
 *   ncd   = (C(x|B) - e_B) / (C(x) - e)
 *
 * where C(x|B) is x compressed with B as a zstd dictionary, C(x) x compressed
 * alone and e_B, e the cost of an empty input with and without the
 * dictionary (frame overhead, which would otherwise dominate short events).
 * 0 means the baseline explains the event entirely, 1 that it does not help.
 * The p-value is conformal against the ncd of recent normal events
 * (cbad_calibration.c).
 *
 * Learning is gated: only clearly typical events (p-value above
 * learn_threshold) enter the baseline; every score enters the calibration,
 * an anomaly's capped at the largest normal score (see below).  A lasting shift
 * (drift_threshold of the last drift_window events flagged; a burst shorter
 * than that never qualifies) makes the recent events the new baseline and is
 * reported as drift.
 *
 * The dictionary (a ZSTD_CDict referring to the baseline's bytes) is rebuilt
 * every rebuild_interval accepted events, so scoring costs O(|x|), not O(|B|).
 */
#include "cbad_internal.h"

#include <math.h>
#include <string.h>

static void free_cdict(cbad_detector *det, ZSTD_CDict *cdict);

static void
flags_clear(cbad_detector *det)
{
	det->flags_head = 0;
	det->flags_count = 0;
	det->flagged_in_window = 0;
}

static void
flags_push(cbad_detector *det, bool flagged)
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
}

cbad_status
cbad_detector_alloc(const cbad_config *cfg, const cbad_allocator *allocator,
					cbad_detector **out)
{
	cbad_mem	mem;
	cbad_detector *det;
	char		err[256];

	*out = NULL;
	if (cbad_config_validate(cfg, err, sizeof(err)) != CBAD_OK)
		return CBAD_EINVAL;
	cbad_mem_init(&mem, allocator);
	det = cbad_mem_alloc(&mem, sizeof(*det));
	if (det == NULL)
		return CBAD_ENOMEM;
	memset(det, 0, sizeof(*det));
	det->mem = mem;
	det->cfg = *cfg;
	if (!cbad_events_init(&det->mem, &det->baseline, cfg->baseline_size) ||
		!cbad_events_init(&det->mem, &det->pending, cfg->rebuild_interval) ||
		!cbad_events_init(&det->mem, &det->suspects, cfg->drift_window) ||
		!cbad_calibration_init(&det->mem, &det->cal, cfg->calibration_size) ||
		(det->flags = cbad_mem_alloc(&det->mem, (size_t) cfg->drift_window)) == NULL)
	{
		cbad_detector_free(det);
		return CBAD_ENOMEM;
	}
	*out = det;
	return CBAD_OK;
}

cbad_status
cbad_detector_create(const cbad_config *cfg, const cbad_allocator *allocator,
					 cbad_detector **out)
{
	return cbad_detector_alloc(cfg, allocator, out);
}

void
cbad_detector_free(cbad_detector *det)
{
	cbad_mem	mem;

	if (det == NULL)
		return;
	free_cdict(det, det->cdict);
	cbad_events_release(&det->mem, &det->baseline);
	cbad_events_release(&det->mem, &det->pending);
	cbad_events_release(&det->mem, &det->suspects);
	cbad_calibration_release(&det->mem, &det->cal);
	cbad_mem_free(&det->mem, det->flags);
	mem = det->mem;
	cbad_mem_free(&mem, det);
}

const cbad_config *
cbad_detector_config(const cbad_detector *det)
{
	return &det->cfg;
}

/* The bytes of an event that are scored and stored: a prefix, masked. */
static const uint8_t *
prepare_event(const cbad_detector *det, cbad_scratch *s, const uint8_t *event,
			  size_t *len)
{
	if (*len > (size_t) det->cfg.max_event_bytes)
		*len = (size_t) det->cfg.max_event_bytes;
	if (!det->cfg.mask)
		return event;
	cbad_mask(event, *len, s->masked);
	return s->masked;
}

/* Frame overhead of an empty input at a level, computed once per level. */
static size_t
empty_cost(cbad_scratch *s, int level)
{
	if (s->empty_cost[level] == 0)
		s->empty_cost[level] = cbad_compressed_size(s, (const uint8_t *) "", 0, level);
	return s->empty_cost[level];
}

/*
 * Build a dictionary over bytes (by reference: bytes must outlive it) in a
 * workspace of our own, freed with free_cdict.  A static CDict makes no
 * allocation of its own: zstd before 1.5.6 dereferences NULL when an
 * allocation inside ZSTD_createCDict_advanced fails.
 */
static ZSTD_CDict *
make_cdict(cbad_detector *det, const uint8_t *bytes, size_t len)
{
	ZSTD_compressionParameters cp = cbad_dict_cparams(det->cfg.zstd_level, len);
	size_t		size = ZSTD_estimateCDictSize_advanced(len, cp, ZSTD_dlm_byRef);
	void	   *workspace = cbad_mem_alloc(&det->mem, size);
	const ZSTD_CDict *cdict;

	if (workspace == NULL)
		return NULL;

	/*
	 * ZSTD_initStaticCDict (zstd 1.5.4 at least) leaves fields of the CDict
	 * unset, its compression level among them, and compressing an input of
	 * 128 KiB or more with the dictionary reads that level: the compressed
	 * size, so the score, would depend on what the memory held before.  A
	 * zeroed workspace reads as "no level" (use the CDict's parameters).
	 */
	memset(workspace, 0, size);
	cdict = ZSTD_initStaticCDict(workspace, size, bytes, len, ZSTD_dlm_byRef,
								 ZSTD_dct_rawContent, cp);
	/* zstd puts the CDict at the start of its workspace: free_cdict relies on it */
	if (cdict == NULL || (const void *) cdict != workspace)
	{
		cbad_mem_free(&det->mem, workspace);
		return NULL;
	}
	return (ZSTD_CDict *) cdict;
}

static void
free_cdict(cbad_detector *det, ZSTD_CDict *cdict)
{
	cbad_mem_free(&det->mem, cdict);
}

/* (Re)create the CDict over the baseline as it is now. */
cbad_status
cbad_detector_build_dict(cbad_detector *det)
{
	cbad_scratch *s;

	free_cdict(det, det->cdict);
	det->cdict = NULL;
	if (det->baseline.count == 0 || det->baseline.bytes.len == 0)
		return CBAD_OK;
	s = cbad_scratch_get(0);
	if (s == NULL)
		return CBAD_ENOMEM;
	det->cdict = make_cdict(det, det->baseline.bytes.data, det->baseline.bytes.len);
	if (det->cdict == NULL)
		return CBAD_ENOMEM;
	det->dict_empty_cost = cbad_compressed_size_dict(s, det->cdict, (const uint8_t *) "", 0);
	return CBAD_OK;
}

/*
 * Move the pending events into the baseline (dropping its oldest events to
 * stay within baseline_size and baseline_bytes) and rebuild the dictionary.
 */
cbad_status
cbad_detector_rebuild(cbad_detector *det)
{
	cbad_events *b = &det->baseline;
	cbad_events *p = &det->pending;
	size_t		offset = 0;
	int			drop = 0;
	size_t		bytes = b->bytes.len + p->bytes.len;
	int			count = b->count + p->count;

	free_cdict(det, det->cdict); /* it refers to bytes about to move */
	det->cdict = NULL;
	while (drop < b->count && (count > b->cap || bytes > (size_t) det->cfg.baseline_bytes))
	{
		bytes -= b->lens[drop];
		count--;
		drop++;
	}
	cbad_events_drop_oldest(b, drop);
	for (int i = 0; i < p->count; i++)
	{
		if (!cbad_events_push(&det->mem, b, p->bytes.data + offset, p->lens[i]))
			return CBAD_ENOMEM;
		offset += p->lens[i];
	}
	cbad_events_clear(p);
	/* pending alone may exceed the byte budget (very large events) */
	while (b->count > 1 && b->bytes.len > (size_t) det->cfg.baseline_bytes)
		cbad_events_drop_oldest(b, 1);
	det->rebuilds++;
	return cbad_detector_build_dict(det);
}

/* A stored event takes at most a quarter of the baseline. */
static size_t
stored_length(const cbad_detector *det, size_t len)
{
	size_t		limit = (size_t) det->cfg.baseline_bytes / 4;

	return len < limit ? len : limit;
}

/*
 * Remember an anomaly in case a lasting shift makes it the new normal; only
 * the newest baseline_bytes of them could ever enter the baseline.
 */
static cbad_status
keep_suspect(cbad_detector *det, const uint8_t *m, size_t len)
{
	if (!cbad_events_push(&det->mem, &det->suspects, m, stored_length(det, len)))
		return CBAD_ENOMEM;
	while (det->suspects.bytes.len > (size_t) det->cfg.baseline_bytes)
		cbad_events_drop_oldest(&det->suspects, 1);
	return CBAD_OK;
}

/* Accept a normal event: it joins the baseline at the next rebuild. */
static cbad_status
accept_event(cbad_detector *det, const uint8_t *m, size_t len)
{
	if (!cbad_events_push(&det->mem, &det->pending, m, stored_length(det, len)))
		return CBAD_ENOMEM;
	if (det->pending.count >= det->cfg.rebuild_interval)
		return cbad_detector_rebuild(det);
	return CBAD_OK;
}

/*
 * Seed the calibration from the baseline itself: split the baseline into
 * CALIBRATION_FOLDS interleaved folds and score each event against a
 * dictionary of the other folds.  Those dictionaries are smaller than the
 * real baseline, so the scores run high, which errs towards fewer false
 * alarms until real scores replace them (2 folds gave fewer false alarms
 * than 5 or 10 on BGL_2k at the same ROC-AUC; see docs/detector.md).
 */
#define CALIBRATION_FOLDS 2

static cbad_status
bootstrap_calibration(cbad_detector *det)
{
	const cbad_events *b = &det->baseline;
	cbad_scratch *s;
	size_t	   *offsets;
	double	   *scores;
	cbad_buf	rest = {0};
	cbad_status status = CBAD_OK;
	size_t		max_len = 0;
	int			folds = CALIBRATION_FOLDS;

	cbad_calibration_clear(&det->cal);
	if (b->count < 2)
		return CBAD_OK;
	if (folds > b->count)
		folds = b->count;
	offsets = cbad_mem_alloc(&det->mem, sizeof(size_t) * (size_t) b->count);
	scores = cbad_mem_alloc(&det->mem, sizeof(double) * (size_t) b->count);
	if (offsets == NULL || scores == NULL ||
		!cbad_buf_reserve(&det->mem, &rest, b->bytes.len))
	{
		status = CBAD_ENOMEM;
		goto done;
	}
	for (int i = 0, off = 0; i < b->count; off += b->lens[i], i++)
	{
		offsets[i] = (size_t) off;
		if (b->lens[i] > max_len)
			max_len = b->lens[i];
	}
	s = cbad_scratch_get(max_len);
	if (s == NULL)
	{
		status = CBAD_ENOMEM;
		goto done;
	}

	for (int fold = 0; fold < folds && status == CBAD_OK; fold++)
	{
		ZSTD_CDict *cd;
		size_t		e_dict;
		size_t		e = empty_cost(s, det->cfg.zstd_level);

		/* the other folds, in arrival order (newest last, as in the baseline) */
		rest.len = 0;
		for (int i = 0; i < b->count; i++)
		{
			if (i % folds == fold || b->lens[i] == 0)
				continue;
			memcpy(rest.data + rest.len, b->bytes.data + offsets[i], b->lens[i]);
			rest.len += b->lens[i];
		}
		if (rest.len == 0)
		{
			/* the other folds are empty events: scored as with no baseline */
			for (int i = fold; i < b->count; i += folds)
				scores[i] = 1.0;
			continue;
		}
		cd = make_cdict(det, rest.data, rest.len);
		if (cd == NULL)
		{
			status = CBAD_ENOMEM;
			break;
		}
		e_dict = cbad_compressed_size_dict(s, cd, (const uint8_t *) "", 0);
		for (int i = fold; i < b->count; i += folds)
		{
			const uint8_t *x = b->bytes.data + offsets[i];
			size_t		alone = cbad_compressed_size(s, x, b->lens[i], det->cfg.zstd_level);
			size_t		cond = cbad_compressed_size_dict(s, cd, x, b->lens[i]);

			if (alone == 0 || cond == 0)
			{
				status = CBAD_EZSTD;
				break;
			}
			alone = alone > e ? alone - e : 1;
			cond = cond > e_dict ? cond - e_dict : 0;
			scores[i] = (double) cond / (double) alone;
		}
		free_cdict(det, cd);
	}
	/* in event order, so the ring's age order is deterministic */
	if (status == CBAD_OK)
		for (int i = 0; i < b->count; i++)
			cbad_calibration_add(&det->cal, scores[i]);
done:
	cbad_buf_release(&det->mem, &rest);
	cbad_mem_free(&det->mem, scores);
	cbad_mem_free(&det->mem, offsets);
	return status;
}

/* The verdict for an event, from the current state; changes nothing. */
static cbad_status
score_event(cbad_detector *det, cbad_scratch *s, const uint8_t *m, size_t len,
			const uint8_t *raw, size_t raw_len, cbad_verdict *v)
{
	size_t		e = empty_cost(s, det->cfg.zstd_level);
	size_t		alone = cbad_compressed_size(s, m, len, det->cfg.zstd_level);
	size_t		cond;
	double		typical;

	if (alone == 0)
		return CBAD_EZSTD;
	alone = alone > e ? alone - e : 1;
	if (det->cdict != NULL)
	{
		cond = cbad_compressed_size_dict(s, det->cdict, m, len);
		if (cond == 0)
			return CBAD_EZSTD;
		cond = cond > det->dict_empty_cost ? cond - det->dict_empty_cost : 0;
	}
	else
		cond = alone;

	memset(v, 0, sizeof(*v));
	v->warm = det->warm;
	v->truncated = raw_len > len;
	v->raw_bytes = raw_len;
	v->alone_bytes = alone;
	v->cond_bytes = cond;
	v->ncd = (double) cond / (double) alone;
	v->compression_ratio = len ? (double) len / (double) (cond ? cond : 1) : 1.0;
	v->entropy = cbad_entropy(raw, len);
	v->baseline_events = det->baseline.count;
	v->calibration_events = det->cal.count;
	typical = cbad_calibration_median(&det->cal);
	v->typical_ncd = typical;
	v->score = (det->cal.count > 0 && typical > 0) ? v->ncd / typical : v->ncd;
	if (det->warm)
	{
		v->p_value = cbad_calibration_pvalue(&det->cal, v->ncd);
		v->is_anomaly = v->p_value <= det->cfg.alpha;
		v->confidence = 1.0 - v->p_value;
	}
	else
	{
		v->p_value = 1.0;
		v->confidence = 0.0;
	}
	return CBAD_OK;
}

cbad_status
cbad_detector_score(cbad_detector *det, const uint8_t *event, size_t len,
					cbad_verdict *verdict)
{
	size_t		n = len;
	cbad_scratch *s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
									   len : (size_t) det->cfg.max_event_bytes);
	const uint8_t *m;

	if (s == NULL)
		return CBAD_ENOMEM;
	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	m = prepare_event(det, s, event, &n);
	return score_event(det, s, m, n, event, len, verdict);
}

/*
 * Alarms and the calibration.  The conformal p-value is only valid if the
 * calibration holds the scores of all normal events, the tail included: left
 * out, or capped at the threshold, alarm scores make the threshold creep
 * down (measured: up to 30x alpha false alarms on a normal stream).  But an
 * incident's own scores must not raise the bar for the rest of the incident.
 * So an alarm's score waits CBAD_ALARM_GAP events, then joins the
 * calibration at its real value if the alarm was isolated (no other alarm
 * within CBAD_ALARM_GAP events either side: likely a normal event from the
 * tail), or capped at the largest score in the calibration if alarms
 * clustered (likely an incident, which then stays flagged for as long as it
 * scores above everything normal).  A cluster that goes on for longer than
 * drift_window events is no burst but a recurring pattern: its later alarms
 * join at their real values, so the calibration learns that such scores are
 * common and the pattern stops being flagged, instead of being flagged
 * forever.
 */
static void
mature_alarms(cbad_detector *det, bool all)
{
	while (det->alarm_count > 0 &&
		   (all || det->events - det->alarms[0].index > CBAD_ALARM_GAP))
	{
		cbad_alarm *a = &det->alarms[0];
		double		score = a->score;

		if (a->clustered && a->index - a->cluster_start < (uint64_t) det->cfg.drift_window &&
			det->cal.count > 0 && score > det->cal.sorted[det->cal.count - 1])
			score = det->cal.sorted[det->cal.count - 1];
		cbad_calibration_add(&det->cal, score);
		det->alarm_count--;
		memmove(det->alarms, det->alarms + 1, sizeof(cbad_alarm) * (size_t) det->alarm_count);
	}
}

static void
queue_alarm(cbad_detector *det, double score)
{
	cbad_alarm *a;
	bool		clustered = det->last_alarm != 0 &&
		det->events - det->last_alarm <= CBAD_ALARM_GAP;

	if (clustered && det->alarm_count > 0 &&
		det->alarms[det->alarm_count - 1].index == det->last_alarm)
		det->alarms[det->alarm_count - 1].clustered = true;
	if (!clustered)
		det->cluster_start = det->events;
	/* alarms mature after CBAD_ALARM_GAP events, so the queue cannot be full */
	if (det->alarm_count == CBAD_ALARM_QUEUE)
		mature_alarms(det, true);
	a = &det->alarms[det->alarm_count++];
	a->index = det->events;
	a->cluster_start = det->cluster_start;
	a->score = score;
	a->clustered = clustered;
	det->last_alarm = det->events;
}

/* A lasting shift: the recent anomalies become part of the baseline. */
static cbad_status
absorb_drift(cbad_detector *det)
{
	cbad_events *sus = &det->suspects;
	size_t		offset = 0;
	cbad_status status;

	for (int i = 0; i < sus->count; i++)
	{
		if (det->pending.count == det->pending.cap &&
			(status = cbad_detector_rebuild(det)) != CBAD_OK)
			return status;
		if (!cbad_events_push(&det->mem, &det->pending, sus->bytes.data + offset, sus->lens[i]))
			return CBAD_ENOMEM;
		offset += sus->lens[i];
	}
	cbad_events_clear(sus);
	flags_clear(det);
	det->alarm_count = 0;		/* the calibration is seeded anew below */
	det->drifts++;
	if ((status = cbad_detector_rebuild(det)) != CBAD_OK)
		return status;
	return bootstrap_calibration(det);
}

cbad_status
cbad_detector_observe(cbad_detector *det, const uint8_t *event, size_t len,
					  cbad_verdict *verdict)
{
	size_t		n = len;
	cbad_scratch *s;
	const uint8_t *m;
	cbad_status status;

	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
						 len : (size_t) det->cfg.max_event_bytes);
	if (s == NULL)
		return CBAD_ENOMEM;
	m = prepare_event(det, s, event, &n);
	if ((status = score_event(det, s, m, n, event, len, verdict)) != CBAD_OK)
		return status;
	det->events++;

	if (!det->warm)
	{
		/* warm-up: nothing to judge against yet, so everything is learnt */
		if ((status = accept_event(det, m, n)) != CBAD_OK)
			return status;
		if (det->events >= (uint64_t) det->cfg.warmup)
		{
			if ((status = cbad_detector_rebuild(det)) != CBAD_OK ||
				(status = bootstrap_calibration(det)) != CBAD_OK)
				return status;
			det->warm = true;
		}
		return CBAD_OK;
	}

	mature_alarms(det, false);
	if (verdict->is_anomaly)
	{
		det->anomalies++;
		queue_alarm(det, verdict->ncd);
		if ((status = keep_suspect(det, m, n)) != CBAD_OK)
			return status;
	}
	else
	{
		cbad_calibration_add(&det->cal, verdict->ncd);
		/*
		 * Only clearly typical events are learnt: an unusual but unflagged
		 * event (p <= learn_threshold) stays out of the baseline, so a run of
		 * them cannot teach the detector that they are normal.
		 */
		if (verdict->p_value > det->cfg.learn_threshold &&
			(status = accept_event(det, m, n)) != CBAD_OK)
			return status;
	}
	flags_push(det, verdict->is_anomaly);
	if (det->flags_count == det->cfg.drift_window &&
		det->flagged_in_window >= det->cfg.drift_threshold * det->cfg.drift_window)
	{
		verdict->drift = true;
		return absorb_drift(det);
	}
	return CBAD_OK;
}

cbad_status
cbad_detector_fit(cbad_detector *det, const uint8_t *const *events,
				  const size_t *lens, size_t n)
{
	size_t		first = n > (size_t) det->cfg.baseline_size ? n - (size_t) det->cfg.baseline_size : 0;
	cbad_status status;

	free_cdict(det, det->cdict);
	det->cdict = NULL;
	cbad_events_clear(&det->baseline);
	cbad_events_clear(&det->pending);
	cbad_events_clear(&det->suspects);
	cbad_calibration_clear(&det->cal);
	flags_clear(det);
	det->alarm_count = 0;
	det->last_alarm = 0;
	det->cluster_start = 0;
	det->warm = false;

	for (size_t i = first; i < n; i++)
	{
		size_t		len = lens[i];
		cbad_scratch *s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
										   len : (size_t) det->cfg.max_event_bytes);
		const uint8_t *m;

		if (s == NULL)
			return CBAD_ENOMEM;
		if (events[i] == NULL && len > 0)
			return CBAD_EINVAL;
		m = prepare_event(det, s, events[i], &len);
		if ((status = accept_event(det, m, len)) != CBAD_OK)
			return status;
	}
	if ((status = cbad_detector_rebuild(det)) != CBAD_OK ||
		(status = bootstrap_calibration(det)) != CBAD_OK)
		return status;
	/* a new state: its counters start from the fitted events */
	det->events = n;
	det->anomalies = 0;
	det->drifts = 0;
	det->warm = n >= (size_t) det->cfg.warmup;
	return CBAD_OK;
}

void
cbad_detector_stats(const cbad_detector *det, cbad_stats *stats)
{
	stats->events = det->events;
	stats->anomalies = det->anomalies;
	stats->drifts = det->drifts;
	stats->rebuilds = det->rebuilds;
	stats->baseline_events = det->baseline.count;
	stats->calibration_events = det->cal.count;
	stats->memory_bytes = det->mem.used;
}
