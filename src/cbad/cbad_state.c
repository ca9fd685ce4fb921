/*
 * cbad_state.c -- detector state to bytes and back
 *
 * Stored states are version 3: a compressed envelope around a plain state
 * (see cbad_detector_serialize).  The plain state's format (version 2; all
 * integers little-endian, doubles as their IEEE-754 bits):
 *   "DLCBAD" u16 version
 *   config: 8 x i32 (baseline_size, baseline_bytes, warmup, calibration_size,
 *           rebuild_interval, zstd_level, drift_window, max_event_bytes),
 *           4 x f64 (alpha, learn_threshold, drift_threshold, drift_novelty),
 *           u8 mask
 *   u64 events, anomalies, drifts, rebuilds, accepted, warm_until; u8 warm
 *   event lists baseline, pending, suspects: u32 count, count x u32 length,
 *           then the bytes
 *   the dictionary's exemplar prefix: u32 length, the bytes
 *   calibration: u32 count, count x f64, oldest first; f64 share of recent
 *           judged events flagged
 *   drift flags: u32 count, count x u8, oldest first
 *   patterns: u32 count, then each: u64 id, first event, last event, count,
 *           anomalies, learned_seq; f64 last p-value; u8 known; u32
 *           exemplar length and its bytes
 *   u64 FNV-1a hash of everything before it
 *
 * The dictionary is not stored: it is the stored exemplar prefix followed by
 * the baseline, so a restored detector builds the same dictionary, gets the
 * same compressed sizes and continues exactly as the original would have.
 *
 * The tail of the calibration is not stored either: it is a function of the
 * calibration, fitted again on restore.
 *
 * Versions 1 and 2 are read as they are (0.2.0 development builds wrote
 * plain version 2 states).  Version 1 (driftlock 0.1.0) is read too and converted: it has no
 * accepted counter (taken as the events in the baseline and pending), no
 * exemplars or patterns (empty), and
 * after the drift flags a queue of alarms waiting to join the calibration
 * (dropped: alarms no longer join it).  The converted detector keeps its
 * baseline and calibration and continues deterministically from there.
 */
#include "cbad_internal.h"

#include <math.h>
#include <string.h>

#define STATE_MAGIC "DLCBAD"
#define PLAIN_VERSION 2		/* bump on any change of the layout */
#define STATE_VERSION 3		/* the compressed envelope */
/* zstd level of the envelope: level 1 is 4x smaller here, level 3 barely more */
#define ENVELOPE_LEVEL 1
/* A plain state is far below this at any valid setting (checked on read). */
#define PLAIN_MAX ((size_t) 256 << 20)

typedef struct writer
{
	cbad_mem   *mem;
	cbad_buf	buf;
	bool		failed;
} writer;

static void
w_bytes(writer *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	if (!cbad_buf_reserve(w->mem, &w->buf, w->buf.len + n))
	{
		w->failed = true;
		return;
	}
	if (n)
		memcpy(w->buf.data + w->buf.len, p, n);
	w->buf.len += n;
}

static void
w_u64(writer *w, uint64_t v, int bytes)
{
	uint8_t		b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t) (v >> (8 * i));
	w_bytes(w, b, (size_t) bytes);
}

static void
w_f64(writer *w, double d)
{
	uint64_t	bits;

	memcpy(&bits, &d, sizeof(bits));
	w_u64(w, bits, 8);
}

static void
w_events(writer *w, const cbad_events *ev)
{
	w_u64(w, (uint64_t) ev->count, 4);
	for (int i = 0; i < ev->count; i++)
		w_u64(w, ev->lens[i], 4);
	w_bytes(w, cbad_events_data(ev), cbad_events_size(ev));
}

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
	uint64_t	h = 14695981039346656037ULL;	/* FNV-1a 64-bit offset basis */

	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The layout above (version 2), uncompressed. */
