/*
 * checkpoint.h -- when and how a Kafka worker saves its detectors
 */
#ifndef DRIFTLOCK_CHECKPOINT_H
#define DRIFTLOCK_CHECKPOINT_H

#include <librdkafka/rdkafka.h>

/* A batch processed n messages (live or replayed). */
extern void checkpoint_count_messages(int n);

/*
 * The next batch must checkpoint: a detector learnt feedback, or started
 * afresh for new settings (a replay would not do the same).
 */
extern void checkpoint_request(void);

/*
 * Is a checkpoint due: requested, driftlock.checkpoint_messages or
 * driftlock.checkpoint_interval reached with something to save, or the
 * detector cache over its budget with detectors not saved yet?
 */
extern bool checkpoint_due(void);

/*
 * In the current transaction (SPI connected): save the changed detectors,
 * and set the checkpoint offset of each partition in positions (the next
 * offset its detectors have learnt, negative when none) to it.  An error
 * when a dead letter replay saved states meanwhile (dead_letter_replay.c).
 */
extern void checkpoint_write(const rd_kafka_topic_partition_list_t *positions);

/* The transaction that called checkpoint_write committed. */
extern void checkpoint_committed(void);

/*
 * A checkpoint in a transaction of its own, between batches (idle, a
 * rebalance, shutdown).  Returns false, after logging, when it failed or
 * when a dead letter replay changed the saved states (nothing is saved
 * then): the cache is then dropped and the partitions must be read again
 * from their last checkpoint.
 */
extern bool checkpoint_now(const rd_kafka_topic_partition_list_t *positions, const char *why);

#endif
