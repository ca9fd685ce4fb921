/*
 * fuzz_detector.c -- the streaming detector (src/cbad) on arbitrary events,
 * with a small configuration taken from the input.
 *
 * Input: 8 bytes of settings (see config_from), then events separated by
 * '\n'.  Baselines, warm-ups and drift windows are small, so warm-up, dictionary
 * rebuilds, alarms, drift and the explanations are all reached within a few
 * dozen events.  Each event is passed in an exactly-sized buffer holding only
 * its first max_event_bytes bytes, as cbad.h allows.  Checks:
 *  - every call succeeds and every verdict keeps its contract: p_value in
 *    (0, 1], is_anomaly == (warm && calibrated && p_value <= alpha),
 *    confidence, finite non-negative score and ncd (== cond_bytes /
 *    alone_bytes), truncated and raw_bytes, counts within the configured
 *    sizes, the event number, a pattern id in 1..2^63-1 with its count and
 *    first event, an incident key exactly on anomalies; the entropy of the
 *    scored bytes in [0, 8];
 *  - an event starting with '#' is learnt as feedback (cbad_detector_learn)
 *    and one starting with '~' observed in learn-only mode: never an
 *    anomaly, and counted like any other event;
 *  - cbad_detector_score just before cbad_detector_observe gives the same
 *    verdict (scoring changes nothing), and the counters move by one event,
 *    one anomaly per flagged event, one drift per drift verdict;
 *  - cbad_explain is NUL-terminated printable ASCII, returns the length it
 *    needed, and a short buffer gets a prefix of the full text;
 *  - before the last (up to) 3 events the state is serialised and restored
 *    (with a counting allocator): the restored detector serialises to the
 *    same bytes, gives bit-identical verdicts and explanations on the
 *    remaining events, ends in the same state, and frees all it allocated.
 * With bit 4 of the fifth byte set, the first half of the events is given to
 * cbad_detector_fit instead.
 */
#include "cbad/cbad.h"
#include "fuzz_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 8
#define MAX_EVENTS 4096
#define TAIL 3

static const int levels[8] = {1, 1, 2, 3, 3, 5, 9, 19};
static const double alphas[8] = {0.5, 0.3, 0.2, 0.1, 0.05, 0.01, 0.001, 1e-6};
static const double drift_thresholds[6] = {0.05, 0.2, 0.4, 0.6, 0.8, 1.0};

static void
config_from(const uint8_t *h, cbad_config *c, int *fit)
{
	int			small;

	cbad_config_default(c);
	c->baseline_size = 8 + h[0] % 25;
	c->calibration_size = 10 + h[1] % 31;
	small = c->baseline_size < c->calibration_size ? c->baseline_size : c->calibration_size;
	c->warmup = 2 + h[2] % (small - 1);
	c->baseline_bytes = 1024 * (1 + h[3] % 4);
	c->rebuild_interval = 1 + (h[3] >> 2) % 8;
	c->zstd_level = levels[h[4] & 7];
	c->mask = (h[4] & 8) != 0;
	*fit = (h[4] & 16) != 0;
	c->alpha = alphas[h[5] & 7];
	c->learn_threshold = c->alpha + (1.0 - c->alpha) * ((h[5] >> 3) & 3) / 3.0;
	if (c->learn_threshold > 1.0)
		c->learn_threshold = 1.0;
	c->drift_window = 10 + h[6] % 20;
	c->drift_threshold = drift_thresholds[h[7] % 6];
	c->max_event_bytes = 64 << ((h[7] / 6) % 8);
}

typedef struct event
{
	uint8_t    *bytes;			/* only the first max_event_bytes */
	size_t		len;			/* the full length */
} event;

static void
check_verdict(const cbad_verdict *v, const cbad_config *c, size_t len)
{
	CHECK(v->raw_bytes == len);
	CHECK(v->truncated == (len > (size_t) c->max_event_bytes));
	CHECK(isfinite(v->p_value) && v->p_value > 0.0 && v->p_value <= 1.0);
	CHECK(isfinite(v->score) && v->score >= 0.0);
	CHECK(isfinite(v->ncd) && v->ncd >= 0.0);
	CHECK(v->alone_bytes >= 1);
	CHECK(v->ncd == (double) v->cond_bytes / (double) v->alone_bytes);
	CHECK(isfinite(v->compression_ratio) && v->compression_ratio > 0.0);
	CHECK(v->baseline_events >= 0 && v->baseline_events <= c->baseline_size);
	CHECK(v->calibration_events >= 0 && v->calibration_events <= c->calibration_size);
	CHECK(v->has_calibration == (v->calibration_events > 0));
	if (v->calibration_events > 0)
		CHECK(isfinite(v->typical_ncd) && v->typical_ncd >= 0.0);
	if (!v->has_dictionary)
		CHECK(v->cond_bytes == v->alone_bytes);
	CHECK(v->is_anomaly == (v->warm && v->has_calibration && !v->learning_only &&
							v->p_value <= c->alpha));
	if (v->has_calibration)
		CHECK(v->confidence == 1.0 - v->p_value);
	else
		CHECK(v->p_value == 1.0 && v->confidence == 0.0);
	CHECK(v->warm == (v->warmup_left == 0));
	CHECK(v->event_number >= 1);
	CHECK(v->pattern_id >= 1 && v->pattern_id <= (uint64_t) INT64_MAX);
	CHECK(v->pattern_count >= 1 && v->pattern_count <= v->event_number);
	CHECK(v->pattern_first_event >= 1 && v->pattern_first_event <= v->event_number);
	CHECK(v->pattern_status <= CBAD_PATTERN_KNOWN);
	CHECK(v->pattern_status != CBAD_PATTERN_NEW || v->pattern_count == 1);
	CHECK((v->incident_key != 0) == v->is_anomaly);
	CHECK(v->incident_key <= (uint64_t) INT64_MAX);
}