static cbad_status
serialize_plain(const cbad_detector *det, uint8_t **out, size_t *outlen)
{
	cbad_mem	outmem;
	writer		w = {&outmem, {0}, false};
	const cbad_config *c = &det->cfg;

	/* the result is the caller's: not counted in the detector's memory */
	cbad_mem_init(&outmem, &det->mem.allocator);

	*out = NULL;
	*outlen = 0;
	w_bytes(&w, STATE_MAGIC, 6);
	w_u64(&w, PLAIN_VERSION, 2);
	w_u64(&w, (uint32_t) c->baseline_size, 4);
	w_u64(&w, (uint32_t) c->baseline_bytes, 4);
	w_u64(&w, (uint32_t) c->warmup, 4);
	w_u64(&w, (uint32_t) c->calibration_size, 4);
	w_u64(&w, (uint32_t) c->rebuild_interval, 4);
	w_u64(&w, (uint32_t) c->zstd_level, 4);
	w_u64(&w, (uint32_t) c->drift_window, 4);
	w_u64(&w, (uint32_t) c->max_event_bytes, 4);
	w_f64(&w, c->alpha);
	w_f64(&w, c->learn_threshold);
	w_f64(&w, c->drift_threshold);
	w_f64(&w, c->drift_novelty);
	w_u64(&w, c->mask ? 1 : 0, 1);
	w_u64(&w, det->events, 8);
	w_u64(&w, det->anomalies, 8);
	w_u64(&w, det->drifts, 8);
	w_u64(&w, det->rebuilds, 8);
	w_u64(&w, det->accepted, 8);
	w_u64(&w, det->warm_until, 8);
	w_u64(&w, det->warm ? 1 : 0, 1);
	w_events(&w, &det->baseline);
	w_events(&w, &det->pending);
	w_events(&w, &det->suspects);
	w_u64(&w, det->baseline.start, 4);
	w_bytes(&w, det->baseline.bytes.data, det->baseline.start);
	w_u64(&w, (uint64_t) det->cal.count, 4);
	for (int i = 0; i < det->cal.count; i++)
		w_f64(&w, det->cal.ring[(det->cal.head + i) % det->cal.cap]);
	w_f64(&w, det->flag_rate);
	w_u64(&w, (uint64_t) det->flags_count, 4);
	for (int i = 0; i < det->flags_count; i++)
		w_u64(&w, det->flags[(det->flags_head + i) % c->drift_window], 1);
	w_u64(&w, (uint64_t) det->patterns.count, 4);
	for (int i = 0; i < det->patterns.count; i++)
	{
		const cbad_pattern_entry *e = &det->patterns.entries[i];

		w_u64(&w, e->id, 8);
		w_u64(&w, e->first_event, 8);
		w_u64(&w, e->last_event, 8);
		w_u64(&w, e->count, 8);
		w_u64(&w, e->anomalies, 8);
		w_u64(&w, e->learned_seq, 8);
		w_f64(&w, e->last_p);
		w_u64(&w, e->known ? 1 : 0, 1);
		w_u64(&w, e->exemplar_len, 4);
		w_bytes(&w, e->exemplar, e->exemplar_len);
	}
	if (!w.failed)
		w_u64(&w, fnv1a(w.buf.data, w.buf.len), 8);
	if (w.failed)
	{
		cbad_buf_release(w.mem, &w.buf);
		return CBAD_ENOMEM;
	}
	*out = w.buf.data;
	*outlen = w.buf.len;
	return CBAD_OK;
}

/*
 * Version 3: "DLCBAD" u16 3, u32 length of the plain state, a zstd frame
 * of the plain state (version 2, with its own hash), u64 FNV-1a hash of
 * everything before it.  Calibration scores and baseline events compress
 * about fourfold; the dictionary tables are never stored at all.
 */
cbad_status
cbad_detector_serialize(const cbad_detector *det, uint8_t **out, size_t *outlen)
{
	cbad_mem	outmem;
	writer		w = {&outmem, {0}, false};
	uint8_t    *plain;
	size_t		plain_len,
				bound,
				n;
	ZSTD_CCtx  *cctx;
	cbad_status status;

	*out = NULL;
	*outlen = 0;
	if ((status = serialize_plain(det, &plain, &plain_len)) != CBAD_OK)
		return status;
	cbad_mem_init(&outmem, &det->mem.allocator);
	bound = ZSTD_compressBound(plain_len);
	cctx = cbad_envelope_cctx();
	w_bytes(&w, STATE_MAGIC, 6);
	w_u64(&w, STATE_VERSION, 2);
	w_u64(&w, (uint64_t) plain_len, 4);
	if (cctx == NULL || !cbad_buf_reserve(&outmem, &w.buf, w.buf.len + bound + 8))
		w.failed = true;
	else
	{
		n = ZSTD_compressCCtx(cctx, w.buf.data + w.buf.len, bound, plain, plain_len,
							  ENVELOPE_LEVEL);
		if (ZSTD_isError(n))
			w.failed = true;
		else
			w.buf.len += n;
	}
	cbad_mem_free(&outmem, plain);
	if (!w.failed)
		w_u64(&w, fnv1a(w.buf.data, w.buf.len), 8);
	if (w.failed)
	{
		cbad_buf_release(&outmem, &w.buf);
		return CBAD_ENOMEM;
	}
	*out = w.buf.data;
	*outlen = w.buf.len;
	return CBAD_OK;
}

