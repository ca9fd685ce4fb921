/*
 * detector_cache.c -- the Kafka worker's in-memory stream detectors (LRU)
 *
 * Loading a detector costs a read of driftlock.stream_state, a
 * decompression and a dictionary build, so each worker keeps the detectors
 * of recent streams in memory, within driftlock.detector_cache_memory (and
 * driftlock.detector_cache_size detectors).  A detector that learnt since
 * the last checkpoint is "changed": the checkpoint saves it, in the
 * transaction that moves the partitions' checkpoint offsets, and only
 * saved detectors are dropped, so the saved states always correspond to
 * the checkpoint offsets (see checkpoint.c).  After a failed batch the
 * cache is dropped whole: its detectors may have learnt from events whose
 * transaction rolled back, and the worker replays from the checkpoint.
 */
#include "postgres.h"

#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "detector_cache.h"
#include "detector_glue.h"
#include "stream_state.h"

typedef struct CacheEntry
{
	pg_uuid_t	stream_id;		/* hash key */
	cbad_detector *det;
	dlist_node	lru;			/* most recently used first */
	Size		bytes;			/* det's memory when last counted */
	bool		changed;
} CacheEntry;

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;
static dlist_head lru = DLIST_STATIC_INIT(lru);
static Size cache_bytes = 0;
static int	changed_count = 0;
static uint64 hits = 0;
static uint64 misses = 0;
static uint64 evictions = 0;
static uint64 evicted_bytes = 0;

static void
create_table(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = cache_cxt;
	cache = hash_create("driftlock detector cache", 1024, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	dlist_init(&lru);
	cache_bytes = 0;
	changed_count = 0;
}

void
detector_cache_init(void)
{
	cache_cxt = AllocSetContextCreate(TopMemoryContext, "driftlock detector cache",
									  ALLOCSET_DEFAULT_SIZES);
	create_table();
}

static Size
memory_of(const cbad_detector *det)
{
	cbad_stats	stats;

	cbad_detector_stats(det, &stats);
	return stats.memory_bytes;
}

static void
remove_entry(CacheEntry *e)
{
	if (e->changed)
		changed_count--;
	cache_bytes -= e->bytes;
	dlist_delete(&e->lru);
	cbad_detector_free(e->det);
	hash_search(cache, &e->stream_id, HASH_REMOVE, NULL);
}

cbad_detector *
detector_cache_get(pg_uuid_t *stream_id, const cbad_config *cfg, bool *fresh)
{
	CacheEntry *e;
	bool		found;

	*fresh = false;
	e = hash_search(cache, stream_id, HASH_FIND, NULL);
	if (e != NULL && !cbad_config_equal(cbad_detector_config(e->det), cfg))
	{
		/* the stream's settings changed: load afresh (stream_load decides) */
		remove_entry(e);
		e = NULL;
	}
	if (e != NULL)
	{
		hits++;
		dlist_move_head(&lru, &e->lru);
		return e->det;
	}

	{
		cbad_detector *det = driftlock_stream_load(stream_id, false, cache_cxt, NULL, fresh);

		e = hash_search(cache, stream_id, HASH_ENTER, &found);
		Assert(!found);
		e->det = det;
		e->bytes = memory_of(det);
		e->changed = false;
		cache_bytes += e->bytes;
		dlist_push_head(&lru, &e->lru);
		misses++;
	}
	return e->det;
}

void
detector_cache_used(const pg_uuid_t *stream_id, const cbad_detector *det)
{
	CacheEntry *e = hash_search(cache, stream_id, HASH_FIND, NULL);
	Size		bytes;

	Assert(e != NULL && e->det == det);
	if (!e->changed)
	{
		e->changed = true;
		changed_count++;
	}
	bytes = memory_of(det);
	cache_bytes += bytes - e->bytes;
	e->bytes = bytes;
}

void
detector_cache_save_changed(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &lru)
	{
		CacheEntry *e = dlist_container(CacheEntry, lru, iter.cur);

		if (!e->changed)
			continue;
		driftlock_stream_save(&e->stream_id, e->det);
		e->changed = false;
		changed_count--;
	}
	Assert(changed_count == 0);
}

bool
detector_cache_trim(int max_entries, Size max_bytes)
{
	long		n = hash_get_num_entries(cache);
	dlist_node *node = dlist_is_empty(&lru) ? NULL : dlist_tail_node(&lru);

	/* from the least recently used on, skipping those not saved yet */
	while (node != NULL && (n > max_entries || cache_bytes > max_bytes))
	{
		dlist_node *prev = dlist_has_prev(&lru, node) ? dlist_prev_node(&lru, node) : NULL;
		CacheEntry *e = dlist_container(CacheEntry, lru, node);

		if (!e->changed)
		{
			evicted_bytes += e->bytes;
			remove_entry(e);
			evictions++;
			n--;
		}
		node = prev;
	}
	return n <= max_entries && cache_bytes <= max_bytes;
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
	stats->evictions = evictions;
	stats->evicted_bytes = evicted_bytes;
	stats->entries = (int) hash_get_num_entries(cache);
	stats->changed = changed_count;
	stats->bytes = cache_bytes;
}
