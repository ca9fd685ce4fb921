/*
 * cbad_detector.c -- the streaming detector: score, decide, learn
 *
 * For an event x (masked, see cbad_mask.c) and the dictionary D:
 *
 *   ncd   = (C(x|D) - e_D) / (C(x) - e)
 *
 * where C(x|D) is x compressed with D as a zstd dictionary, C(x) x compressed
 * alone and e_D, e the cost of an empty input with and without the
 * dictionary (frame overhead, which would otherwise dominate short events).
 * 0 means the dictionary explains the event entirely, 1 that it does not
 * help.  The dictionary is the baseline -- recent events judged normal --
 * preceded by one exemplar of each known pattern the baseline no longer
 * holds (cbad_pattern.c), so a normal message that is rare but recurring is
 * not new again because 256 newer events pushed it out.
 *
 * The p-value comes from the scores of recent normal events
 * (cbad_calibration.c); an event is anomalous when it is at most alpha.
 * Every verdict also names the event's pattern and whether the stream has
 * seen it before (new), seen it without ever learning it (repeat: a
 * recurring anomaly, say) or learnt it as normal (known).
 *
 * Learning is gated: only clearly typical events (p-value above
 * learn_threshold) join the baseline and the calibration takes the scores of
 * unflagged events only, so a run of anomalies, however long, teaches the
 * detector nothing -- until the flags say the stream itself has changed
 * (cbad_drift.c): then the anomalies are learnt and the detector warms up
 * again.
 *
 * The dictionary (a ZSTD_CDict referring to the baseline's buffer) is rebuilt every
 * rebuild_interval learnt events, so scoring costs O(|x|), not O(|D|).
 */
