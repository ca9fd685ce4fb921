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

/* Shannon entropy in bits per byte (0 for an empty input). */
double		cbad_entropy(const uint8_t *data, size_t len);

/* ------------------------------------------------------------------------
 * The streaming detector
 * ------------------------------------------------------------------------ */
typedef struct cbad_detector cbad_detector;

/* The numbers behind one verdict; the explanation is built on request. */
typedef struct cbad_verdict
{
	bool		is_anomaly;		/* warm and p_value <= alpha */
	bool		warm;			/* baseline and calibration are filled */
	bool		drift;			/* this event completed a lasting shift; the
								 * baseline was rebuilt from recent events */
	bool		truncated;		/* only the first max_event_bytes were scored */
	double		score;			/* conditional ratio / typical ratio (higher =
								 * more anomalous) */
	double		p_value;		/* conformal p-value, in (0, 1] */
	double		ncd;			/* conditional compression distance C(x|B)/C(x) */
	double		typical_ncd;	/* median ncd of the calibration events */
	double		compression_ratio;	/* raw bytes / bytes compressed given
									 * baseline */
	double		entropy;		/* bits per byte of the payload */
	double		confidence;		/* 1 - p_value when warm, else 0 */
	size_t		raw_bytes;		/* payload length */
	size_t		cond_bytes;		/* compressed size given the baseline, net of
								 * frame overhead */
	size_t		alone_bytes;	/* compressed size alone, net of frame overhead */
	int			baseline_events;	/* events in the baseline used */
	int			calibration_events; /* scores behind the p-value */
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
