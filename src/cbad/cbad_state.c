/*
 * cbad_state.c -- detector state to bytes and back
 *
 * Format (all integers little-endian, doubles as their IEEE-754 bits):
 *   "DLCBAD" u16 version
 *   config: 8 x i32 (baseline_size, baseline_bytes, warmup, calibration_size,
 *           rebuild_interval, zstd_level, drift_window, max_event_bytes),
 *           3 x f64 (alpha, learn_threshold, drift_threshold), u8 mask
 *   u64 events, anomalies, drifts, rebuilds; u8 warm
 *   event lists baseline, pending, suspects: u32 count, count x u32 length,
 *           then the bytes
 *   calibration: u32 count, count x f64, oldest first
 *   drift flags: u32 count, count x u8, oldest first
 *   alarms waiting to join the calibration: u32 count, count x (u64 event
 *           number, u64 cluster start, f64 score, u8 clustered), oldest
 *           first; u64 last alarm, u64 cluster start
 *   u64 FNV-1a hash of everything before it
 *
 * The dictionary is not stored: it is rebuilt from the baseline, which gives
 * the same compressed sizes, so a restored detector continues exactly as the
 * original would have.
 */
#include "cbad_internal.h"

#include <math.h>
#include <string.h>

#define STATE_MAGIC "DLCBAD"
#define STATE_VERSION 1		/* bump on any change of the layout */

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
	w_bytes(w, ev->bytes.data, ev->bytes.len);
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

cbad_status
cbad_detector_serialize(const cbad_detector *det, uint8_t **out, size_t *outlen)
{
	cbad_mem	outmem;
	writer		w = {&outmem, {0}, false};
	const cbad_config *c = &det->cfg;

	/* the result is the caller's: not counted in the detector's memory */
	cbad_mem_init(&outmem, &det->mem.allocator);

	*out = NULL;
	*outlen = 0;
	w_bytes(&w, STATE_MAGIC, 6);
	w_u64(&w, STATE_VERSION, 2);
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
	w_u64(&w, c->mask ? 1 : 0, 1);
	w_u64(&w, det->events, 8);
	w_u64(&w, det->anomalies, 8);
	w_u64(&w, det->drifts, 8);
	w_u64(&w, det->rebuilds, 8);
	w_u64(&w, det->warm ? 1 : 0, 1);
	w_events(&w, &det->baseline);
	w_events(&w, &det->pending);
	w_events(&w, &det->suspects);
	w_u64(&w, (uint64_t) det->cal.count, 4);
	for (int i = 0; i < det->cal.count; i++)
		w_f64(&w, det->cal.ring[(det->cal.head + i) % det->cal.cap]);
	w_u64(&w, (uint64_t) det->flags_count, 4);
	for (int i = 0; i < det->flags_count; i++)
		w_u64(&w, det->flags[(det->flags_head + i) % c->drift_window], 1);
	w_u64(&w, (uint64_t) det->alarm_count, 4);
	for (int i = 0; i < det->alarm_count; i++)
	{
		w_u64(&w, det->alarms[i].index, 8);
		w_u64(&w, det->alarms[i].cluster_start, 8);
		w_f64(&w, det->alarms[i].score);
		w_u64(&w, det->alarms[i].clustered ? 1 : 0, 1);
	}
	w_u64(&w, det->last_alarm, 8);
	w_u64(&w, det->cluster_start, 8);
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

cbad_status
cbad_detector_deserialize(const uint8_t *data, size_t len,
						  const cbad_allocator *allocator, cbad_detector **out)
{
	reader		r = {data, len, false};
	cbad_config c;
	cbad_detector *det = NULL;
	cbad_status status;
	uint64_t	n;
	size_t		pending_cap;

	*out = NULL;
	if (data == NULL || len < 6 + 2 + 8 || memcmp(data, STATE_MAGIC, 6) != 0)
		return CBAD_ECORRUPT;
	if (fnv1a(data, len - 8) != (r.p = data + len - 8, r.left = 8, r_u64(&r, 8)))
		return CBAD_ECORRUPT;
	r.p = data + 6;
	r.left = len - 6 - 8;
	if (r_u64(&r, 2) != STATE_VERSION)
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
	n = r_u64(&r, 1);
	det->warm = n == 1;
	/* each stored event is at most a quarter of baseline_bytes */
	pending_cap = (size_t) c.rebuild_interval * (size_t) (c.baseline_bytes / 4);
	/*
	 * No stream reaches 2^62 events (a century at a billion a second); a
	 * forged counter near 2^64 would wrap around and make the next state
	 * unreadable.
	 */
	if (r.failed || n > 1 || det->events > CBAD_MAX_EVENTS ||
		det->anomalies > det->events || det->drifts > det->events)
		goto corrupt;
	if ((status = r_events(&r, &det->mem, &det->baseline, (size_t) c.baseline_bytes)) != CBAD_OK ||
		(status = r_events(&r, &det->mem, &det->pending, pending_cap)) != CBAD_OK ||
		(status = r_events(&r, &det->mem, &det->suspects, (size_t) c.baseline_bytes)) != CBAD_OK)
	{
		cbad_detector_free(det);
		return status;
	}

	n = r_u64(&r, 4);
	if (r.failed || n > (uint64_t) c.calibration_size)
		goto corrupt;
	for (uint64_t i = 0; i < n; i++)
	{
		double		s = r_f64(&r);

		/*
		 * Scores are ratios of compressed sizes: never subnormal.  A forged
		 * one would make score = ncd / median infinite.
		 */
		if (r.failed || !isfinite(s) || s < 0 || fpclassify(s) == FP_SUBNORMAL)
			goto corrupt;
		cbad_calibration_add(&det->cal, s);
	}
	n = r_u64(&r, 4);
	if (r.failed || n > (uint64_t) c.drift_window)
		goto corrupt;
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	f = r_u64(&r, 1);

		if (r.failed || f > 1)
			goto corrupt;
		det->flags[det->flags_count++] = (uint8_t) f;
		det->flagged_in_window += (int) f;
	}
	n = r_u64(&r, 4);
	if (r.failed || n > CBAD_ALARM_QUEUE)
		goto corrupt;
	for (uint64_t i = 0; i < n; i++)
	{
		cbad_alarm *a = &det->alarms[i];
		uint64_t	clustered;

		a->index = r_u64(&r, 8);
		a->cluster_start = r_u64(&r, 8);
		a->score = r_f64(&r);
		clustered = r_u64(&r, 1);
		if (r.failed || clustered > 1 || !isfinite(a->score) || a->score < 0 ||
			fpclassify(a->score) == FP_SUBNORMAL ||
			a->index > det->events || a->cluster_start > a->index ||
			(i > 0 && a->index <= det->alarms[i - 1].index))
			goto corrupt;
		a->clustered = clustered == 1;
	}
	det->alarm_count = (int) n;
	det->last_alarm = r_u64(&r, 8);
	det->cluster_start = r_u64(&r, 8);
	if (r.failed || r.left != 0 || det->last_alarm > det->events ||
		det->cluster_start > det->last_alarm)
		goto corrupt;

	/* the dictionary is the baseline's bytes as of the last rebuild */
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