#include "cbad_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_cdict(cbad_detector *det, ZSTD_CDict *cdict);

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
	det->tail.z = INFINITY;
	det->warm_until = (uint64_t) cfg->warmup;
	if (!cbad_events_init(&det->mem, &det->baseline, cfg->baseline_size) ||
		!cbad_events_init(&det->mem, &det->pending, cfg->rebuild_interval) ||
		!cbad_events_init(&det->mem, &det->suspects, cfg->drift_window) ||
		!cbad_calibration_init(&det->mem, &det->cal, cfg->calibration_size) ||
		!cbad_patterns_init(&det->mem, &det->patterns, CBAD_PATTERNS) ||
		(det->baseline_ids = cbad_mem_alloc(&det->mem, sizeof(uint64_t) * (size_t) cfg->baseline_size)) == NULL ||
		(det->pending_ids = cbad_mem_alloc(&det->mem, sizeof(uint64_t) * (size_t) cfg->rebuild_interval)) == NULL ||
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
	cbad_patterns_release(&det->mem, &det->patterns);
	cbad_mem_free(&det->mem, det->baseline_ids);
	cbad_mem_free(&det->mem, det->pending_ids);
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
prepare_event(const cbad_config *cfg, cbad_scratch *s, const uint8_t *event,
			  size_t *len)
{
	if (*len > (size_t) cfg->max_event_bytes)
		*len = (size_t) cfg->max_event_bytes;
	if (!cfg->mask)
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

/* (Re)create the CDict over the dictionary (the baseline's buffer) as it is now. */
cbad_status
cbad_detector_build_dict(cbad_detector *det)
{
	cbad_scratch *s;

	free_cdict(det, det->cdict);
	det->cdict = NULL;
	if (det->baseline.bytes.len == 0)
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

static int
by_last_event(const void *a, const void *b)
{
	const cbad_pattern_entry *x = *(const cbad_pattern_entry *const *) a;
	const cbad_pattern_entry *y = *(const cbad_pattern_entry *const *) b;

	return (x->last_event > y->last_event) - (x->last_event < y->last_event);
}

/*
 * The exemplars to put before a baseline of `count` events: those of the
 * known patterns whose latest learnt event will not be in it, least recently
 * seen first (zstd reaches the end of a dictionary most cheaply; last_event
 * is unique per pattern, so the order is deterministic).  Returns how many,
 * and their total length in *bytes; chosen has room for every pattern.
 */
static int
choose_exemplars(const cbad_detector *det, int count, const cbad_pattern_entry **chosen,
				 size_t *bytes)
{
	const cbad_patterns *t = &det->patterns;
	int			n = 0;

	*bytes = 0;
	for (int i = 0; i < t->count; i++)
	{
		const cbad_pattern_entry *e = &t->entries[i];

		if (e->exemplar != NULL && e->learned_seq + (uint64_t) count <= det->accepted)
		{
			chosen[n++] = e;
			*bytes += e->exemplar_len;
		}
	}
	qsort(chosen, (size_t) n, sizeof(*chosen), by_last_event);
	return n;
}

/* The i-th event of the baseline followed by pending: its bytes, length, pattern. */
static const uint8_t *
joined_event(const cbad_detector *det, int i, const uint8_t **cursor, uint32_t *len, uint64_t *id)
{
	const uint8_t *at = *cursor;
	bool		in_baseline = i < det->baseline.count;
	int			k = in_baseline ? i : i - det->baseline.count;

	if (i == det->baseline.count)
		at = det->pending.bytes.data;
	*len = in_baseline ? det->baseline.lens[k] : det->pending.lens[k];
	*id = in_baseline ? det->baseline_ids[k] : det->pending_ids[k];
	*cursor = at + *len;
	return at;
}

/*
 * Move the pending events into the baseline and rebuild the dictionary:
 * the exemplars, then the newest of the baseline's and pending events that
 * fit in baseline_size events and, with the exemplars, in baseline_bytes
 * (at least one event).  A known pattern whose last learnt event leaves the
 * baseline keeps that event as its exemplar.  Memory is reserved before
 * anything moves, so a failure leaves the baseline and pending as they
 * were (perhaps with a few more exemplars).
 */
cbad_status
cbad_detector_rebuild(cbad_detector *det)
{
	cbad_events *b = &det->baseline;
	cbad_events *p = &det->pending;
	size_t		limit = (size_t) det->cfg.baseline_bytes;
	int			total = b->count + p->count;
	int			drop = 0;
	size_t		bytes = cbad_events_size(b) + p->bytes.len;
	size_t		prefix = 0;
	size_t		b_skip = 0,
				p_skip = 0,
				kept_b;
	int			kept_bn,
				nchosen = 0;
	const uint8_t *cursor = cbad_events_data(b);
	const cbad_pattern_entry **chosen;
	cbad_status status = CBAD_OK;

	free_cdict(det, det->cdict);	/* it refers to the buffer about to change */
	det->cdict = NULL;
	chosen = cbad_mem_alloc(&det->mem, sizeof(*chosen) * (size_t) (det->patterns.count + 1));
	if (chosen == NULL)
		return CBAD_ENOMEM;

	/*
	 * Drop the oldest events until the rest fits with the exemplars it needs:
	 * those of the patterns it no longer holds, the leaving events among
	 * them.
	 */
	for (;;)
	{
		while (status == CBAD_OK && total - drop > 1 &&
			   (total - drop > b->cap || bytes + prefix > limit))
		{
			uint32_t	len;
			uint64_t	id;
			const uint8_t *ev = joined_event(det, drop, &cursor, &len, &id);
			cbad_pattern_entry *e = cbad_patterns_find(&det->patterns, id);

			drop++;
			bytes -= len;
			*(drop <= b->count ? &b_skip : &p_skip) += len;
			if (e != NULL && e->known && e->exemplar == NULL &&
				e->learned_seq + (uint64_t) (total - drop) <= det->accepted &&
				!cbad_patterns_keep_exemplar(&det->mem, &det->patterns, e, ev, len,
											 cbad_exemplar_budget(&det->cfg), det->events))
				status = CBAD_ENOMEM;
		}
		if (status != CBAD_OK)
			break;
		/* the exemplars that go with the rest: did they fit? */
		nchosen = choose_exemplars(det, total - drop, chosen, &prefix);
		if (bytes + prefix <= limit || total - drop <= 1)
			break;
	}
	/* one event bigger than the budget: no room for exemplars */
	while (status == CBAD_OK && nchosen > 0 && bytes + prefix > limit)
		prefix -= chosen[--nchosen]->exemplar_len;
	if (status != CBAD_OK || !cbad_buf_reserve(&det->mem, &b->bytes, prefix + bytes))
	{
		cbad_mem_free(&det->mem, chosen);
		return CBAD_ENOMEM;
	}

	/* lay out [exemplars][kept baseline events][kept pending events] */
	kept_bn = drop < b->count ? b->count - drop : 0;
	kept_b = kept_bn > 0 ? cbad_events_size(b) - b_skip : 0;
	memmove(b->bytes.data + prefix, b->bytes.data + b->start + b_skip, kept_b);
	if (p->bytes.len > p_skip)
		memcpy(b->bytes.data + prefix + kept_b, p->bytes.data + p_skip, p->bytes.len - p_skip);
	b->bytes.len = prefix + bytes;
	b->start = 0;
	for (int i = 0; i < nchosen; i++)
	{
		memcpy(b->bytes.data + b->start, chosen[i]->exemplar, chosen[i]->exemplar_len);
		b->start += chosen[i]->exemplar_len;
	}
	cbad_mem_free(&det->mem, chosen);
	memmove(b->lens, b->lens + (b->count - kept_bn), sizeof(uint32_t) * (size_t) kept_bn);
	memmove(det->baseline_ids, det->baseline_ids + (b->count - kept_bn), sizeof(uint64_t) * (size_t) kept_bn);
	for (int i = drop > b->count ? drop - b->count : 0; i < p->count; i++)
	{
		b->lens[kept_bn] = p->lens[i];
		det->baseline_ids[kept_bn++] = det->pending_ids[i];
	}
	b->count = kept_bn;
	cbad_events_clear(p);
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

/* Keep an anomaly, to learn it if a drift makes it the new normal. */
static cbad_status
keep_suspect(cbad_detector *det, const uint8_t *m, size_t len)
{
	if (!cbad_events_push(&det->mem, &det->suspects, m, stored_length(det, len)))
		return CBAD_ENOMEM;
	while (det->suspects.bytes.len > (size_t) det->cfg.baseline_bytes)
		cbad_events_drop_oldest(&det->suspects, 1);
	return CBAD_OK;
}

/*
 * Learn a normal event: it joins the baseline at the next rebuild, and its
 * pattern (e, which may be NULL) is known from now on.
 */
static cbad_status
accept_event(cbad_detector *det, cbad_pattern_entry *e, const uint8_t *m, size_t len)
{
	size_t		stored = stored_length(det, len);

	if (!cbad_events_push(&det->mem, &det->pending, m, stored))
		return CBAD_ENOMEM;
	/* the pattern of what is stored: of a cut event, of the part kept */
	det->pending_ids[det->pending.count - 1] = e != NULL && stored == len ? e->id :
		cbad_pattern_of(m, stored, NULL, 0);
	det->accepted++;
	if (e != NULL)
	{
		e->known = true;
		e->learned_seq = det->accepted;
	}
	if (det->pending.count >= det->cfg.rebuild_interval)
		return cbad_detector_rebuild(det);
	return CBAD_OK;
}

/* The pattern ids of the stored baseline and pending events, after a restore. */
void
cbad_detector_index_stored(cbad_detector *det)
{
	const cbad_events *lists[2] = {&det->baseline, &det->pending};
	uint64_t   *ids[2] = {det->baseline_ids, det->pending_ids};

	for (int l = 0; l < 2; l++)
	{
		const uint8_t *p = cbad_events_data(lists[l]);

		for (int i = 0; i < lists[l]->count; i++)
		{
			ids[l][i] = cbad_pattern_of(p, lists[l]->lens[i], NULL, 0);
			p += lists[l]->lens[i];
		}
	}
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
	for (int i = 0; i < b->count; i++)
	{
		offsets[i] = i == 0 ? b->start : offsets[i - 1] + b->lens[i - 1];
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

/* Refit the calibration's tail after it or the flag rate changed. */
static void
refit_tail(cbad_detector *det)
{
	cbad_tail_fit(&det->tail, &det->cal, det->cfg.alpha, det->flag_rate);
}

/* Seed the calibration from the baseline (nothing flagged yet) and fit its tail. */
static cbad_status
seed_calibration(cbad_detector *det)
{
	cbad_status status = bootstrap_calibration(det);

	det->flag_rate = 0;
	refit_tail(det);
	return status;
}

/*
 * What groups an anomaly with others into an incident.  An anomaly of a
 * pattern the stream never learnt is that pattern recurring.  An anomaly of
 * a known pattern is something else inside a familiar message (a query
 * that looks like an injection in a normal request log line): the pattern
 * with the first token the stream has never seen tells such anomalies
 * apart.
 */
static uint64_t
incident_key(const cbad_detector *det, const uint8_t *m, size_t len, const cbad_verdict *v)
{
	size_t		pos = 0,
				start,
				n;
	uint64_t	h;

	if (v->pattern_status != CBAD_PATTERN_KNOWN ||
		!cbad_next_new_token(det, m, len, &pos, &start, &n))
		return v->pattern_id;
	h = v->pattern_id ^ 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ m[start + i]) * 1099511628211ULL;
	h ^= h >> 31;
	h &= INT64_MAX;
	return h ? h : 1;
}

/*
 * The verdict for an event (m: its scored bytes, raw_len: its length), from
 * the current state; changes nothing.  *entry is set to the event's pattern in
 * the table, NULL when it is not there.
 */
static cbad_status
score_event(cbad_detector *det, cbad_scratch *s, const uint8_t *m, size_t len,
			size_t raw_len, cbad_verdict *v, cbad_pattern_entry **entry)
{
	size_t		e0 = empty_cost(s, det->cfg.zstd_level);
	size_t		alone = cbad_compressed_size(s, m, len, det->cfg.zstd_level);
	size_t		cond;
	cbad_pattern_entry *e;

	if (alone == 0)
		return CBAD_EZSTD;
	alone = alone > e0 ? alone - e0 : 1;
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
	/* the text too, for cbad_pattern_text(): hosts show it with the verdict */
	v->pattern_id = s->pattern_id = cbad_pattern_of(m, len, s->pattern, sizeof(s->pattern));
	*entry = e = cbad_patterns_find(&det->patterns, v->pattern_id);
	v->pattern_status = e == NULL ? CBAD_PATTERN_NEW :
		e->known ? CBAD_PATTERN_KNOWN : CBAD_PATTERN_REPEAT;
	v->pattern_count = e == NULL ? 1 : e->count + 1;
	v->event_number = det->events + 1;
	v->pattern_first_event = e == NULL ? v->event_number : e->first_event;

	v->warm = det->warm;
	v->truncated = raw_len > len;
	v->raw_bytes = raw_len;
	v->has_dictionary = det->cdict != NULL;
	v->has_calibration = det->cal.count > 0;
	v->alone_bytes = alone;
	v->cond_bytes = cond;
	v->ncd = (double) cond / (double) alone;
	v->compression_ratio = len ? (double) len / (double) (cond ? cond : 1) : 1.0;
	v->baseline_events = det->baseline.count;
	v->calibration_events = det->cal.count;
	v->typical_ncd = cbad_calibration_median(&det->cal);
	v->score = (v->has_calibration && v->typical_ncd > 0) ? v->ncd / v->typical_ncd : v->ncd;
	v->p_value = v->has_calibration ? cbad_tail_pvalue(&det->tail, &det->cal, v->ncd) : 1.0;
	v->confidence = v->has_calibration ? 1.0 - v->p_value : 0.0;
	v->is_anomaly = det->warm && v->has_calibration && v->p_value <= det->cfg.alpha;
	v->warmup_left = det->warm ? 0 : det->warm_until - det->events;
	if (v->is_anomaly)
		v->incident_key = incident_key(det, m, len, v);
	return CBAD_OK;
}

cbad_status
cbad_pattern_for(const cbad_config *cfg, const uint8_t *event, size_t len,
				 uint64_t *id, char *text, size_t textcap)
{
	size_t		n = len;
	cbad_scratch *s = cbad_scratch_get(len < (size_t) cfg->max_event_bytes ?
									   len : (size_t) cfg->max_event_bytes);
	const uint8_t *m;

	if (s == NULL)
		return CBAD_ENOMEM;
	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	m = prepare_event(cfg, s, event, &n);
	*id = cbad_pattern_of(m, n, text, textcap);
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
	cbad_pattern_entry *e;

	if (s == NULL)
		return CBAD_ENOMEM;
	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	m = prepare_event(&det->cfg, s, event, &n);
	return score_event(det, s, m, n, len, verdict, &e);
}

/*
 * Count an occurrence of the verdict's pattern (e: its entry, NULL when it
 * has none yet).  Returns the entry, NULL when memory is short.
 */
static cbad_pattern_entry *
count_pattern(cbad_detector *det, cbad_pattern_entry *e, const cbad_verdict *v)
{
	if (e == NULL &&
		(e = cbad_patterns_add(&det->mem, &det->patterns, v->pattern_id, det->events)) == NULL)
		return NULL;
	e->count++;
	e->last_event = det->events;
	e->anomalies += v->is_anomaly;
	return e;
}

/* Start (or, after a drift, restart) the warm-up of `warmup` events. */
static void
start_warmup(cbad_detector *det)
{
	det->warm = false;
	det->warm_until = det->events + (uint64_t) det->cfg.warmup;
}

/*
 * A lasting shift: the anomalies kept since the last drift are learnt (they
 * join the baseline and their patterns are known), the calibration is
 * seeded anew from the baseline, and the detector warms up again.
 */
static cbad_status
absorb_drift(cbad_detector *det)
{
	cbad_events *sus = &det->suspects;
	size_t		offset = 0;
	cbad_status status;

	for (int i = 0; i < sus->count; i++)
	{
		const uint8_t *m = sus->bytes.data + offset;
		cbad_pattern_entry *e = cbad_patterns_find(&det->patterns,
												   cbad_pattern_of(m, sus->lens[i], NULL, 0));

		if ((status = accept_event(det, e, m, sus->lens[i])) != CBAD_OK)
			return status;
		offset += sus->lens[i];
	}
	cbad_events_clear(sus);
	cbad_drift_clear(det);
	det->drifts++;
	start_warmup(det);
	if ((status = cbad_detector_rebuild(det)) != CBAD_OK)
		return status;
	return seed_calibration(det);
}

/* A warm event: record the verdict, learn, watch for drift. */
static cbad_status
judge(cbad_detector *det, cbad_pattern_entry *e, const uint8_t *m, size_t n,
	  cbad_verdict *verdict)
{
	cbad_status status;
	cbad_drift_kind drift;

	det->flag_rate += ((verdict->is_anomaly ? 1.0 : 0.0) - det->flag_rate) /
		det->cfg.calibration_size;
	if (verdict->is_anomaly)
	{
		det->anomalies++;
		refit_tail(det);
		if ((status = keep_suspect(det, m, n)) != CBAD_OK)
			return status;
	}
	else
	{
		cbad_calibration_add(&det->cal, verdict->ncd);
		refit_tail(det);

		/*
		 * Only clearly typical events are learnt: an unusual but unflagged
		 * event (p <= learn_threshold) stays out of the baseline, so a run of
		 * them cannot teach the detector that they are normal.
		 */
		if (verdict->p_value > det->cfg.learn_threshold &&
			(status = accept_event(det, e, m, n)) != CBAD_OK)
			return status;
	}
	cbad_drift_push(det, verdict->is_anomaly);
	if ((status = cbad_drift_check(det, verdict->is_anomaly, &drift)) != CBAD_OK)
		return status;
	if (drift == CBAD_DRIFT_NONE)
		return CBAD_OK;
	verdict->drift = drift;
	return absorb_drift(det);
}

/*
 * What observing an event starts with: score it and count it and its
 * pattern (in learn-only mode, as never an anomaly).  *m and *n: the scored
 * (masked) bytes; *e: the pattern's entry.
 */
static cbad_status
observe_start(cbad_detector *det, const uint8_t *event, size_t len, bool learning_only,
			  cbad_verdict *verdict, const uint8_t **m, size_t *n, cbad_pattern_entry **e)
{
	cbad_scratch *s;
	cbad_status status;

	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
						 len : (size_t) det->cfg.max_event_bytes);
	if (s == NULL)
		return CBAD_ENOMEM;
	*n = len;
	*m = prepare_event(&det->cfg, s, event, n);
	if ((status = score_event(det, s, *m, *n, len, verdict, e)) != CBAD_OK)
		return status;
	if (learning_only)
	{
		verdict->is_anomaly = false;
		verdict->incident_key = 0;
		verdict->learning_only = true;
	}
	det->events++;
	if ((*e = count_pattern(det, *e, verdict)) == NULL)
		return CBAD_ENOMEM;
	return CBAD_OK;
}

cbad_status
cbad_detector_observe(cbad_detector *det, const uint8_t *event, size_t len,
					  cbad_verdict *verdict)
{
	size_t		n;
	const uint8_t *m;
	cbad_status status;
	cbad_pattern_entry *e;

	if ((status = observe_start(det, event, len, false, verdict, &m, &n, &e)) != CBAD_OK)
		return status;
	if (det->warm)
		return judge(det, e, m, n, verdict);

	/*
	 * Warm-up, nothing judged.  At the start of a stream everything is
	 * learnt and the calibration is seeded at the end.  After a drift the
	 * calibration, seeded then, takes every score while it adapts to the new
	 * normal, and learning stays gated as when warm: the drift already learnt
	 * the anomalies that made it.
	 */
	if (det->cal.count == 0 || verdict->p_value > det->cfg.learn_threshold)
	{
		if ((status = accept_event(det, e, m, n)) != CBAD_OK)
			return status;
	}
	if (det->cal.count > 0)
	{
		cbad_calibration_add(&det->cal, verdict->ncd);
		refit_tail(det);
	}
	if (det->events >= det->warm_until)
	{
		if ((status = cbad_detector_rebuild(det)) != CBAD_OK ||
			(det->cal.count == 0 && (status = seed_calibration(det)) != CBAD_OK))
			return status;
		det->warm = true;
	}
	return CBAD_OK;
}

cbad_status
cbad_detector_observe_learning(cbad_detector *det, const uint8_t *event, size_t len,
							   cbad_verdict *verdict)
{
	size_t		n;
	const uint8_t *m;
	cbad_status status;
	cbad_pattern_entry *e;

	if ((status = observe_start(det, event, len, true, verdict, &m, &n, &e)) != CBAD_OK)
		return status;
	if ((status = accept_event(det, e, m, n)) != CBAD_OK)
		return status;
	if (det->cal.count > 0)
	{
		/* a normal event's score: the calibration follows what is learnt */
		det->flag_rate -= det->flag_rate / det->cfg.calibration_size;
		cbad_calibration_add(&det->cal, verdict->ncd);
		refit_tail(det);
	}
	if (!det->warm && det->events >= det->warm_until)
	{
		if ((status = cbad_detector_rebuild(det)) != CBAD_OK ||
			(det->cal.count == 0 && (status = seed_calibration(det)) != CBAD_OK))
			return status;
		det->warm = true;
	}
	return CBAD_OK;
}

cbad_status
cbad_detector_learn(cbad_detector *det, const uint8_t *event, size_t len)
{
	size_t		n = len;
	cbad_scratch *s;
	const uint8_t *m;
	cbad_pattern_entry *e;
	cbad_status status;
	uint64_t	id;

	if (event == NULL && len > 0)
		return CBAD_EINVAL;
	s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
						 len : (size_t) det->cfg.max_event_bytes);
	if (s == NULL)
		return CBAD_ENOMEM;
	m = prepare_event(&det->cfg, s, event, &n);
	id = cbad_pattern_of(m, n, NULL, 0);
	if ((e = cbad_patterns_find(&det->patterns, id)) == NULL &&
		(e = cbad_patterns_add(&det->mem, &det->patterns, id, det->events)) == NULL)
		return CBAD_ENOMEM;
	if ((status = accept_event(det, e, m, n)) != CBAD_OK)
		return status;
	/* at once: the next event is judged with it in the dictionary */
	return det->pending.count > 0 ? cbad_detector_rebuild(det) : CBAD_OK;
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
	cbad_patterns_clear(&det->mem, &det->patterns);
	cbad_drift_clear(det);
	det->baseline.start = 0;
	cbad_events_clear(&det->baseline);
	det->accepted = 0;
	det->events = 0;

	for (size_t i = 0; i < n; i++)
	{
		size_t		len = lens[i];
		cbad_scratch *s = cbad_scratch_get(len < (size_t) det->cfg.max_event_bytes ?
										   len : (size_t) det->cfg.max_event_bytes);
		const uint8_t *m;
		cbad_verdict v;
		cbad_pattern_entry *e;

		if (s == NULL)
			return CBAD_ENOMEM;
		if (events[i] == NULL && len > 0)
			return CBAD_EINVAL;
		m = prepare_event(&det->cfg, s, events[i], &len);
		memset(&v, 0, sizeof(v));
		v.pattern_id = cbad_pattern_of(m, len, NULL, 0);
		det->events++;
		if ((e = count_pattern(det, cbad_patterns_find(&det->patterns, v.pattern_id), &v)) == NULL)
			return CBAD_ENOMEM;
		/* only the last baseline_size events are kept: learn just those */
		if (i >= first && (status = accept_event(det, e, m, len)) != CBAD_OK)
			return status;
	}
	if ((status = cbad_detector_rebuild(det)) != CBAD_OK ||
		(status = seed_calibration(det)) != CBAD_OK)
		return status;
	/*
	 * A new state: its counters start from the fitted events.  A baseline
	 * given whole is complete, not a stream warming up: the detector judges
	 * as soon as there is a calibration to judge against.
	 */
	det->events = n;
	det->anomalies = 0;
	det->drifts = 0;
	det->warm = det->cal.count > 0;
	det->warm_until = det->warm ? n : n + (uint64_t) det->cfg.warmup;
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

const char *
cbad_pattern_status_name(cbad_pattern_status status)
{
	switch (status)
	{
		case CBAD_PATTERN_NEW:
			return "new";
		case CBAD_PATTERN_REPEAT:
			return "repeat";
		case CBAD_PATTERN_KNOWN:
			return "known";
	}
	return "unknown";
}
