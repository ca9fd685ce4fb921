/*
 * feedback.h -- events marked normal (driftlock.feedback), learnt by their
 * stream's detector before its next event
 *
 * SPI connected, inside the transaction that processes the event, so the
 * learning commits (or is replayed) with the event's results.
 */
#ifndef DRIFTLOCK_FEEDBACK_H
#define DRIFTLOCK_FEEDBACK_H

#include "nodes/pg_list.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "cbad/cbad.h"
#include "incidents.h"

/*
 * Remember which streams have pending feedback, for feedback_pending();
 * once per transaction of the Kafka worker, which then asks per message
 * instead of querying per message.
 */
extern void feedback_batch_begin(void);

/* Whether the stream had pending feedback at feedback_batch_begin(). */
extern bool feedback_pending(const pg_uuid_t *stream_id);

/*
 * Let the detector learn the stream's pending feedback, oldest first, and
 * mark it applied before the event coming from source; how many.
 */
extern int	feedback_apply(const pg_uuid_t *stream_id, cbad_detector *det,
						   const AnomalySource *source);

/*
 * The same, appending what was learnt (bytea *, allocated with the list in
 * cxt) to *learnt, for a writer that may have to teach it again to another
 * copy of the detector.
 */
extern int	feedback_apply_keep(const pg_uuid_t *stream_id, cbad_detector *det,
								const AnomalySource *source, List **learnt,
								MemoryContext cxt);

#endif
