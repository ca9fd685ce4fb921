/*
 * stream_lookup.h -- the stream a Kafka message's key names (cached)
 */
#ifndef DRIFTLOCK_STREAM_LOOKUP_H
#define DRIFTLOCK_STREAM_LOOKUP_H

#include "utils/uuid.h"

#include "cbad/cbad.h"

/*
 * The stream a key names (a stream UUID in any form uuid_in accepts, or a
 * stream name) with its settings and whether it only learns; false when
 * there is none.  In a transaction, SPI connected.  Remembered until
 * driftlock.streams changes or stream_lookup_forget().
 */
extern bool stream_lookup_find(const char *key, pg_uuid_t *id, cbad_config *cfg,
							   bool *learn_only);

/* Remember a stream the worker created itself (stream_autocreate.c). */
extern void stream_lookup_remember(const char *key, const pg_uuid_t *id,
								   const cbad_config *cfg, bool learn_only);

/*
 * While on, the trigger of driftlock.streams sends no invalidation: around
 * a worker's own insert of a stream, which it remembers itself (and which
 * changes no other lookup).
 */
extern void stream_lookup_own_insert(bool on);

/* Whether a key reads as a UUID (as uuid_in would), rather than a name. */
extern bool stream_key_is_uuid(const char *key);

/* Forget every lookup (after a failed batch). */
extern void stream_lookup_forget(void);

#endif
