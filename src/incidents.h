/*
 * incidents.h -- anomalies recorded with their incident, suppressions,
 * severity and the notification at commit
 *
 * All of it runs with SPI connected, inside the transaction that also
 * commits the Kafka offsets (or the driftlock_observe() call), so a replay
 * after a crash writes the same rows.
 */
#ifndef DRIFTLOCK_INCIDENTS_H
#define DRIFTLOCK_INCIDENTS_H

#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "cbad/cbad.h"
#include "detector_glue.h"

struct rd_kafka_message_s;

/* Where an anomaly came from. */
typedef struct AnomalySource
{
	const char *topic;			/* Kafka topic, NULL when not from Kafka */
	int32		partition;
	int64		offset;
	int32		record_index;	/* of an OpenTelemetry batch's log record; else 0 */
	bool		has_timestamp;	/* the message carried a timestamp */
	TimestampTz timestamp;
	/*
	 * The Kafka message, NULL when not from Kafka: its timestamp type, key
	 * and headers are read from it only when an anomaly is recorded
	 * (message_metadata.c).
	 */
	const struct rd_kafka_message_s *message;
	/*
	 * Without a message: its metadata as message_metadata_args() would give
	 * them (a replayed dead letter keeps those it was stored with), or NULL.
	 */
	const Datum *metadata_args;
	const char *metadata_nulls;
} AnomalySource;

/*
 * Record an anomaly of a stream in driftlock.anomalies and add it to its
 * incident (opened when its key has none within the quiet period), unless
 * its pattern is suppressed.  A Kafka message already recorded is not
 * recorded again: returns whether a row was inserted.
 */
extern bool incidents_record_anomaly(const pg_uuid_t *stream_id, const cbad_detector *det,
									 const uint8_t *payload, size_t len,
									 const cbad_verdict *verdict, const VerdictExtras *extras,
									 const char *explanation, const AnomalySource *source);

/*
 * The source's Kafka topic, partition and offset as three statement
 * parameters at args/nulls (NULLs when it is not from Kafka).
 */
extern void incidents_source_args(const AnomalySource *src, Datum *args, char *nulls);

/* Severity 0-100 of an incident (docs/incidents.md). */
extern int	incident_severity(double min_p_value, int64 anomalies, double alpha);

/*
 * Notifications: forget what the last transaction opened (call at its
 * start), and send one NOTIFY on driftlock.notify_channel for what this one
 * opened or escalated (call before its commit; NOTIFY is delivered then).
 */
extern void incidents_begin(void);
extern void incidents_notify(void);

/* Resolve the incidents quiet for longer than the quiet period; how many. */
extern int	incidents_resolve_quiet(void);

#endif
