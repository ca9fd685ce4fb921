/*
 * replay.h -- messages read again after a crash or a failed batch, up to
 * where the results were committed
 */
#ifndef DRIFTLOCK_REPLAY_H
#define DRIFTLOCK_REPLAY_H

#include "guc.h"

typedef enum ReplayKind
{
	REPLAY_LIVE,				/* past the committed offset: process it */
	REPLAY_LEARN,				/* committed already: only the detector learns it */
	REPLAY_SKIP					/* committed as a dead letter: nothing to do */
} ReplayKind;

/*
 * The partition will be read from from, and its results are committed up
 * to until: what comes before until is replayed (SPI connected, to read
 * the dead letters of the range).  Replaces the partition's earlier plan.
 */
extern void replay_plan(const char *topic, int32 partition, int64 from, int64 until,
						const MessageFormat *format);

/*
 * How the replayed messages of the partition were read when they were
 * processed (format: the stored offsets' row), NULL when it is not being
 * replayed.  Replays read them so again, whatever the settings say now.
 */
extern const MessageFormat *replay_format(const char *topic, int32 partition);

/* What to do with the message at offset of the partition. */
extern ReplayKind replay_kind(const char *topic, int32 partition, int64 offset);

/*
 * Whether log record record_index of the message at offset, which
 * replay_kind() said to learn, was set aside as a dead letter of its own:
 * then it taught no detector, and is skipped.
 */
extern bool replay_record_skipped(const char *topic, int32 partition, int64 offset,
								  int32 record_index);

/*
 * Where the partition's committed results end while it is being replayed
 * (its plan's until), else -1.
 */
extern int64 replay_until(const char *topic, int32 partition);

/* Messages replayed since the last call. */
extern uint64 replay_take_count(void);

/* Forget every plan (the partitions were revoked). */
extern void replay_forget(void);

#endif
