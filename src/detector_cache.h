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
	int			entries;
} DetectorCacheStats;

extern void detector_cache_init(void);

/*
 * The stream's detector: cached, or loaded from driftlock.stream_state (in
 * the current transaction, with SPI connected) when missing or when its
 * settings differ from cfg.  The entry is marked as changed by this batch.
 */
extern cbad_detector *detector_cache_get(pg_uuid_t *stream_id, const cbad_config *cfg);

/* Save every detector changed since the last call (SPI connected). */
extern void detector_cache_save_changed(void);

/* Drop least recently used detectors beyond limit (they are all saved). */
extern void detector_cache_trim(int limit);

/* Forget every detector (after a failed batch or a rebalance). */
extern void detector_cache_reset(void);

extern void detector_cache_stats(DetectorCacheStats *stats);

#endif