void
cbad_buffer_free(const cbad_detector *det, void *ptr)
{
	cbad_mem	mem;

	/* same allocator as the detector, but not counted in its memory */
	cbad_mem_init(&mem, &det->mem.allocator);
	cbad_mem_free(&mem, ptr);
}

typedef struct reader
{
	const uint8_t *p;
	size_t		left;
	bool		failed;
} reader;

static uint64_t
r_u64(reader *r, int bytes)
{
	uint64_t	v = 0;

	if (r->failed || r->left < (size_t) bytes)
	{
		r->failed = true;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t) r->p[i] << (8 * i);
	r->p += bytes;
	r->left -= (size_t) bytes;
	return v;
}

static int
r_i32(reader *r)
{
	uint64_t	v = r_u64(r, 4);

	return v > INT32_MAX ? (r->failed = true, 0) : (int) v;
}

static double
r_f64(reader *r)
{
	uint64_t	bits = r_u64(r, 8);
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static cbad_status
r_events(reader *r, cbad_mem *mem, cbad_events *ev, size_t max_bytes)
{
	uint64_t	count = r_u64(r, 4);
	size_t		total = 0;

	if (r->failed || count > (uint64_t) ev->cap || count * 4 > r->left)
		return CBAD_ECORRUPT;
	for (uint64_t i = 0; i < count; i++)
	{
		ev->lens[i] = (uint32_t) r_u64(r, 4);
		total += ev->lens[i];
		if (total > max_bytes)
			return CBAD_ECORRUPT;
	}
	if (r->failed || total > r->left)
		return CBAD_ECORRUPT;
	if (!cbad_buf_reserve(mem, &ev->bytes, total))
		return CBAD_ENOMEM;
	if (total)
		memcpy(ev->bytes.data, r->p, total);
	ev->bytes.len = total;
	ev->count = (int) count;
	r->p += total;
	r->left -= total;
	return CBAD_OK;
}

/*
 * Scores are ratios of compressed sizes: finite, not negative, never
 * subnormal.  A forged one would make score = ncd / median infinite.
 */
static bool
valid_score(double s)
{
	return isfinite(s) && s >= 0 && fpclassify(s) != FP_SUBNORMAL;
}

/* Version 1's queue of alarms: read and checked, then dropped. */
static bool
skip_v1_alarms(reader *r, uint64_t events)
{
	uint64_t	n = r_u64(r, 4);
	uint64_t	prev = 0;

	if (r->failed || n > 32)
		return false;
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	index = r_u64(r, 8);
		uint64_t	cluster_start = r_u64(r, 8);
		double		score = r_f64(r);
		uint64_t	clustered = r_u64(r, 1);

		if (r->failed || clustered > 1 || !valid_score(score) || index > events ||
			cluster_start > index || (i > 0 && index <= prev))
			return false;
		prev = index;
	}
	/* last alarm, cluster start */
	r_u64(r, 8);
	r_u64(r, 8);
	return !r->failed;
}

/* The patterns: entries as written, checked against each other and det. */
static cbad_status
r_patterns(reader *r, cbad_detector *det)
{
	cbad_patterns *t = &det->patterns;
	uint64_t	n = r_u64(r, 4);

	if (r->failed || n > (uint64_t) t->cap)
		return CBAD_ECORRUPT;
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	id = r_u64(r, 8);
		cbad_pattern_entry *e;
		uint64_t	known,
					len;

		if (r->failed || id == 0 || id > INT64_MAX || cbad_patterns_find(t, id) != NULL)
			return CBAD_ECORRUPT;
		e = cbad_patterns_add(&det->mem, t, id, 0);
		e->first_event = r_u64(r, 8);
		e->last_event = r_u64(r, 8);
		e->count = r_u64(r, 8);
		e->anomalies = r_u64(r, 8);
		e->learned_seq = r_u64(r, 8);
		e->last_p = r_f64(r);
		known = r_u64(r, 1);
		len = r_u64(r, 4);
		if (r->failed || known > 1 || e->first_event > e->last_event ||
			e->last_event > det->events || e->count > det->events ||
			e->anomalies > e->count || e->learned_seq > det->accepted ||
			(known == 1) != (e->learned_seq > 0) ||
			!(e->last_p >= 0 && e->last_p <= 1) ||
			len > CBAD_EXEMPLAR_BYTES || len > r->left || (len > 0 && known == 0))
			return CBAD_ECORRUPT;
		e->known = known == 1;
		if (len > 0)
		{
			if (!cbad_patterns_keep_exemplar(&det->mem, t, e, r->p, len, SIZE_MAX, det->events))
				return CBAD_ENOMEM;
			r->p += len;
			r->left -= len;
		}
	}
	return t->exemplar_bytes <= cbad_exemplar_budget(&det->cfg) ? CBAD_OK : CBAD_ECORRUPT;
}

