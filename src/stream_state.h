/*
 * stream_state.h -- a stream's detector, persisted in driftlock.stream_state
 *
 * All three must be called between SPI_connect and SPI_finish.
 */
#ifndef DRIFTLOCK_STREAM_STATE_H
#define DRIFTLOCK_STREAM_STATE_H

#include "utils/uuid.h"

#include "cbad/cbad.h"

/*
 * The stream's detector, allocated in cxt: its saved state, or a fresh one
 * when there is none or its settings changed.  Errors when the stream does
 * not exist.  for_update locks the stream's row until the transaction ends.
 */
extern cbad_detector *driftlock_stream_load(pg_uuid_t *stream_id, bool for_update,
											MemoryContext cxt);

/* Save the detector as the stream's state. */
extern void driftlock_stream_save(pg_uuid_t *stream_id, const cbad_detector *det);

/*
 * Record an anomaly of the stream; topic NULL for events that did not come
 * from Kafka.  A Kafka message already recorded is not recorded twice:
 * returns whether a row was inserted.
 */
extern bool driftlock_anomaly_insert(pg_uuid_t *stream_id, const uint8_t *payload,
									 size_t len, const cbad_verdict *verdict,
									 const char *explanation, const char *topic,
									 int32 partition, int64 offset);

#endif