#define SAME_BITS(a, b) (memcmp(&(a), &(b), sizeof(a)) == 0)

static bool
same_verdict(const cbad_verdict *a, const cbad_verdict *b, bool with_drift)
{
	return a->is_anomaly == b->is_anomaly && a->warm == b->warm &&
		(!with_drift || a->drift == b->drift) && a->truncated == b->truncated &&
		SAME_BITS(a->score, b->score) && SAME_BITS(a->p_value, b->p_value) &&
		SAME_BITS(a->ncd, b->ncd) && SAME_BITS(a->typical_ncd, b->typical_ncd) &&
		SAME_BITS(a->compression_ratio, b->compression_ratio) &&
		SAME_BITS(a->confidence, b->confidence) &&
		a->raw_bytes == b->raw_bytes && a->cond_bytes == b->cond_bytes &&
		a->alone_bytes == b->alone_bytes && a->baseline_events == b->baseline_events &&
		a->calibration_events == b->calibration_events &&
		a->has_dictionary == b->has_dictionary && a->has_calibration == b->has_calibration &&
		a->event_number == b->event_number && a->pattern_id == b->pattern_id &&
		a->pattern_status == b->pattern_status && a->pattern_count == b->pattern_count &&
		a->pattern_first_event == b->pattern_first_event && a->incident_key == b->incident_key;
}

/* Explain v into buf (sizeof 4096) and check the text's contract. */
static void
explain(const cbad_detector *det, const event *e, const cbad_verdict *v, char *buf)
{
	char		small[32];
	size_t		n = cbad_explain(det, e->bytes, e->len, v, buf, 4096);
	size_t		shown = n < 4095 ? n : 4095;

	CHECK(n > 0);
	CHECK(strlen(buf) == shown);
	for (size_t i = 0; i < shown; i++)
		CHECK(buf[i] >= 0x20 && buf[i] < 0x7f);
	CHECK(cbad_explain(det, e->bytes, e->len, v, small, sizeof(small)) == n);
	CHECK(strlen(small) == (n < sizeof(small) - 1 ? n : sizeof(small) - 1));
	CHECK(memcmp(small, buf, strlen(small)) == 0);
	CHECK(cbad_explain(det, e->bytes, e->len, v, NULL, 0) == n);
}

/*
 * Observe one event, checking the verdict, the counters and the explanation
 * ('~': in learn-only mode).  An event starting with '#' is learnt as
 * feedback instead: *v is then its score before.
 */