static cbad_status
deserialize_plain(const uint8_t *data, size_t len,
				  const cbad_allocator *allocator, cbad_detector **out)
{
	reader		r = {data, len, false};
	cbad_config c;
	cbad_detector *det = NULL;
	cbad_status status;
	uint64_t	n;
	uint64_t	version;
	size_t		pending_cap;

	*out = NULL;
	if (data == NULL || len < 6 + 2 + 8 || memcmp(data, STATE_MAGIC, 6) != 0)
		return CBAD_ECORRUPT;
	if (fnv1a(data, len - 8) != (r.p = data + len - 8, r.left = 8, r_u64(&r, 8)))
		return CBAD_ECORRUPT;
	r.p = data + 6;
	r.left = len - 6 - 8;
	version = r_u64(&r, 2);
	if (version != 1 && version != PLAIN_VERSION)
		return CBAD_ECORRUPT;

	memset(&c, 0, sizeof(c));
	c.baseline_size = r_i32(&r);
	c.baseline_bytes = r_i32(&r);
	c.warmup = r_i32(&r);
	c.calibration_size = r_i32(&r);
	c.rebuild_interval = r_i32(&r);
	c.zstd_level = r_i32(&r);
	c.drift_window = r_i32(&r);
	c.max_event_bytes = r_i32(&r);
	c.alpha = r_f64(&r);
	c.learn_threshold = r_f64(&r);
	c.drift_threshold = r_f64(&r);
	/* version 1 predates the setting: its default */
	c.drift_novelty = version >= 2 ? r_f64(&r) : 0.45;
	n = r_u64(&r, 1);
	c.mask = n == 1;
	if (r.failed || n > 1)
		return CBAD_ECORRUPT;
	{
		char		err[256];

		if (cbad_config_validate(&c, err, sizeof(err)) != CBAD_OK)
			return CBAD_ECORRUPT;
	}
	if ((status = cbad_detector_alloc(&c, allocator, &det)) != CBAD_OK)
		return status;

	det->events = r_u64(&r, 8);
	det->anomalies = r_u64(&r, 8);
	det->drifts = r_u64(&r, 8);
	det->rebuilds = r_u64(&r, 8);
	if (version >= 2)
	{
		det->accepted = r_u64(&r, 8);
		det->warm_until = r_u64(&r, 8);
	}
	n = r_u64(&r, 1);
	det->warm = n == 1;
	if (version == 1)
		det->warm_until = det->warm ? det->events : (uint64_t) c.warmup;
	/* each stored event is at most a quarter of baseline_bytes */
	pending_cap = (size_t) c.rebuild_interval * (size_t) (c.baseline_bytes / 4);
	/*
	 * No stream reaches 2^62 events (a century at a billion a second); a
	 * forged counter near 2^64 would wrap around and make the next state
	 * unreadable.
	 */
	if (r.failed || n > 1 || det->events > CBAD_MAX_EVENTS ||
		det->anomalies > det->events || det->drifts > det->events ||
		det->accepted > CBAD_MAX_EVENTS ||
		det->warm_until > det->events + (uint64_t) c.warmup ||
		(det->warm && det->warm_until > det->events))
		goto corrupt;
	if ((status = r_events(&r, &det->mem, &det->baseline, (size_t) c.baseline_bytes)) != CBAD_OK ||
		(status = r_events(&r, &det->mem, &det->pending, pending_cap)) != CBAD_OK ||
		(status = r_events(&r, &det->mem, &det->suspects, (size_t) c.baseline_bytes)) != CBAD_OK)
	{
		cbad_detector_free(det);
		return status;
	}
	if (version == 1)
		det->accepted = (uint64_t) det->baseline.count + (uint64_t) det->pending.count;
	else if (det->accepted < (uint64_t) det->baseline.count + (uint64_t) det->pending.count)
		goto corrupt;

	/* the dictionary: the exemplar prefix, then the baseline's events */
	n = version >= 2 ? r_u64(&r, 4) : 0;
	if (r.failed || n > cbad_exemplar_budget(&c) || n > r.left ||
		n + cbad_events_size(&det->baseline) > (size_t) c.baseline_bytes + cbad_exemplar_budget(&c))
		goto corrupt;
	if (!cbad_buf_reserve(&det->mem, &det->baseline.bytes, n + det->baseline.bytes.len))
	{
		cbad_detector_free(det);
		return CBAD_ENOMEM;
	}
	memmove(det->baseline.bytes.data + n, det->baseline.bytes.data, det->baseline.bytes.len);
	if (n)
		memcpy(det->baseline.bytes.data, r.p, n);
	det->baseline.start = n;
	det->baseline.bytes.len += n;
	r.p += n;
	r.left -= n;

	n = r_u64(&r, 4);
	if (r.failed || n > (uint64_t) c.calibration_size)
		goto corrupt;
	for (uint64_t i = 0; i < n; i++)
	{
		double		s = r_f64(&r);

		if (r.failed || !valid_score(s))
			goto corrupt;
		cbad_calibration_add(&det->cal, s);
	}
	if (version >= 2)
	{
		det->flag_rate = r_f64(&r);
		if (r.failed || !(det->flag_rate >= 0 && det->flag_rate <= 1) ||
			fpclassify(det->flag_rate) == FP_SUBNORMAL)
			goto corrupt;
	}
	n = r_u64(&r, 4);
	if (r.failed || n > (uint64_t) c.drift_window)
		goto corrupt;
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	f = r_u64(&r, 1);

		if (r.failed || f > 1)
			goto corrupt;
		cbad_drift_push(det, f == 1);
	}
	if (version == 1)
	{
		if (!skip_v1_alarms(&r, det->events))
			goto corrupt;
	}
	else if ((status = r_patterns(&r, det)) != CBAD_OK)
	{
		if (status != CBAD_ECORRUPT)
		{
			cbad_detector_free(det);
			return status;
		}
		goto corrupt;
	}
	if (r.failed || r.left != 0)
		goto corrupt;

	/* the tail is a function of the calibration */
	cbad_tail_fit(&det->tail, &det->cal, c.alpha, det->flag_rate);
	cbad_detector_index_stored(det);
	if ((status = cbad_detector_build_dict(det)) != CBAD_OK)
	{
		cbad_detector_free(det);
		return status;
	}
	*out = det;
	return CBAD_OK;

