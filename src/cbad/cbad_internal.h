/*
 * cbad_internal.h -- shared definitions of the detector core's files
 *
 * Not part of the public API (cbad.h).
 */
#ifndef CBAD_INTERNAL_H
#define CBAD_INTERNAL_H

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "cbad.h"

/* Allocation accounting: every block carries its size in a header. */
typedef struct cbad_mem
{
	cbad_allocator allocator;
	size_t		used;
} cbad_mem;

void		cbad_mem_init(cbad_mem *mem, const cbad_allocator *allocator);
void	   *cbad_mem_alloc(cbad_mem *mem, size_t size);
void		cbad_mem_free(cbad_mem *mem, void *ptr);
ZSTD_customMem cbad_mem_zstd(cbad_mem *mem);

/* A growable byte buffer. */
typedef struct cbad_buf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} cbad_buf;

bool		cbad_buf_reserve(cbad_mem *mem, cbad_buf *buf, size_t cap);
void		cbad_buf_release(cbad_mem *mem, cbad_buf *buf);

/*
 * A FIFO of variable-length events stored back to back in one buffer, with
 * their lengths in a ring.  Used for the baseline, the events accepted since
 * the last dictionary rebuild, and the recent anomalies kept for drift.  The
 * first `start` bytes of the buffer are not events but the owner's: the
 * baseline keeps its dictionary's exemplars there (cbad_detector.c).
 */
typedef struct cbad_events
{
	cbad_buf	bytes;			/* [start] owner's bytes, then the events
								 * back to back, oldest first */
	size_t		start;
	uint32_t   *lens;			/* lens[i]: length of the i-th oldest event */
	int			count;
	int			cap;			/* capacity of lens */
} cbad_events;

/* The events' bytes and their total length. */
static inline const uint8_t *
cbad_events_data(const cbad_events *ev)
{
	return ev->bytes.data + ev->start;
}

static inline size_t
cbad_events_size(const cbad_events *ev)
{
	return ev->bytes.len - ev->start;
}

bool		cbad_events_init(cbad_mem *mem, cbad_events *ev, int cap);
void		cbad_events_release(cbad_mem *mem, cbad_events *ev);
void		cbad_events_clear(cbad_events *ev);
bool		cbad_events_push(cbad_mem *mem, cbad_events *ev, const uint8_t *data, size_t len);
void		cbad_events_drop_oldest(cbad_events *ev, int n);

/*
 * Calibration: the last `cap` normal scores, in arrival order (a ring) and
 * sorted (for p-values and quantiles in O(log n)).
 */
typedef struct cbad_calibration
{
	double	   *ring;
	double	   *sorted;
	int			count;
	int			head;			/* index of the oldest entry */
	int			cap;
} cbad_calibration;

/*
 * The tail of the calibration's scores, modelled (cbad_calibration.c):
 * beyond t, the calibration's 90th percentile, p-values fall off
 * exponentially at a rate set by the spacing of its median and t.  A function
 * of the calibration (refitted whenever it changes, never stored).
 */
#define CBAD_TAIL_SHARE 0.1			/* share of the calibration above t */
#define CBAD_TAIL_MIN 10			/* scores needed for a tail, at least */

typedef struct cbad_tail
{
	bool		valid;			/* false: p-values are conformal only */
	double		t;				/* where the tail starts */
	double		rate;			/* exponential rate of the tail beyond t */
	double		mass;			/* share of recent scores above t */
	double		z;				/* scores above z have p <= alpha */
	double		flagged;		/* share of recent judged events flagged */
} cbad_tail;

bool		cbad_calibration_init(cbad_mem *mem, cbad_calibration *cal, int cap);
void		cbad_calibration_release(cbad_mem *mem, cbad_calibration *cal);
void		cbad_calibration_clear(cbad_calibration *cal);
void		cbad_calibration_add(cbad_calibration *cal, double score);
/* (1 + #{scores >= s}) / (1 + count) */
double		cbad_calibration_pvalue(const cbad_calibration *cal, double s);
/* Scores strictly above this get p <= alpha (+inf when none can). */
double		cbad_calibration_threshold(const cbad_calibration *cal, double alpha);
double		cbad_calibration_median(const cbad_calibration *cal);
/*
 * Fit the tail of the calibration, given the share of recent judged events
 * that were flagged and so are not in it (alpha only sets tail->z).
 */
