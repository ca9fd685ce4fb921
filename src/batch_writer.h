/*
 * batch_writer.h -- what a Kafka batch writes besides anomalies: dead
 * letters and offsets (SPI connected, inside the batch's transaction)
 */
#ifndef DRIFTLOCK_BATCH_WRITER_H
#define DRIFTLOCK_BATCH_WRITER_H

/* Dead letters keep at most this many bytes of the payload. */
#define DEAD_LETTER_PAYLOAD_MAX 65536

extern void batch_dead_letter(const char *topic, int32 partition, int64 offset,
							  const char *reason, const char *detail,
							  const char *headers_json, const uint8_t *payload,
							  size_t len);

extern void batch_save_offset(const char *group, const char *topic, int32 partition,
							  int64 next_offset);

/* The stored next offset, or -1 when there is none. */
extern int64 batch_load_offset(const char *group, const char *topic, int32 partition);

#endif