static void
observe(cbad_detector *det, const event *e, cbad_verdict *v, char *text)
{
	const cbad_config *c = cbad_detector_config(det);
	size_t		scored = e->len < (size_t) c->max_event_bytes ? e->len : (size_t) c->max_event_bytes;
	bool		learning = e->len > 0 && e->bytes[0] == '~';
	double		entropy = cbad_entropy(e->bytes, scored);
	cbad_verdict pre;
	cbad_stats	before,
				after;

	CHECK(isfinite(entropy) && entropy >= 0.0 && entropy <= 8.0 + 1e-9);
	if (e->len > 0 && e->bytes[0] == '#')
	{
		CHECK(cbad_detector_score(det, e->bytes, e->len, v) == CBAD_OK);
		cbad_detector_stats(det, &before);
		CHECK(cbad_detector_learn(det, e->bytes, e->len) == CBAD_OK);
		cbad_detector_stats(det, &after);
		CHECK(after.events == before.events && after.anomalies == before.anomalies);
		CHECK(after.baseline_events <= c->baseline_size);
		text[0] = '\0';
		return;
	}
	cbad_detector_stats(det, &before);
	CHECK(cbad_detector_score(det, e->bytes, e->len, &pre) == CBAD_OK);
	check_verdict(&pre, c, e->len);
	CHECK(!pre.drift);
	cbad_detector_stats(det, &after);
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);

	CHECK((learning ? cbad_detector_observe_learning(det, e->bytes, e->len, v)
		   : cbad_detector_observe(det, e->bytes, e->len, v)) == CBAD_OK);
	check_verdict(v, c, e->len);
	CHECK(v->learning_only == learning);
	CHECK(v->event_number == before.events + 1);
	if (learning)
	{
		/* scored as observe would, then taken as normal */
		pre.is_anomaly = false;
		pre.incident_key = 0;
	}
	CHECK(same_verdict(&pre, v, false));
	cbad_detector_stats(det, &after);
	CHECK(after.events == before.events + 1);
	CHECK(after.anomalies == before.anomalies + (v->is_anomaly ? 1 : 0));
	CHECK(after.drifts == before.drifts + (v->drift ? 1 : 0));
	CHECK(after.baseline_events <= c->baseline_size);
	CHECK(after.calibration_events <= c->calibration_size);
	explain(det, e, v, text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cbad_config cfg;
	char		err[256];
	int			fit;
	cbad_detector *det = NULL,
			   *det2 = NULL;
	event	   *ev;
	size_t		n = 0,
				first = 0,
				split;
	long		live = 0;
	cbad_allocator counting = {counting_alloc, counting_free, &live};
	uint8_t    *state,
			   *state2;
	size_t		state_len,
				state2_len;
	static char text[4096],
				text2[4096];

	if (size < HEADER)
		return 0;
	config_from(data, &cfg, &fit);
	CHECK(cbad_config_validate(&cfg, err, sizeof(err)) == CBAD_OK);
	CHECK(cbad_detector_create(&cfg, NULL, &det) == CBAD_OK);

	/* the events, each in a buffer of exactly what may be read */
	ev = malloc(sizeof(event) * MAX_EVENTS);
	CHECK(ev != NULL);
	for (size_t p = HEADER; p <= size && n < MAX_EVENTS;)
	{
		const uint8_t *nl = memchr(data + p, '\n', size - p);
		size_t		end = nl ? (size_t) (nl - data) : size;
		size_t		keep;

		ev[n].len = end - p;
		keep = ev[n].len < (size_t) cfg.max_event_bytes ? ev[n].len : (size_t) cfg.max_event_bytes;
		ev[n].bytes = malloc(keep ? keep : 1);
		CHECK(ev[n].bytes != NULL);
		memcpy(ev[n].bytes, data + p, keep);
		n++;
		p = end + 1;
	}

	if (fit && n > 1)
	{
		const uint8_t **ptrs = malloc(sizeof(*ptrs) * (n / 2));
		size_t	   *lens = malloc(sizeof(*lens) * (n / 2));
		cbad_stats	stats;

		CHECK(ptrs && lens);
		first = n / 2;
		for (size_t i = 0; i < first; i++)
		{
			ptrs[i] = ev[i].bytes;
			lens[i] = ev[i].len;
		}
		CHECK(cbad_detector_fit(det, ptrs, lens, first) == CBAD_OK);
		cbad_detector_stats(det, &stats);
		CHECK(stats.events == first);
		CHECK(stats.baseline_events <= cfg.baseline_size);
		CHECK(stats.calibration_events <= cfg.calibration_size);
		free(ptrs);
		free(lens);
	}

	split = n - first > TAIL ? n - TAIL : first;
	for (size_t i = first; i < split; i++)
	{
		cbad_verdict v;

		observe(det, &ev[i], &v, text);
	}

	/* serialise, restore, and go on with both */
	CHECK(cbad_detector_serialize(det, &state, &state_len) == CBAD_OK);
	CHECK(cbad_detector_deserialize(state, state_len, &counting, &det2) == CBAD_OK);
	CHECK(cbad_config_equal(cbad_detector_config(det2), &cfg));
	CHECK(cbad_detector_serialize(det2, &state2, &state2_len) == CBAD_OK);
	CHECK(state2_len == state_len && memcmp(state, state2, state_len) == 0);
	cbad_buffer_free(det, state);
	cbad_buffer_free(det2, state2);

	for (size_t i = split; i < n; i++)
	{
		cbad_verdict v,
					v2;

		observe(det, &ev[i], &v, text);
		observe(det2, &ev[i], &v2, text2);
		CHECK(same_verdict(&v, &v2, true));
		CHECK(strcmp(text, text2) == 0);
	}

	CHECK(cbad_detector_serialize(det, &state, &state_len) == CBAD_OK);
	CHECK(cbad_detector_serialize(det2, &state2, &state2_len) == CBAD_OK);
	CHECK(state2_len == state_len && memcmp(state, state2, state_len) == 0);
	cbad_buffer_free(det, state);
	cbad_buffer_free(det2, state2);

	cbad_detector_free(det);
	cbad_detector_free(det2);
	CHECK(live == 0);
	for (size_t i = 0; i < n; i++)
		free(ev[i].bytes);
	free(ev);
	return 0;
}
