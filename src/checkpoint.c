/*
 * checkpoint.c -- when and how a Kafka worker saves its detectors
 *
 * Every batch commits its anomalies, dead letters and next offsets, but
 * saving each touched stream's detector with every batch made the worker
 * spend a quarter of its time (and most of its WAL) moving states around
 * once streams were many.  So states are saved at checkpoints: every
 * driftlock.checkpoint_interval or driftlock.checkpoint_messages, whichever
 * comes first, and when the detector cache needs room.  A checkpoint saves
 * every detector changed since the last one and, in the same transaction,
 * records per partition the offset up to which they learnt
 * (kafka_offsets.checkpoint_offset): a consistent cut, as in Flink's
 * aligned checkpoints.  After a crash or a failed batch the partitions are
 * read again from there and the messages up to the committed offsets are
 * replayed (replay.c), which bounds the replay by the checkpoint settings.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "checkpoint.h"
#include "dead_letter_replay.h"
#include "detector_cache.h"
#include "guc.h"
#include "metrics.h"
#include "offset_fence.h"
#include "spi_plans.h"

static TimestampTz last_checkpoint = 0;
static int64 messages_since = 0;
static bool requested = false;

void
checkpoint_count_messages(int n)
{
	messages_since += n;
}

void
checkpoint_request(void)
{
	requested = true;
}

bool
checkpoint_due(void)
{
	DetectorCacheStats cs;

	if (last_checkpoint == 0)
		last_checkpoint = GetCurrentTimestamp();
	if (requested || messages_since >= driftlock_checkpoint_messages)
		return true;
	detector_cache_stats(&cs);
	if (cs.changed == 0)
		return false;
	if (cs.bytes > (Size) driftlock_detector_cache_memory * 1024 ||
		cs.entries > driftlock_detector_cache_size)
		return true;
	return TimestampDifferenceExceeds(last_checkpoint, GetCurrentTimestamp(),
									  driftlock_checkpoint_interval);
}

void
checkpoint_write(const rd_kafka_topic_partition_list_t *positions)
{
	detector_cache_save_changed();
	/* a dead letter replay that committed meanwhile: see dead_letter_replay.c */
	detectors_check_unchanged();
	for (int i = 0; positions != NULL && i < positions->cnt; i++)
		if (positions->elems[i].offset >= 0)
			fence_save_checkpoint(driftlock_kafka_group_id, positions->elems[i].topic,
								  positions->elems[i].partition, positions->elems[i].offset);
}

void
checkpoint_committed(void)
{
	requested = false;
	messages_since = 0;
	last_checkpoint = GetCurrentTimestamp();
	metrics_count_checkpoint();
}

/* The saved states changed under the worker: its detectors are stale. */
static bool stale = false;

static void
checkpoint_body(void *positions)
{
	if ((stale = detectors_invalidated()))
		return;
	fence_begin();
	checkpoint_write(positions);
}

bool
checkpoint_now(const rd_kafka_topic_partition_list_t *positions, const char *why)
{
	DetectorCacheStats cs;

	detector_cache_stats(&cs);
	if (cs.changed == 0 && !requested)
		return true;
	if (!spi_xact_try(checkpoint_body, (void *) positions))
	{
		detector_cache_reset();
		ereport(LOG,
				(errmsg("driftlock could not save its detectors (%s): they will relearn from the last checkpoint", why)));
		return false;
	}
	if (stale)
	{
		detector_cache_reset();
		return false;
	}
	checkpoint_committed();
	return true;
}
