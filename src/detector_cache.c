/*
 * detector_cache.c -- the Kafka worker's in-memory stream detectors (LRU)
 *
 * Loading a detector costs a read of driftlock.stream_state and a dictionary
 * build, so each worker keeps the detectors of recent streams in memory, at
 * most driftlock.detector_cache_size of them between batches.  A batch
 * marks the detectors it changed; they are saved in the batch's transaction,
 * with the offsets, so the saved state always matches the offsets.  After a
 * failed batch the cache is dropped: its detectors may have learnt from
 * events whose transaction rolled back.
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "detector_cache.h"
#include "detector_glue.h"
#include "stream_state.h"

typedef struct CacheEntry
{
	pg_uuid_t	stream_id;		/* hash key */
	cbad_detector *det;
	uint64		last_used;
	bool		changed;
} CacheEntry;

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;
static uint64 clock_tick = 0;
static uint64 hits = 0;
static uint64 misses = 0;

static void
create_table(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = cache_cxt;
	cache = hash_create("driftlock detector cache", 256, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
detector_cache_init(void)
{
	cache_cxt = AllocSetContextCreate(TopMemoryContext, "driftlock detector cache",
									  ALLOCSET_DEFAULT_SIZES);
	create_table();
}

cbad_detector *
detector_cache_get(pg_uuid_t *stream_id, const cbad_config *cfg)
{
	CacheEntry *e;
	bool		found;

	e = hash_search(cache, stream_id, HASH_ENTER, &found);
	if (found && !cbad_config_equal(cbad_detector_config(e->det), cfg))
	{
		/* the stream's settings changed: load afresh (stream_load decides) */
		cbad_detector_free(e->det);
		found = false;
	}
	if (!found)
	{
		e->det = NULL;
		PG_TRY();
		{
			e->det = driftlock_stream_load(stream_id, false, cache_cxt, NULL);
		}
		PG_CATCH();
		{
			hash_search(cache, stream_id, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
		misses++;
	}
	else
		hits++;
	e->last_used = ++clock_tick;
	e->changed = true;
	return e->det;
}

void
detector_cache_save_changed(void)
{
	HASH_SEQ_STATUS status;
	CacheEntry *e;

	hash_seq_init(&status, cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!e->changed)
			continue;
		driftlock_stream_save(&e->stream_id, e->det);
		e->changed = false;
	}
}

void
detector_cache_trim(int limit)
{
	long		n = hash_get_num_entries(cache);

	while (n > limit)
	{
		HASH_SEQ_STATUS status;
		CacheEntry *e,
				   *oldest = NULL;

		hash_seq_init(&status, cache);
		while ((e = hash_seq_search(&status)) != NULL)
			if (oldest == NULL || e->last_used < oldest->last_used)
				oldest = e;
		cbad_detector_free(oldest->det);
		hash_search(cache, &oldest->stream_id, HASH_REMOVE, NULL);
		n--;
	}
}

void
detector_cache_reset(void)
{
	MemoryContextReset(cache_cxt);
	create_table();
}

void
detector_cache_stats(DetectorCacheStats *stats)
{
	stats->hits = hits;
	stats->misses = misses;
	stats->entries = (int) hash_get_num_entries(cache);
}
