/*
 * batch_writer.h -- what a Kafka batch writes besides anomalies: dead
 * letters, offsets and checkpoint offsets (SPI connected, inside the
 * batch's transaction), and what a replay reads of them
 *
 * Each of driftlock's tables has one home in the code: the Kafka position
 * tables (dead_letters, kafka_offsets) here, anomalies and incidents in
 * incidents.c, stream_state in stream_state.c, feedback in feedback.c.
 * A batch's transaction is opened and committed by spi_xact_begin() and
 * spi_xact_commit() (spi_plans.c).
 */
#ifndef DRIFTLOCK_BATCH_WRITER_H
#define DRIFTLOCK_BATCH_WRITER_H

#include "guc.h"

/* Dead letters keep at most this many bytes of the payload. */
#define DEAD_LETTER_PAYLOAD_MAX 65536

struct rd_kafka_message_s;

/*
 * A message as a dead letter (record_index -1), or one log record of an
 * OpenTelemetry batch (its index): its position, reason and detail, its
 * timestamp, key and headers read from msg (message_metadata.c; all NULL
 * when msg is NULL), and payload (len bytes, NULL for none), of which the
 * first DEAD_LETTER_PAYLOAD_MAX bytes are kept.
 */
extern void batch_dead_letter(const char *topic, int32 partition, int64 offset,
							  int32 record_index, const char *reason, const char *detail,
							  const struct rd_kafka_message_s *msg,
							  const uint8_t *payload, size_t len);

/* Messages [from, until) of a partition as one dead letter, with no payload. */
extern void batch_dead_range(const char *topic, int32 partition, int64 from, int64 until,
							 const char *reason, const char *detail);

/*
 * Move the partition's next offset to next_offset, from expected when
 * stored (else by inserting its row, whose checkpoint offset is then
 * first_offset, the first offset this worker processed).  Returns false,
 * writing nothing, when the row is not as expected: see offset_fence.c.
 */
extern bool batch_move_offset(const char *group, const char *topic, int32 partition,
							  bool stored, int64 expected, int64 next_offset,
							  int64 first_offset);

/*
 * The saved detector states include the partition's messages before
 * offset.  Returns false, writing nothing, when the partition's next offset
 * is not expected.
 */
extern bool batch_save_checkpoint(const char *group, const char *topic, int32 partition,
								  int64 expected, int64 offset);

/*
 * The stored next and checkpoint offsets, and how the messages before the
 * next offset were read (format, unless NULL); false when there are none.
 */
extern bool batch_load_offset(const char *group, const char *topic, int32 partition,
							  int64 *next_offset, int64 *checkpoint_offset,
							  MessageFormat *format);

/* Where a dead letter is: record_index -1 for a whole message. */
typedef struct DeadLetterPosition
{
	int64		offset;
	int32		record_index;
} DeadLetterPosition;

/*
 * The positions in [from, until) of the partition's dead letters,
 * ascending (a whole message before its records), in TopMemoryContext
 * (*count of them).
 */
extern DeadLetterPosition *batch_dead_letter_offsets(const char *topic, int32 partition, int64 from,
										int64 until, int *count);

#endif
