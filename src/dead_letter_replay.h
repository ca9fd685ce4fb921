/*
 * dead_letter_replay.h -- driftlock_replay_dead_letters(), and how a Kafka
 * worker learns that the saved detector states changed under it
 */
#ifndef DRIFTLOCK_DEAD_LETTER_REPLAY_H
#define DRIFTLOCK_DEAD_LETTER_REPLAY_H

/*
 * In a transaction of a Kafka worker: did driftlock_replay_dead_letters()
 * save detector states since the last call (as far as the invalidations
 * read so far tell)?  Clears the flag, and logs when it was set.  The
 * worker's cached detectors are then stale: it must not save them, and
 * reads its partitions again from their checkpoints.
 */
extern bool detectors_invalidated(void);

/*
 * After a checkpoint's saves, in its transaction: an error if a replay
 * committed states meanwhile (the saves may have overwritten them), so
 * that the transaction rolls back and the batch is retried.
 */
extern void detectors_check_unchanged(void);

#endif
