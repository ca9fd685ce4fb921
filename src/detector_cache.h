/*
 * detector_cache.h -- the Kafka worker's in-memory stream detectors (LRU)
 */
#ifndef DRIFTLOCK_DETECTOR_CACHE_H
#define DRIFTLOCK_DETECTOR_CACHE_H

#include "utils/uuid.h"

#include "cbad/cbad.h"

typedef struct DetectorCacheStats
{
	uint64		hits;
	uint64		misses;
	uint64		evictions;
	uint64		evicted_bytes;	/* memory of the evicted detectors */
	int			entries;
	int			changed;		/* entries changed since the last checkpoint */
	Size		bytes;			/* memory of the cached detectors */
} DetectorCacheStats;

extern void detector_cache_init(void);

/*
 * The stream's detector: cached, or loaded from driftlock.stream_state (in
 * the current transaction, with SPI connected) when missing or when its
 * settings differ from cfg.  *fresh tells whether it was created afresh
 * for new settings (the checkpoint must then come soon: a replay would
 * load the old state).  Call detector_cache_used() once det has changed.
 */
extern cbad_detector *detector_cache_get(pg_uuid_t *stream_id, const cbad_config *cfg,
										 bool *fresh);

/* det (from detector_cache_get) has learnt: it needs a save at the next checkpoint. */
extern void detector_cache_used(const pg_uuid_t *stream_id, const cbad_detector *det);

/* Save every detector changed since the last call (SPI connected). */
extern void detector_cache_save_changed(void);

/*
 * Drop least recently used detectors that are saved until at most
 * max_entries of at most max_bytes are left.  Returns false when changed
 * detectors are in the way (a checkpoint must save them first).
 */
extern bool detector_cache_trim(int max_entries, Size max_bytes);

/* Forget every detector (after a failed batch or a rebalance). */
extern void detector_cache_reset(void);

extern void detector_cache_stats(DetectorCacheStats *stats);

#endif
