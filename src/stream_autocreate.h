/*
 * stream_autocreate.h -- the stream a Kafka message names, created on
 * demand (see stream_autocreate.c)
 */
#ifndef DRIFTLOCK_STREAM_AUTOCREATE_H
#define DRIFTLOCK_STREAM_AUTOCREATE_H

#include "utils/guc.h"
#include "utils/uuid.h"

#include "cbad/cbad.h"

typedef enum StreamResolution
{
	STREAM_FOUND,
	STREAM_UNKNOWN,				/* a dead letter unknown_stream */
	STREAM_OVER_LIMIT			/* a dead letter stream_limit */
} StreamResolution;

typedef enum StreamCreation
{
	STREAM_FIND_ONLY,			/* the Kafka worker, not creating (replays) */
	STREAM_CREATE_IN_BATCH,		/* the Kafka worker, creating */
	STREAM_CREATE				/* driftlock_replay_dead_letters(), creating */
} StreamCreation;

/*
 * The stream a key names (stream_lookup_find); when there is none, the key
 * is a name, creation allows it and driftlock.kafka_auto_create_streams is
 * on, a new stream with the settings of driftlock.kafka_stream_template,
 * unless driftlock.streams has driftlock.kafka_max_streams streams.  In a
 * transaction, SPI connected.  In the Kafka worker's batch, a stream found
 * or created here renews the snapshot its batch pushed (spi_xact_begin), so
 * that its read-only statements see the row.
 */
extern StreamResolution stream_resolve(const char *key, StreamCreation creation, pg_uuid_t *id,
									   cbad_config *cfg, bool *learn_only);

/* The detail of a stream_limit dead letter. */
extern void stream_limit_detail(char *buf, size_t len);

/* Check hook of driftlock.kafka_stream_template (guc.c). */
extern bool check_kafka_stream_template(char **newval, void **extra, GucSource source);

#endif
