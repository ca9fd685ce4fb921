/*
 * message_metadata.h -- a Kafka message's timestamp (with its type), key
 * and headers, as columns of driftlock.anomalies and driftlock.dead_letters
 *
 * Read from the message only when a row is written (an anomaly or a dead
 * letter), never for the messages that leave no row.
 */
#ifndef DRIFTLOCK_MESSAGE_METADATA_H
#define DRIFTLOCK_MESSAGE_METADATA_H

#include <librdkafka/rdkafka.h>

#include "datatype/timestamp.h"

/*
 * Keys are kept up to this many bytes (the first ones), as dead-letter
 * payloads are: Kafka keys are small in practice, but a broker accepts
 * keys as large as its message.max.bytes.
 */
#define MESSAGE_KEY_MAX 65536

/*
 * The message's timestamp (create or log-append time) in *ts; type_name
 * (may be NULL) receives "create_time" or "log_append_time".  False, with
 * *ts 0 and *type_name NULL, when the message has none (a broker or
 * producer before Kafka 0.10, or a negative timestamp).
 */
extern bool message_timestamp(const rd_kafka_message_t *msg, TimestampTz *ts,
							  const char **type_name);

/*
 * Statement parameters of the metadata of a message (msg may be NULL: then
 * all are NULL), at args/nulls, MESSAGE_METADATA_ARGS of them, of types
 * TIMESTAMPTZOID, TEXTOID, BYTEAOID, TEXTOID:
 *   kafka_timestamp, kafka_timestamp_type,
 *   kafka_key (the first MESSAGE_KEY_MAX bytes; NULL for a null key),
 *   the headers as JSON text (message_headers_json(); cast it to jsonb).
 */
#define MESSAGE_METADATA_ARGS 4
extern void message_metadata_args(const rd_kafka_message_t *msg, Datum *args, char *nulls);

#endif