void		cbad_tail_fit(cbad_tail *tail, const cbad_calibration *cal, double alpha,
						  double flagged);
/* p-value of s: from the tail model above tail->t, conformal below. */
double		cbad_tail_pvalue(const cbad_tail *tail, const cbad_calibration *cal, double s);

/*
 * Patterns (cbad_pattern.c): the table of the patterns a detector has seen,
 * bounded (the least recently seen is forgotten first), with an index by id.
 */
#define CBAD_PATTERN_TOKENS 12		/* tokens that make a pattern */
#define CBAD_PATTERN_TOKEN_BYTES 32	/* of each token, at most */
#define CBAD_EXEMPLAR_BYTES 512		/* of an exemplar, at most */

typedef struct cbad_pattern_entry
{
	uint64_t	id;
	uint64_t	first_event;	/* event number of its first occurrence */
	uint64_t	last_event;		/* and of its latest */
	uint64_t	count;			/* occurrences */
	uint64_t	anomalies;		/* occurrences flagged */
	uint64_t	learned_seq;	/* accepted-event number of its latest learnt
								 * event, 0 = never learnt */
	double		last_p;			/* p-value of its latest occurrence */
	bool		known;			/* an event of it was learnt as normal */
	uint8_t    *exemplar;		/* its latest learnt event (masked), or NULL */
	uint32_t	exemplar_len;
} cbad_pattern_entry;

typedef struct cbad_patterns
{
	cbad_pattern_entry *entries;
	int32_t    *index;			/* open addressing: entry number or -1 */
	int			count;
	int			cap;
	int			index_size;		/* a power of two >= 2 * cap */
	size_t		exemplar_bytes; /* held by all exemplars */
} cbad_patterns;

/* Patterns a detector remembers, and the bytes all exemplars may take. */
#define CBAD_PATTERNS 512

static inline size_t
cbad_exemplar_budget(const cbad_config *cfg)
{
	return (size_t) cfg->baseline_bytes / 4;
}

bool		cbad_patterns_init(cbad_mem *mem, cbad_patterns *t, int cap);
void		cbad_patterns_clear(cbad_mem *mem, cbad_patterns *t);
void		cbad_patterns_release(cbad_mem *mem, cbad_patterns *t);
cbad_pattern_entry *cbad_patterns_find(const cbad_patterns *t, uint64_t id);
cbad_pattern_entry *cbad_patterns_add(cbad_mem *mem, cbad_patterns *t, uint64_t id,
									  uint64_t event);
bool		cbad_patterns_keep_exemplar(cbad_mem *mem, cbad_patterns *t,
										cbad_pattern_entry *e, const uint8_t *event,
										size_t len, size_t budget, uint64_t now);

/* Highest zstd_level the settings allow (cbad_config.c). */
#define CBAD_MAX_ZSTD_LEVEL 19
#define CBAD_MAX_EVENTS (UINT64_C(1) << 62)	/* a saved state holds fewer events */

/* Per-thread compression scratch shared by all detectors. */
typedef struct cbad_scratch
{
	ZSTD_CCtx  *cctx;			/* compressions with a dictionary or prefix */
	ZSTD_CCtx  *alone;			/* compressions without: kept apart, so its
								 * tables are reused instead of reset
								 * between the two kinds */
	uint8_t    *masked;
	size_t		masked_cap;
	uint8_t    *out;
	size_t		out_cap;
	size_t		empty_cost[CBAD_MAX_ZSTD_LEVEL + 1];	/* by level; 0 = not yet known */
	uint64_t	pattern_id;		/* of the event scored last (0: none) */
	char		pattern[CBAD_PATTERN_TEXT_MAX]; /* and its text */
} cbad_scratch;

