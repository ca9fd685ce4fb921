/*
 * kafka_message.h -- reading a Kafka message: the bytes that are scored,
 * its stream id (header, key or JSON field) and its headers as JSON for
 * anomalies and dead letters
 */
#ifndef DRIFTLOCK_KAFKA_MESSAGE_H
#define DRIFTLOCK_KAFKA_MESSAGE_H

#include <librdkafka/rdkafka.h>

#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "cbad/cbad.h"
#include "message/otlp_logs.h"

/* Longest stream id accepted (a stream name or a UUID), in bytes. */
#define STREAM_KEY_MAX 255

/* Why a message cannot be processed: a dead-letter reason code and detail. */
typedef struct MessageProblem
{
	const char *reason;			/* NULL when there is none */
	char		detail[512];
} MessageProblem;

/*
 * The stream id of a message, from the first source of
 * driftlock.kafka_stream_id_source that it has: the header
 * driftlock.kafka_stream_id_header, the message key, or the string at
 * driftlock.kafka_stream_id_field in payload[0..len) (the scored payload:
 * message_scored_payload()).  For a log record of an OpenTelemetry batch
 * (record not NULL), the JSON field is no source; the record's resource
 * attribute driftlock.otlp_stream_attribute is tried after the others.  On
 * success key holds a NUL-terminated, valid UTF-8 id of 1 to
 * STREAM_KEY_MAX bytes; otherwise problem says why.
 */
extern bool message_stream_key(const rd_kafka_message_t *msg, const uint8_t *payload, size_t len,
							   const OtlpRecord *record, char *key, MessageProblem *problem);

/*
 * As record: asks whether the header or key sources name the stream of
 * every record of a batch.  false with problem->reason NULL when neither
 * does (each record's resource attribute decides), with a reason when the
 * one that decides is not a valid id.
 */
extern const OtlpRecord message_batch_only;

/*
 * The bytes of a payload that are read and scored: without its Confluent
 * Schema Registry header when driftlock.kafka_strip_schema_header is on
 * (message/confluent_frame.h), else all of them.
 */
extern void message_scored_payload(const uint8_t **payload, size_t *len);

/* The encoding of driftlock.kafka_format otlp_json or otlp_proto. */
extern OtlpEncoding message_otlp_encoding(int format);

/*
 * Decode an OpenTelemetry batch read as format (otlp_json or otlp_proto),
 * naming streams by the resource attribute stream_attribute, into *out,
 * allocated in the current memory context; false with err as otlp_decode().
 */
extern bool message_decode_batch(const uint8_t *payload, size_t len, int format,
								 const char *stream_attribute, OtlpBatch *out,
								 char *err, size_t errlen);

/* The message's headers as a JSON array of {"key", "value"}, or NULL. */
extern char *message_headers_json(const rd_kafka_message_t *msg);

/*
 * The stream id of a dead letter by the same rules, from its headers as
 * message_headers_json() wrote them (NULL: none), its key (NULL: none) and
 * its scored payload.  Headers that were cut (over 64 KiB of JSON) leave
 * the header uncertain: false.
 */
extern bool dead_letter_stream_key(Jsonb *headers, const uint8_t *mkey, size_t mkey_len,
								   const uint8_t *payload, size_t len,
								   const OtlpRecord *record, char *key,
								   MessageProblem *problem);

#endif
