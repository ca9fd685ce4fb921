/*
 * cbad.h -- compression-based anomaly detection (CBAD) over zstd
 *
 * The detector core of driftlock.  Plain C99 with no PostgreSQL headers, so
 * it can be unit-tested, benchmarked and fuzzed on its own; the extension's
 * glue (src/detector_*.c) wraps it.
 *
 * Per stream, a cbad_detector keeps a baseline of recent events it judged
 * normal and scores each new event by how much it costs to compress given
 * that baseline (a zstd dictionary) compared with compressing it alone.  The
 * score is turned into a conformal p-value against the scores of recent
 * normal events, so that on a normal stream about alpha of the events get
 * p <= alpha.  See docs/detector.md for the full method.
 *
 * Every function here is deterministic: the same configuration and the same
 * events in the same order give bit-identical results.
 *
 * Memory: all allocations go through the cbad_allocator given at creation
 * (zstd's included), so a host can account for and reclaim them.
 */
#ifndef CBAD_H
#define CBAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes; 0 is success. */
typedef enum cbad_status
{
	CBAD_OK = 0,
	CBAD_ENOMEM = 1,			/* an allocation failed */
	CBAD_EINVAL = 2,			/* an argument or setting is out of range */
	CBAD_ECORRUPT = 3,			/* serialised state is damaged or foreign */
	CBAD_EZSTD = 4				/* zstd reported an error */
} cbad_status;

const char *cbad_status_message(cbad_status status);

/* Allocator used for every allocation of a detector.  NULL means malloc. */
typedef struct cbad_allocator
{
	void	   *(*alloc) (void *opaque, size_t size);	/* NULL on failure */
	void		(*free) (void *opaque, void *ptr);
	void	   *opaque;
} cbad_allocator;

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------ */
typedef struct cbad_config
{
	int			baseline_size;	/* events kept in the baseline */
	int			baseline_bytes; /* bytes kept in the baseline (dictionary) */
	int			warmup;			/* events before verdicts are warm */
	int			calibration_size;	/* normal scores kept for p-values */
	double		alpha;			/* flag when p_value <= alpha */
	double		learn_threshold;	/* learn only events with p_value above it */
	int			rebuild_interval;	/* accepted events between dictionary
									 * rebuilds */
	int			zstd_level;		/* zstd compression level */
	bool		mask;			/* mask volatile tokens before compressing */
	int			drift_window;	/* events looked at to detect a lasting shift */
	double		drift_threshold;	/* share of drift_window flagged that means
									 * drift */
	double		drift_novelty;	/* a storm of anomalies each at least this
								 * new relative to the ones before is drift */
	int			max_event_bytes;	/* longer events are scored on their first
									 * max_event_bytes bytes */
} cbad_config;

typedef enum cbad_key_type
{
	CBAD_KEY_INT,
	CBAD_KEY_REAL,
	CBAD_KEY_BOOL
} cbad_key_type;

/* One documented setting, for validation and for error hints. */
typedef struct cbad_key_info
{
	const char *name;
	cbad_key_type type;
	double		min;			/* inclusive bounds for numbers */
	double		max;
	const char *description;
} cbad_key_info;

/* The defaults (documented in docs/detector.md). */
void		cbad_config_default(cbad_config *cfg);

/* The table of settings, terminated by an entry whose name is NULL. */
const cbad_key_info *cbad_config_keys(void);

/* The setting called name, or NULL when there is none. */
const cbad_key_info *cbad_config_key(const char *name);

/*
 * Set one setting.  Numbers must be in range (and whole for integers).  On
 * failure returns CBAD_EINVAL and writes a sentence into err.
 */
cbad_status cbad_config_set_number(cbad_config *cfg, const cbad_key_info *key,
								   double value, char *err, size_t errlen);
cbad_status cbad_config_set_bool(cbad_config *cfg, const cbad_key_info *key,
								 bool value, char *err, size_t errlen);

/* Cross-setting checks (e.g. warmup within baseline_size). */
cbad_status cbad_config_validate(const cbad_config *cfg, char *err, size_t errlen);

bool		cbad_config_equal(const cbad_config *a, const cbad_config *b);

/* ------------------------------------------------------------------------
 * Building blocks, exposed for tests and the SQL functions
 * ------------------------------------------------------------------------ */

/*
 * Mask volatile tokens: digits of numbers with 3 or more digits and of
 * timestamps/dates/IP addresses become '0'; hex digits of UUIDs and other
 * dash-joined hex ids (groups of 4+), 0x-numbers and long hex ids become 'x'.  Shape and length are kept (out has len bytes),
 * so short ids and small counts, which often carry the signal, survive.
 */
void		cbad_mask(const uint8_t *in, size_t len, uint8_t *out);