cbad_scratch *cbad_scratch_get(size_t event_len);

/* The zstd contexts of the saved states' envelope (NULL on out-of-memory). */
ZSTD_CCtx  *cbad_envelope_cctx(void);
ZSTD_DCtx  *cbad_envelope_dctx(void);

/* Compressed size of src alone, at level, or 0 on error. */
size_t		cbad_compressed_size(cbad_scratch *s, const uint8_t *src, size_t len, int level);

/* Compressed size of src given cdict, or 0 on error. */
size_t		cbad_compressed_size_dict(cbad_scratch *s, const ZSTD_CDict *cdict,
									  const uint8_t *src, size_t len);

/* Compressed size of src with prefix as a one-off dictionary, or 0 on error. */
size_t		cbad_compressed_size_prefix(cbad_scratch *s, const uint8_t *prefix, size_t prefix_len,
										const uint8_t *src, size_t len, int level);

/* Compression parameters for a baseline dictionary of dict_len bytes. */
ZSTD_compressionParameters cbad_dict_cparams(int level, size_t dict_len);

/* The detector. */
struct cbad_detector
{
	cbad_mem	mem;
	cbad_config cfg;

	/*
	 * The dictionary is the baseline's whole buffer: the exemplars of known
	 * patterns the baseline no longer holds (its first baseline.start
	 * bytes), then the baseline's events as of the last rebuild.  The CDict
	 * refers to it.
	 */
	cbad_events baseline;		/* recent learnt events, oldest first */
	cbad_events pending;		/* learnt since the last rebuild */
	uint64_t   *baseline_ids;	/* the pattern of each baseline event */
	uint64_t   *pending_ids;	/* and of each pending one (not stored:
								 * computed from the bytes on restore) */
	ZSTD_CDict *cdict;			/* NULL while the dictionary is empty */
	size_t		dict_empty_cost;	/* frame overhead with the dictionary */
	uint64_t	accepted;		/* events ever learnt (pushed to pending) */

	cbad_calibration cal;		/* scores of recent normal events */
	cbad_tail	tail;			/* their tail, fitted after every change */
	double		flag_rate;		/* share of recent judged events flagged,
								 * decayed over calibration_size events */
	cbad_patterns patterns;

	/* drift (cbad_drift.c): which of the last drift_window warm events were flagged */
	uint8_t    *flags;
	int			flags_head;
	int			flags_count;
	int			flagged_in_window;
	uint32_t	recent_flags;	/* the last few as bits, newest lowest */
	cbad_events suspects;		/* anomalies since the last drift, newest last */

	uint64_t	events;
	uint64_t	anomalies;
	uint64_t	drifts;
	uint64_t	rebuilds;
	uint64_t	warm_until;		/* event number at which warm-up ends */
	bool		warm;
};

/* Helpers of cbad_detector.c used by cbad_state.c. */
cbad_status cbad_detector_alloc(const cbad_config *cfg, const cbad_allocator *allocator,
								cbad_detector **out);
cbad_status cbad_detector_rebuild(cbad_detector *det);
cbad_status cbad_detector_build_dict(cbad_detector *det);
void		cbad_detector_index_stored(cbad_detector *det);

/*
 * cbad_explain.c: the next token (3+ bytes, from *pos on) of the scored
 * bytes that occurs nowhere in the dictionary or the pending events; false
 * when there is none.
 */
bool		cbad_next_new_token(const cbad_detector *det, const uint8_t *masked, size_t len,
								size_t *pos, size_t *start, size_t *tok_len);

/* cbad_drift.c */
void		cbad_drift_clear(cbad_detector *det);
void		cbad_drift_push(cbad_detector *det, bool flagged);
/* Is it drift now, after the event just pushed (flagged or not)? */
cbad_status cbad_drift_check(cbad_detector *det, bool flagged, cbad_drift_kind *drift);

/* Deterministic PRNG (splitmix64) for the permutation test. */
uint64_t	cbad_rand_next(uint64_t *state);

#endif							/* CBAD_INTERNAL_H */
