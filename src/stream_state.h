/*
 * stream_state.h -- a stream's detector, persisted in driftlock.stream_state
 *
 * All of these must be called between SPI_connect and SPI_finish.
 */
#ifndef DRIFTLOCK_STREAM_STATE_H
#define DRIFTLOCK_STREAM_STATE_H

#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "cbad/cbad.h"
#include "detector_glue.h"
#include "incidents.h"

/*
 * The stream's detector, allocated in cxt: its saved state, or a fresh one
 * when there is none or its settings changed.  Errors when the stream does
 * not exist.  for_update locks the stream's row until the transaction ends.
 * learn_only (may be NULL) receives the stream's setting of that name;
 * fresh (may be NULL) whether a saved state was left for new settings.
 */
extern cbad_detector *driftlock_stream_load(pg_uuid_t *stream_id, bool for_update,
											MemoryContext cxt, bool *learn_only, bool *fresh);

/*
 * The detector a stream's settings (config, NULL for the defaults) and
 * saved state (NULL for none) make, allocated in cxt: the state, or a
 * fresh detector when there is none or the settings changed (*fresh, when
 * fresh is not NULL).  Needs no SPI.
 */
extern cbad_detector *driftlock_stream_detector(Jsonb *config, bytea *state,
												MemoryContext cxt, bool *fresh);

/* Save the detector as the stream's state. */
extern void driftlock_stream_save(pg_uuid_t *stream_id, const cbad_detector *det);

/*
 * Save the detector as the stream's first state: false, saving nothing,
 * when the stream has one already (saved concurrently).
 */
extern bool driftlock_stream_save_new(pg_uuid_t *stream_id, const cbad_detector *det);

/*
 * After det observed an event of the stream: record it when it is an
 * anomaly (incidents_record_anomaly) and count it in the metrics.  extras
 * and explanation, when not NULL, receive what the verdict row shows; they
 * are computed only for anomalies otherwise.  Returns whether an anomaly
 * row was inserted.
 */
extern bool driftlock_stream_record(const pg_uuid_t *stream_id, const cbad_detector *det,
									const uint8_t *payload, size_t len,
									const cbad_verdict *verdict, const AnomalySource *source,
									VerdictExtras *extras, char **explanation);

/* The installed version of the extension's SQL objects; false when none. */
extern bool driftlock_installed_version(char *version, size_t cap);

/*
 * Errors unless the installed SQL objects are this library's version (the
 * library was updated, ALTER EXTENSION driftlock UPDATE not run yet).
 */
extern void driftlock_check_schema(void);

#endif