/*
 * The pattern of some bytes: their first tokens with digit runs, hex ids and
 * names of months and days masked (see cbad_pattern.c).  Writes the
 * pattern's text, ASCII and NUL-terminated, into text (truncated to
 * textcap - 1 bytes; textcap may be 0) and returns its id, a hash of the
 * text in 1..2^63-1.  A detector takes the pattern of the bytes it scores
 * (masked when its setting mask is on): see cbad_pattern_for().
 */
#define CBAD_PATTERN_TEXT_MAX 400	/* a pattern's text is never longer */
uint64_t	cbad_pattern_of(const uint8_t *event, size_t len, char *text, size_t textcap);

/*
 * Shannon entropy in bits per byte (0 for an empty input).  Verdicts do not
 * carry it (most are never shown): hosts compute it for the scored bytes of
 * the events they report, the first max_event_bytes.
 */
double		cbad_entropy(const uint8_t *data, size_t len);

/* ------------------------------------------------------------------------
 * The streaming detector
 * ------------------------------------------------------------------------ */
typedef struct cbad_detector cbad_detector;

/* Why an event ended a drift (cbad_drift.c). */
typedef enum cbad_drift_kind
{
	CBAD_DRIFT_NONE = 0,
	CBAD_DRIFT_SUSTAINED = 1,	/* drift_threshold of drift_window flagged */
	CBAD_DRIFT_STORM = 2		/* a storm of anomalies each new to the last */
} cbad_drift_kind;

/* Where an event's pattern stands in its stream, before this event. */
typedef enum cbad_pattern_status
{
	CBAD_PATTERN_NEW = 0,		/* not seen before (or long forgotten) */
	CBAD_PATTERN_REPEAT = 1,	/* seen before, never learnt as normal */
	CBAD_PATTERN_KNOWN = 2		/* learnt as normal before */
} cbad_pattern_status;

const char *cbad_pattern_status_name(cbad_pattern_status status);

/* The numbers behind one verdict; the explanation is built on request. */
typedef struct cbad_verdict
{
	bool		is_anomaly;		/* warm and p_value <= alpha */
	bool		warm;			/* judged: false while warming up (at the
								 * start, and again after a drift) */
	bool		learning_only;	/* observed in learn-only mode: learnt, not
								 * judged */
	cbad_drift_kind drift;		/* this event completed a lasting shift: the
								 * recent anomalies were learnt and the
								 * detector warms up again (0: it did not) */
	bool		truncated;		/* only the first max_event_bytes were scored */
	bool		has_dictionary; /* there was a baseline to score against:
								 * else ncd, compression_ratio and score
								 * measure nothing (1) */
	bool		has_calibration;	/* there were scores to calibrate against:
									 * else p_value, confidence and score are
									 * not computed (1, 0 and ncd) */
	double		score;			/* conditional ratio / typical ratio (higher =
								 * more anomalous) */
	double		p_value;		/* in (0, 1]; from the calibration's tail
								 * model above its 90th percentile */
	double		ncd;			/* conditional compression distance C(x|D)/C(x) */
	double		typical_ncd;	/* median ncd of the calibration events */
	double		compression_ratio;	/* raw bytes / bytes compressed given
									 * the dictionary */
	double		confidence;		/* 1 - p_value (0 without calibration) */
	size_t		raw_bytes;		/* payload length */
	size_t		cond_bytes;		/* compressed size given the dictionary, net
								 * of frame overhead */
	size_t		alone_bytes;	/* compressed size alone, net of frame overhead */
	int			baseline_events;	/* events in the baseline used */
	int			calibration_events; /* scores behind the p-value */
	uint64_t	warmup_left;	/* events until verdicts are judged (0 when
								 * warm) */
	uint64_t	event_number;	/* of this event in its stream, from 1 */
	uint64_t	pattern_id;		/* cbad_pattern_of() of the scored bytes */
	cbad_pattern_status pattern_status;
	uint64_t	pattern_count;	/* occurrences of the pattern so far, this
								 * one included */
	uint64_t	pattern_first_event;	/* event number of its first occurrence */
	uint64_t	incident_key;	/* anomalies only (else 0): what groups them
								 * into incidents -- the pattern, or for a
								 * known pattern the pattern and the first
								 * token new to the stream (1..2^63-1) */
} cbad_verdict;

cbad_status cbad_detector_create(const cbad_config *cfg,
								 const cbad_allocator *allocator,
								 cbad_detector **out);
void		cbad_detector_free(cbad_detector *det);

const cbad_config *cbad_detector_config(const cbad_detector *det);

/*
 * In the functions below that take an event, len is the event's full length
 * but only its first max_event_bytes bytes are ever read: a caller may pass a
 * buffer holding just that prefix.
 *
 * Score one event and learn from it: a normal event joins the baseline and
 * the calibration; an anomaly is kept out of both.  A lasting run of
 * anomalies (drift_threshold of the last drift_window events) is treated as
 * drift: the recent events become the baseline and verdict->drift is set.
 */
