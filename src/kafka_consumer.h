/*
 * kafka_consumer.h -- the librdkafka consumer of a Kafka worker
 */
#ifndef DRIFTLOCK_KAFKA_CONSUMER_H
#define DRIFTLOCK_KAFKA_CONSUMER_H

#include <librdkafka/rdkafka.h>

#include "message/setting_lists.h"

/* Settings the consumer was made with, to notice when a reload changes them. */
typedef struct ConsumerSettings
{
	char		brokers[1024];
	char		topic[TOPIC_LIST_MAX + 1];	/* driftlock.kafka_topic, canonical */
	char		group[256];
	/*
	 * How messages are read: a change makes the worker checkpoint and
	 * reconnect (a replay reads the format stored with the offsets).
	 */
	int			format;			/* driftlock.kafka_format */
	char		otlp_stream_attribute[256];
} ConsumerSettings;

/*
 * Create the consumer from the driftlock.kafka_* settings and subscribe.
 * Returns NULL after logging why (a bad driftlock.kafka_properties entry,
 * an unknown librdkafka setting, ...).
 */
extern rd_kafka_t *consumer_create(int worker_id, ConsumerSettings *settings);

/* Close (leaving the group) and destroy. */
extern void consumer_close(rd_kafka_t *rk);

/*
 * Called when partitions are revoked, before they go: the worker drops what
 * it holds for them.
 */
extern void (*consumer_on_revoke) (void);

/* Called after partitions are assigned, with their start offsets. */
extern void (*consumer_on_assign) (const rd_kafka_topic_partition_list_t *parts);

/*
 * Move every assigned partition back to its checkpoint offset stored in
 * PostgreSQL, to replay up to its stored next offset (after a failed
 * batch).  Opens and commits its own transaction.
 */
extern void consumer_rewind(rd_kafka_t *rk);

/* No fetched message is waiting in the consumer's queue. */
extern bool consumer_drained(rd_kafka_t *rk);

/*
 * True when reading the stored offsets for an assignment failed: the worker
 * must not consume without them, so it exits and is restarted.
 */
extern bool consumer_rebalance_failed(void);

/* Log a consumer error event (rate-limited like librdkafka's own errors). */
extern void consumer_log_message_error(int worker, const rd_kafka_message_t *msg);

/*
 * Tell Kafka the next offsets too, tagged with this system's identifier:
 * for standard lag tools, and for another instance of the group taking
 * over the partitions.  wait: synchronously (on revocation and shutdown,
 * so that the next owner reads them), else asynchronously.
 */
extern void consumer_commit(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *offsets, bool wait);

#endif
