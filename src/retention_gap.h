/*
 * retention_gap.h -- messages Kafka's retention deleted before the worker
 * read them
 */
#ifndef DRIFTLOCK_RETENTION_GAP_H
#define DRIFTLOCK_RETENTION_GAP_H

#include <librdkafka/rdkafka.h>

/* A transaction of the worker starts: no gap recorded in it yet. */
extern void gap_begin(void);

/*
 * The worker expected offset `expected` of the partition next and got
 * `offset`, further on.  When the partition's log now starts after
 * `expected`, the messages in between were deleted by retention: record
 * them as one retention_gap dead letter (SPI connected, in the batch's
 * transaction).  committed_until: while the partition is replayed, the
 * offset up to which its results are committed (those messages were
 * processed before and only the replay misses them), else -1.
 */
extern void gap_check(rd_kafka_t *rk, const char *topic, int32 partition, int64 expected,
					  int64 offset, int64 committed_until);

/* The transaction committed: warn about its gaps and count them. */
extern void gap_committed(int worker_id);

#endif
