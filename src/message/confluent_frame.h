/*
 * confluent_frame.h -- the Confluent Schema Registry wire format: a magic
 * byte 0 and a 4-byte big-endian schema id in front of the serialized value
 *
 * Plain C, no PostgreSQL headers.  With driftlock.kafka_strip_schema_header
 * on, the Kafka worker reads the stream id from, and scores, what follows
 * the header (kafka_message.c), so that JSON framed by a JSON Schema
 * serializer scores like plain JSON.
 */
#ifndef DRIFTLOCK_CONFLUENT_FRAME_H
#define DRIFTLOCK_CONFLUENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFLUENT_MAGIC_BYTE 0x00
#define CONFLUENT_HEADER_BYTES 5

/*
 * If payload[0..len) starts with the header, move *payload and *len past
 * it, set *schema_id (when not NULL) and return true; else change nothing
 * and return false.  A payload of 5 bytes is a header with an empty value
 * after it; one shorter than 5 bytes, even starting with 0, has no header.
 */
extern bool confluent_frame_strip(const uint8_t **payload, size_t *len, uint32_t *schema_id);

#endif
