/*
 * guc.h
 *		Configuration settings of the driftlock extension (driftlock.*).
 */
#ifndef DRIFTLOCK_GUC_H
#define DRIFTLOCK_GUC_H

#include "message/setting_lists.h"

/* Longest accepted driftlock.kafka_stream_id_field, in bytes */
#define DRIFTLOCK_STREAM_ID_FIELD_MAXLEN 256

/* Reloadable (SIGHUP) */
extern bool driftlock_kafka_enabled;
extern char *driftlock_kafka_brokers;
extern char *driftlock_kafka_topic;
extern char *driftlock_kafka_group_id;
extern char *driftlock_kafka_stream_id_header;
extern char *driftlock_kafka_stream_id_field;
extern int	driftlock_kafka_max_payload_bytes;
extern int	driftlock_kafka_max_in_flight;
extern int	driftlock_kafka_batch_ms;
extern int	driftlock_detector_cache_size;
extern int	driftlock_detector_cache_memory;	/* kB */
extern int	driftlock_checkpoint_interval;	/* ms */
extern int	driftlock_checkpoint_messages;
extern bool driftlock_metrics_save;
extern char *driftlock_notify_channel;
extern int	driftlock_incident_quiet_period;	/* seconds */
extern int	driftlock_retention;	/* minutes, 0 = off */
extern int	driftlock_dead_letter_rate_limit;	/* per partition and minute */
extern char *driftlock_kafka_start;	/* parsed: kafka_start_setting (kafka_start.h) */
extern char *driftlock_kafka_stream_id_source;
extern StreamIdSources driftlock_stream_id_sources;	/* parsed from it */
extern bool driftlock_kafka_strip_schema_header;
extern bool driftlock_kafka_auto_create_streams;
extern char *driftlock_kafka_stream_template;
extern int	driftlock_kafka_max_streams;	/* 0 = no limit */

/* driftlock.kafka_format: what a Kafka message holds */
typedef enum KafkaFormat
{
	KAFKA_FORMAT_RAW,			/* one event */
	KAFKA_FORMAT_OTLP_JSON,		/* an OpenTelemetry logs batch, OTLP/JSON */
	KAFKA_FORMAT_OTLP_PROTO		/* the same, protobuf */
} KafkaFormat;
extern int	driftlock_kafka_format;
extern char *driftlock_otlp_stream_attribute;

/*
 * How messages are read: driftlock.kafka_format and, for OpenTelemetry
 * batches, driftlock.otlp_stream_attribute.  Kept with each partition's
 * stored offsets, so that a replay reads messages as they were read when
 * they were processed (replay.c).
 */
typedef struct MessageFormat
{
	int			format;			/* KafkaFormat */
	char		otlp_stream_attribute[256]; /* empty for raw */
} MessageFormat;

extern void message_format_current(MessageFormat *f);
extern bool message_format_equal(const MessageFormat *a, const MessageFormat *b);
/* "raw", "otlp_json", "otlp_proto" */
extern const char *kafka_format_name(int format);
/*
 * The format a stored name says (NULL: 0.1.0's rows, raw; the CHECK
 * constraints of the tables admit no other name).
 */
extern int	kafka_format_from_name(const char *name);

/* Restart-only (postmaster) when preloaded */
extern char *driftlock_database;
extern int	driftlock_kafka_workers;
extern int	driftlock_kafka_restart_interval;	/* s */
extern char *driftlock_kafka_properties;
extern int	driftlock_metrics_max_streams;

extern void driftlock_guc_init(void);

#endif							/* DRIFTLOCK_GUC_H */