cbad_status cbad_detector_observe(cbad_detector *det, const uint8_t *event,
								  size_t len, cbad_verdict *verdict);

/*
 * The pattern of an event as a detector with these settings sees it (its
 * verdicts' pattern_id: the first max_event_bytes, masked when mask is on),
 * with its text written into text as by cbad_pattern_of().
 */
cbad_status cbad_pattern_for(const cbad_config *cfg, const uint8_t *event, size_t len,
							 uint64_t *id, char *text, size_t textcap);

/*
 * Observe an event in learn-only mode: score it as observe would (the
 * verdict is never an anomaly), then learn it as normal whatever its score.
 * For streams warming up on history, or a noisy rollout.
 */
cbad_status cbad_detector_observe_learning(cbad_detector *det, const uint8_t *event,
										   size_t len, cbad_verdict *verdict);

/*
 * Learn an event as normal now (user feedback: "this anomaly was normal"):
 * it joins the baseline at once and its pattern is known from now on.  It
 * is not counted as an event of the stream.
 */
cbad_status cbad_detector_learn(cbad_detector *det, const uint8_t *event, size_t len);

/*
 * The text of pattern_id when it is the pattern of the event this thread
 * scored last (that verdict's pattern_id), else NULL: what
 * cbad_pattern_for() would write, without computing it again.  Valid
 * until the thread scores another event.
 */
const char *cbad_pattern_text(uint64_t pattern_id);

/* Score one event against the current state without changing it. */
cbad_status cbad_detector_score(cbad_detector *det, const uint8_t *event,
								size_t len, cbad_verdict *verdict);

/*
 * Replace the state with a baseline given as a list of normal events (the
 * last baseline_size of them are kept) and a calibration bootstrapped from
 * them.  Warm when at least cfg->warmup events were given.  The counters
 * start again: n events, no anomalies, no drifts.
 */
cbad_status cbad_detector_fit(cbad_detector *det, const uint8_t *const *events,
							  const size_t *lens, size_t n);

/* Counters since creation (kept across serialisation). */
typedef struct cbad_stats
{
	uint64_t	events;
	uint64_t	anomalies;
	uint64_t	drifts;
	uint64_t	rebuilds;
	int			baseline_events;
	int			calibration_events;
	size_t		memory_bytes;	/* allocated by this detector, zstd included */
} cbad_stats;

void		cbad_detector_stats(const cbad_detector *det, cbad_stats *stats);

/*
 * Write a deterministic, plain-English paragraph explaining verdict (which
 * must come from the last call on det with this event) into buf, always
 * NUL-terminated and valid ASCII.  Returns the length it needed (like
 * snprintf).
 */
size_t		cbad_explain(const cbad_detector *det, const uint8_t *event,
						 size_t len, const cbad_verdict *verdict,
						 char *buf, size_t buflen);

/* ------------------------------------------------------------------------
 * Persistence
 * ------------------------------------------------------------------------ */

/* Serialise the state (config, baseline, calibration, drift window, counters). */
cbad_status cbad_detector_serialize(const cbad_detector *det,
									uint8_t **out, size_t *outlen);

/*
 * Restore a detector from cbad_detector_serialize's output.  Damaged or
 * truncated input gives CBAD_ECORRUPT, never a crash.  The restored detector
 * continues exactly as the original would have.
 */
cbad_status cbad_detector_deserialize(const uint8_t *data, size_t len,
									  const cbad_allocator *allocator,
									  cbad_detector **out);

/* Free a buffer that cbad_detector_serialize returned for det. */
void		cbad_buffer_free(const cbad_detector *det, void *ptr);

/* ------------------------------------------------------------------------
 * Window versus baseline (batch drift test)
 * ------------------------------------------------------------------------ */
typedef struct cbad_compare_result
{
	double		ncd;			/* NCD(B, W) of the joined events */
	double		novelty;		/* (C(BW) - C(B)) / C(W): what B leaves
								 * unexplained in W, the test statistic */
	double		p_value;		/* permutation-test p-value of the novelty */
	double		baseline_ratio; /* compression ratio of B */
	double		window_ratio;	/* compression ratio of W */
	double		baseline_entropy;
	double		window_entropy;
	int			permutations;
} cbad_compare_result;

/*
 * NCD and novelty of the window's events against the baseline's, and the
 * share of random re-splits of the pooled events (seeded, so deterministic)
 * whose novelty is at least as large.  Both sets must be non-empty.
 */
cbad_status cbad_compare(const uint8_t *const *base, const size_t *base_lens, size_t nbase,
						 const uint8_t *const *win, const size_t *win_lens, size_t nwin,
						 int permutations, uint64_t seed, bool mask, int zstd_level,
						 const cbad_allocator *allocator, cbad_compare_result *result);

#ifdef __cplusplus
}
#endif

#endif							/* CBAD_H */
