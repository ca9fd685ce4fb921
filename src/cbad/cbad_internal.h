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
 * the last dictionary rebuild, and the recent anomalies kept for drift.
 */
typedef struct cbad_events
{
	cbad_buf	bytes;			/* events back to back, oldest first */
	uint32_t   *lens;			/* lens[i]: length of the i-th oldest event */
	int			count;
	int			cap;			/* capacity of lens */
} cbad_events;

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

bool		cbad_calibration_init(cbad_mem *mem, cbad_calibration *cal, int cap);
void		cbad_calibration_release(cbad_mem *mem, cbad_calibration *cal);
void		cbad_calibration_clear(cbad_calibration *cal);
void		cbad_calibration_add(cbad_calibration *cal, double score);
/* (1 + #{scores >= s}) / (1 + count) */
double		cbad_calibration_pvalue(const cbad_calibration *cal, double s);
/* Scores strictly above this get p <= alpha (+inf when none can). */
double		cbad_calibration_threshold(const cbad_calibration *cal, double alpha);
double		cbad_calibration_median(const cbad_calibration *cal);

/* Highest zstd_level the settings allow (cbad_config.c). */
#define CBAD_MAX_ZSTD_LEVEL 19
#define CBAD_MAX_EVENTS (UINT64_C(1) << 62)	/* a saved state holds fewer events */

/* Per-thread compression scratch shared by all detectors. */
typedef struct cbad_scratch
{
	ZSTD_CCtx  *cctx;
	uint8_t    *masked;
	size_t		masked_cap;
	uint8_t    *out;
	size_t		out_cap;
	size_t		empty_cost[CBAD_MAX_ZSTD_LEVEL + 1];	/* by level; 0 = not yet known */
} cbad_scratch;

cbad_scratch *cbad_scratch_get(size_t event_len);

/* Compressed size of src alone, at level, or 0 on error. */
size_t		cbad_compressed_size(cbad_scratch *s, const uint8_t *src, size_t len, int level);

/* Compressed size of src given cdict, or 0 on error. */
size_t		cbad_compressed_size_dict(cbad_scratch *s, const ZSTD_CDict *cdict,
									  const uint8_t *src, size_t len);

/* Compression parameters for a baseline dictionary of dict_len bytes. */
ZSTD_compressionParameters cbad_dict_cparams(int level, size_t dict_len);

/*
 * An alarm's score waits ALARM_GAP events before it joins the calibration,
 * to learn whether it was isolated or part of a cluster (cbad_detector.c).
 */
#define CBAD_ALARM_GAP 20
#define CBAD_ALARM_QUEUE 32		/* > CBAD_ALARM_GAP: alarms pending at once */

typedef struct cbad_alarm
{
	uint64_t	index;			/* event number of the alarm */
	uint64_t	cluster_start;	/* event number of its cluster's first alarm */
	double		score;			/* its ncd */
	bool		clustered;		/* another alarm within CBAD_ALARM_GAP events */
} cbad_alarm;

/* The detector. */
struct cbad_detector
{
	cbad_mem	mem;
	cbad_config cfg;

	/* dictionary: the baseline as of the last rebuild, and what came since */
	cbad_events baseline;		/* the CDict refers to baseline.bytes */
	cbad_events pending;		/* accepted since the last rebuild */
	ZSTD_CDict *cdict;			/* NULL while the baseline is empty */
	size_t		dict_empty_cost;	/* frame overhead with the dictionary */
	size_t		empty_cost;		/* frame overhead without */

	cbad_calibration cal;
	cbad_alarm	alarms[CBAD_ALARM_QUEUE];	/* pending, oldest first */
	int			alarm_count;
	uint64_t	last_alarm;		/* event number of the latest alarm, 0 = none */
	uint64_t	cluster_start;	/* first alarm of the latest cluster */

	/* drift: which of the last drift_window warm events were flagged */
	uint8_t    *flags;
	int			flags_head;
	int			flags_count;
	int			flagged_in_window;
	cbad_events suspects;		/* recent anomalies, newest last */

	uint64_t	events;
	uint64_t	anomalies;
	uint64_t	drifts;
	uint64_t	rebuilds;
	bool		warm;
};

/* Helpers of cbad_detector.c used by cbad_state.c. */
cbad_status cbad_detector_alloc(const cbad_config *cfg, const cbad_allocator *allocator,
								cbad_detector **out);
cbad_status cbad_detector_rebuild(cbad_detector *det);
cbad_status cbad_detector_build_dict(cbad_detector *det);

/* Deterministic PRNG (splitmix64) for the permutation test. */
uint64_t	cbad_rand_next(uint64_t *state);

#endif							/* CBAD_INTERNAL_H */
