/*
 * kafka_start.h -- where a partition with no offsets starts
 * (driftlock.kafka_start: earliest, latest or a timestamp)
 */
#ifndef DRIFTLOCK_KAFKA_START_H
#define DRIFTLOCK_KAFKA_START_H

#include <librdkafka/rdkafka.h>

typedef enum KafkaStartMode
{
	KAFKA_START_EARLIEST,		/* the log start (the default) */
	KAFKA_START_LATEST,			/* the log end, at assignment */
	KAFKA_START_TIMESTAMP		/* the first message at or after a time */
} KafkaStartMode;

typedef struct KafkaStart
{
	KafkaStartMode mode;
	int64		unix_ms;		/* KAFKA_START_TIMESTAMP: milliseconds since 1970 */
} KafkaStart;

/* The parsed driftlock.kafka_start (set by its assign hook, src/guc.c). */
extern KafkaStart kafka_start_setting;

/*
 * Parse a value of driftlock.kafka_start: "earliest", "latest" (any case)
 * or what timestamptz accepts, except the relative words (now, today, ...)
 * and the infinities.  A timestamp without a time zone is read in the
 * server's TimeZone.  Returns false with a sentence in detail and in hint.
 */
extern bool kafka_start_parse(const char *value, KafkaStart *out,
							  char *detail, size_t detaillen, char *hint, size_t hintlen);

/*
 * Before an assignment's transaction (no SPI): where each partition of
 * parts starts if it turns out to have no offsets -- a list in the same
 * order, each .offset RD_KAFKA_OFFSET_BEGINNING, a real offset (latest,
 * timestamp) or RD_KAFKA_OFFSET_INVALID (earliest when the group's Kafka
 * offsets could not be read: librdkafka looks them up itself), each .err
 * set when it could not be found.  committed_known: the group's committed
 * Kafka offsets were read.  The caller destroys the list.
 */
extern rd_kafka_topic_partition_list_t *kafka_start_offsets(rd_kafka_t *rk,
															const rd_kafka_topic_partition_list_t *parts,
															bool committed_known);

/*
 * In the assignment's transaction, for partition p, which has no stored
 * offsets and no Kafka offset of another system: set p->offset from start
 * (its element of kafka_start_offsets()).  A real offset (latest, a
 * timestamp) is stored at once as the partition's row in
 * driftlock.kafka_offsets, so that it applies once: then *next is set and
 * true returned.  Raises an error when the start is unknown.
 */
extern bool kafka_start_partition(int worker_id, const rd_kafka_topic_partition_t *start,
								  rd_kafka_topic_partition_t *p, int64 *next);

/*
 * At consumer creation: a LOG line when driftlock.kafka_properties sets
 * auto.offset.reset, which no longer chooses where partitions without
 * offsets start.
 */
extern void kafka_start_note_properties(int worker_id);

#endif
