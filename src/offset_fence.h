/*
 * offset_fence.h -- a partition's stored offsets move only from where this
 * worker last saw them
 */
#ifndef DRIFTLOCK_OFFSET_FENCE_H
#define DRIFTLOCK_OFFSET_FENCE_H

/*
 * What driftlock.kafka_offsets held for a partition when it was assigned
 * (or rewound): its next offset, or no row at all (stored = false).
 */
extern void fence_assigned(const char *topic, int32 partition, bool stored, int64 next);

/*
 * The partitions are gone (revoked, consumer closed, fenced): forget them
 * all, and that a transaction was fenced.
 */
extern void fence_forget(void);

/* A transaction of the worker starts: nothing of it is written yet. */
extern void fence_begin(void);

/*
 * In the current transaction: move the partition's next offset to next
 * (first_offset: the first offset this worker processed, the checkpoint
 * offset of a new row) -- only from the next offset this worker last saw.
 * Raises an error, and marks the worker fenced, when another worker or
 * instance has moved it meanwhile.
 */
extern void fence_save_offset(const char *group, const char *topic, int32 partition,
							  int64 next, int64 first_offset);

/*
 * In the current transaction: the saved detectors include the partition's
 * messages before offset.  Same check as fence_save_offset; a partition
 * with no stored row has nothing to mark and is skipped.
 */
extern void fence_save_checkpoint(const char *group, const char *topic, int32 partition,
								  int64 offset);

/*
 * The message at offset was recorded by another worker while this one
 * processed it: raise the fenced error.
 */
extern void fence_message_taken(const char *topic, int32 partition, int64 offset,
								int32 record_index);

/* The transaction committed: what it wrote is now what the worker saw last. */
extern void fence_committed(void);

/* Was a transaction fenced since the partitions were last forgotten? */
extern bool fence_tripped(void);

#endif