corrupt:
	cbad_detector_free(det);
	return CBAD_ECORRUPT;
}

/* Version 3 holds a plain state (version 2); versions 1 and 2 are read as they are. */
cbad_status
cbad_detector_deserialize(const uint8_t *data, size_t len,
						  const cbad_allocator *allocator, cbad_detector **out)
{
	reader		r = {data, len, false};
	cbad_mem	mem;
	uint64_t	plain_len;
	uint8_t    *plain;
	ZSTD_DCtx  *dctx;
	size_t		n;
	cbad_status status;

	*out = NULL;
	if (data == NULL || len < 6 + 2 + 4 + 8 || memcmp(data, STATE_MAGIC, 6) != 0)
		return CBAD_ECORRUPT;
	r.p = data + 6;
	r.left = len - 6;
	if (r_u64(&r, 2) != STATE_VERSION)
		return deserialize_plain(data, len, allocator, out);
	if (fnv1a(data, len - 8) != (r.p = data + len - 8, r.left = 8, r_u64(&r, 8)))
		return CBAD_ECORRUPT;
	r.p = data + 8;
	r.left = 4;
	plain_len = r_u64(&r, 4);
	if (plain_len < 6 + 2 + 8 || plain_len > PLAIN_MAX)
		return CBAD_ECORRUPT;
	/* the frame must say the same length: no allocation on a forged one */
	if (ZSTD_getFrameContentSize(data + 12, len - 12 - 8) != plain_len)
		return CBAD_ECORRUPT;
	cbad_mem_init(&mem, allocator);
	dctx = cbad_envelope_dctx();
	if (dctx == NULL || (plain = cbad_mem_alloc(&mem, (size_t) plain_len)) == NULL)
		return CBAD_ENOMEM;
	n = ZSTD_decompressDCtx(dctx, plain, (size_t) plain_len, data + 12, len - 12 - 8);
	if (ZSTD_isError(n) || n != plain_len ||
		memcmp(plain + 6, "\x02\x00", 2) != 0)
		status = CBAD_ECORRUPT;
	else
		status = deserialize_plain(plain, n, allocator, out);
	cbad_mem_free(&mem, plain);
	return status;
}
