/*
 * guc.c
 *		Definition of the driftlock.* configuration settings.
 *
 * Settings read by the Kafka worker fall in two groups:
 *
 * - Reloadable settings (PGC_SIGHUP): changed with pg_reload_conf(); the
 *   worker picks the new values up at its next turn and reconnects when a
 *   connection setting changed.
 *
 * - Restart-only settings: they size or identify the workers, or hold
 *   secrets.  They are PGC_POSTMASTER when the library is preloaded.  When
 *   the library is loaded later (CREATE EXTENSION, LOAD, a function call)
 *   PostgreSQL refuses to create PGC_POSTMASTER settings ("cannot create
 *   PGC_POSTMASTER variables after startup"), so they are defined as
 *   PGC_SIGHUP instead.  They are informational then: without preloading no
 *   worker runs, so nothing reads them.  This keeps CREATE EXTENSION working
 *   in a cluster that does not preload the library, and keeps every setting
 *   visible in pg_settings.
 */
#include "postgres.h"

#include <limits.h>
#include <string.h>

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "driftlock.h"
#include "guc.h"
#include "kafka_start.h"
#include "stream_autocreate.h"
#include "message/kafka_properties.h"
#include "message/setting_lists.h"

bool		driftlock_kafka_enabled = false;
char	   *driftlock_kafka_brokers = NULL;
char	   *driftlock_kafka_topic = NULL;
char	   *driftlock_kafka_group_id = NULL;
char	   *driftlock_kafka_stream_id_header = NULL;
char	   *driftlock_kafka_stream_id_field = NULL;
int			driftlock_kafka_max_payload_bytes = 1048576;
int			driftlock_kafka_max_in_flight = 100;
int			driftlock_kafka_batch_ms = 100;
int			driftlock_detector_cache_size = 100000;
int			driftlock_detector_cache_memory = 512 * 1024;	/* kB */
int			driftlock_checkpoint_interval = 10000;	/* ms */
int			driftlock_checkpoint_messages = 100000;
bool		driftlock_metrics_save = true;
char	   *driftlock_notify_channel = NULL;
int			driftlock_incident_quiet_period = 900;
int			driftlock_retention = 0;	/* min */
int			driftlock_dead_letter_rate_limit = 1000;
int			driftlock_metrics_max_streams = 1000;
char	   *driftlock_database = NULL;
int			driftlock_kafka_workers = 1;
int			driftlock_kafka_restart_interval = 5;	/* s */
char	   *driftlock_kafka_properties = NULL;
char	   *driftlock_kafka_start = NULL;
char	   *driftlock_kafka_stream_id_source = NULL;
StreamIdSources driftlock_stream_id_sources = {2, {STREAM_ID_HEADER, STREAM_ID_JSON}};
bool		driftlock_kafka_strip_schema_header = false;
bool		driftlock_kafka_auto_create_streams = false;
char	   *driftlock_kafka_stream_template = NULL;
int			driftlock_kafka_max_streams = 10000;
int			driftlock_kafka_format = KAFKA_FORMAT_RAW;
char	   *driftlock_otlp_stream_attribute = NULL;

static const struct config_enum_entry kafka_format_options[] = {
	{"raw", KAFKA_FORMAT_RAW, false},
	{"otlp_json", KAFKA_FORMAT_OTLP_JSON, false},
	{"otlp_proto", KAFKA_FORMAT_OTLP_PROTO, false},
	{NULL, 0, false}
};

void
message_format_current(MessageFormat *f)
{
	memset(f, 0, sizeof(*f));
	f->format = driftlock_kafka_format;
	if (f->format != KAFKA_FORMAT_RAW)
		strlcpy(f->otlp_stream_attribute, driftlock_otlp_stream_attribute,
				sizeof(f->otlp_stream_attribute));
}

bool
message_format_equal(const MessageFormat *a, const MessageFormat *b)
{
	return a->format == b->format &&
		strcmp(a->otlp_stream_attribute, b->otlp_stream_attribute) == 0;
}

const char *
kafka_format_name(int format)
{
	for (const struct config_enum_entry *e = kafka_format_options; e->name != NULL; e++)
		if (e->val == format)
			return e->name;
	return "raw";
}

int
kafka_format_from_name(const char *name)
{
	for (const struct config_enum_entry *e = kafka_format_options;
		 name != NULL && e->name != NULL; e++)
		if (strcmp(e->name, name) == 0)
			return e->val;
	return KAFKA_FORMAT_RAW;
}

/* Memory of GUC values and extras: guc_malloc() from PostgreSQL 16 on */
#if PG_VERSION_NUM >= 160000
#define guc_value_alloc(size) guc_malloc(LOG, (size))
#define guc_value_free(p) guc_free(p)
#else
#define guc_value_alloc(size) malloc(size)
#define guc_value_free(p) free(p)
#endif

/* Replace a string setting's new value by its canonical form. */
static bool
set_canonical(char **newval, const char *canon)
{
	char	   *copy;

	if (strcmp(*newval, canon) == 0)
		return true;
	copy = guc_value_alloc(strlen(canon) + 1);
	if (copy == NULL)
		return false;
	strcpy(copy, canon);
	guc_value_free(*newval);
	*newval = copy;
	return true;
}

/* A copy of an extra in memory the GUC machinery frees. */
static void *
guc_extra(const void *data, size_t size)
{
	void	   *copy = guc_value_alloc(size);

	if (copy != NULL)
		memcpy(copy, data, size);
	return copy;
}

/*
 * Check hook of driftlock.kafka_topic: topic names and patterns (items
 * starting with ^) separated by commas; the value becomes its canonical
 * form (items trimmed, joined by ", "), so that respacing the list does
 * not make the worker reconnect.
 */
static bool
check_kafka_topic(char **newval, void **extra, GucSource source)
{
	char		canon[TOPIC_LIST_MAX + 1];
	char		err[512];
	char		hint[256];

	if (topic_list_check(*newval, canon, sizeof(canon), err, sizeof(err), hint, sizeof(hint)) != 0)
	{
		GUC_check_errdetail("%s", err);
		if (hint[0] != '\0')
			GUC_check_errhint("%s", hint);
		return false;
	}
	return set_canonical(newval, canon);
}

/* Check hook of driftlock.kafka_stream_id_source: header, key, json in order. */
static bool
check_stream_id_source(char **newval, void **extra, GucSource source)
{
	StreamIdSources parsed;
	char		canon[64];
	char		err[256];
	char		hint[256];

	if (stream_id_sources_parse(*newval, &parsed, canon, sizeof(canon), err, sizeof(err),
								hint, sizeof(hint)) != 0)
	{
		GUC_check_errdetail("%s", err);
		if (hint[0] != '\0')
			GUC_check_errhint("%s", hint);
		return false;
	}
	*extra = guc_extra(&parsed, sizeof(parsed));
	return *extra != NULL && set_canonical(newval, canon);
}

static void
assign_stream_id_source(const char *newval, void *extra)
{
	driftlock_stream_id_sources = *(StreamIdSources *) extra;
}

/* Check hook of driftlock.otlp_stream_attribute: a non-empty attribute key. */
static bool
check_otlp_stream_attribute(char **newval, void **extra, GucSource source)
{
	size_t		len = *newval ? strlen(*newval) : 0;

	if (len == 0 || len > 255)
	{
		GUC_check_errdetail("driftlock.otlp_stream_attribute must be a resource attribute key of 1 to 255 bytes, such as service.name or host.name.");
		return false;
	}
	return true;
}

/* Check hook of driftlock.kafka_start: earliest, latest or a time stamp. */
static bool
check_kafka_start(char **newval, void **extra, GucSource source)
{
	KafkaStart	parsed;
	char		detail[256];
	char		hint[256];

	if (!kafka_start_parse(*newval, &parsed, detail, sizeof(detail), hint, sizeof(hint)))
	{
		GUC_check_errdetail("%s", detail);
		GUC_check_errhint("%s", hint);
		return false;
	}
	*extra = guc_extra(&parsed, sizeof(parsed));
	return *extra != NULL;
}

static void
assign_kafka_start(const char *newval, void *extra)
{
	kafka_start_setting = *(KafkaStart *) extra;
}

/* pg_notify() refuses channel names of NAMEDATALEN bytes or more */
static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A channel name is at most %d bytes long.", NAMEDATALEN - 1);
		return false;
	}
	return true;
}

static int
append_redacted(const char *key, const char *value, void *opaque, char *err, size_t errlen)
{
	StringInfo	buf = opaque;

	appendStringInfo(buf, "%s%s=********", buf->len ? ";" : "", key);
	return 0;
}

/*
 * Show hook of driftlock.kafka_properties: the keys with every value masked,
 * except for superusers.  SHOW, current_setting() and pg_settings all go
 * through it, so members of pg_read_all_settings (and pg_monitor, which
 * monitoring agents often use) see which properties are set but no password.
 * Outside a transaction the role cannot be checked: mask then too.
 */
static const char *
show_kafka_properties(void)
{
	const char *value = driftlock_kafka_properties;
	StringInfoData buf;
	char		err[256];

	if (value == NULL || value[0] == '\0')
		return "";
	if (IsTransactionState() && superuser())
		return value;
	initStringInfo(&buf);
	if (kafka_properties_parse(value, append_redacted, &buf, err, sizeof(err)) != 0)
		return "********";
	return buf.data;
}

/*
 * Check hook of driftlock.kafka_stream_id_field: empty (unset), or a dotted
 * path of non-empty object keys such as "metadata.stream_id".
 */
static bool
check_stream_id_field(char **newval, void **extra, GucSource source)
{
	const char *path = *newval;
	size_t		len;

	if (path == NULL || path[0] == '\0')
		return true;

	len = strlen(path);
	if (len > DRIFTLOCK_STREAM_ID_FIELD_MAXLEN)
	{
		GUC_check_errdetail("The JSON path is %zu bytes long; the maximum is %d bytes.",
							len, DRIFTLOCK_STREAM_ID_FIELD_MAXLEN);
		return false;
	}
	if (path[0] == '.' || path[len - 1] == '.')
	{
		GUC_check_errdetail("The JSON path must not begin or end with a dot.");
		GUC_check_errhint("Write the path as dot-separated keys, for example \"metadata.stream_id\".");
		return false;
	}
	if (strstr(path, "..") != NULL)
	{
		GUC_check_errdetail("The JSON path contains an empty key (two consecutive dots).");
		GUC_check_errhint("Write the path as dot-separated keys, for example \"metadata.stream_id\".");
		return false;
	}
	return true;
}

/* Define every driftlock.* setting, then reserve the prefix */
void
driftlock_guc_init(void)
{
	/* see the file header comment */
	GucContext	restart_context = driftlock_preloaded ? PGC_POSTMASTER : PGC_SIGHUP;

	/* ---- reloadable settings ---- */

	DefineCustomBoolVariable("driftlock.kafka_enabled",
							 "Consume the Kafka topic (on/off, reload).",
							 "When off, the Kafka worker stays idle.  Takes effect on reload.",
							 &driftlock_kafka_enabled,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_brokers",
							   "Kafka bootstrap servers (host:port list, reload).",
							   "Comma-separated list of host:port pairs.  Takes effect on reload: the worker reconnects.",
							   &driftlock_kafka_brokers,
							   "localhost:9092",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_topic",
							   "Kafka topics to consume (comma-separated names and ^patterns, reload).",
							   "Topic names separated by commas, for example events, audit; an item starting with ^ is a regular expression, and every topic it matches is consumed, for example ^logs-.*.  Names are at most 249 bytes of ASCII letters, digits, '.', '_' and '-'.  Takes effect on reload: the worker resubscribes.",
							   &driftlock_kafka_topic,
							   "driftlock-events",
							   PGC_SIGHUP,
							   0,
							   check_kafka_topic, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_start",
							   "Where partitions with no stored offsets start (earliest, latest or a time stamp, reload).",
							   "For a partition with no row in driftlock.kafka_offsets and no Kafka offset committed by another instance of the group: earliest (the default) is its first message, latest its end when the worker joins, a time stamp its first message at or after it.  Stored offsets always win.  Takes effect on reload, for partitions assigned from then on.",
							   &driftlock_kafka_start,
							   "earliest",
							   PGC_SIGHUP,
							   0,
							   check_kafka_start, assign_kafka_start, NULL);

	DefineCustomStringVariable("driftlock.kafka_group_id",
							   "Kafka consumer group id (string, reload).",
							   "Consumer group used for partition assignment; the next offsets themselves are kept in driftlock.kafka_offsets under this group id.  Takes effect on reload: the worker rejoins.",
							   &driftlock_kafka_group_id,
							   "driftlock-api",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_stream_id_header",
							   "Kafka message header holding the stream id (header name, reload).",
							   "Name of a message header, for example X-Stream-Id, whose value is the stream name or id.  Empty (the default) means unset.  Takes effect on reload.",
							   &driftlock_kafka_stream_id_header,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_stream_id_field",
							   "JSON field of the message holding the stream id (dotted path, reload).",
							   "Dot-separated path of object keys in a JSON payload, for example metadata.stream_id: no empty key, no leading or trailing dot, at most 256 bytes.  Empty (the default) means unset.  Takes effect on reload.",
							   &driftlock_kafka_stream_id_field,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_stream_id_field, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_stream_id_source",
							   "Where a Kafka message's stream id is read, in order (header, key, json, reload).",
							   "A comma-separated list of header (the header driftlock.kafka_stream_id_header), key (the message key) and json (the field driftlock.kafka_stream_id_field), tried in that order: the first one the message has is used.  A header or field whose setting is empty is skipped.  The default header, json is driftlock 0.1.0's rule.  Takes effect on reload.",
							   &driftlock_kafka_stream_id_source,
							   "header, json",
							   PGC_SIGHUP,
							   0,
							   check_stream_id_source, assign_stream_id_source, NULL);

	DefineCustomEnumVariable("driftlock.kafka_format",
							 "What a Kafka message holds: one event, or a batch of OpenTelemetry log records (raw, otlp_json, otlp_proto, reload).",
							 "raw (the default): the payload is one event.  otlp_proto or otlp_json: the payload is an OpenTelemetry logs export batch, as the OpenTelemetry Collector's Kafka exporter writes it, and each log record is an event of its own, named by a resource attribute (driftlock.otlp_stream_attribute) unless a header or key source of driftlock.kafka_stream_id_source names the message's stream.  Takes effect on reload: the worker checkpoints and reconnects.",
							 &driftlock_kafka_format,
							 KAFKA_FORMAT_RAW,
							 kafka_format_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.otlp_stream_attribute",
							   "Resource attribute naming the stream of an OpenTelemetry log record (attribute key, reload).",
							   "With driftlock.kafka_format otlp_proto or otlp_json, the value of this resource attribute (service.name by default) is the stream name or id of the records of a resource.  Takes effect on reload: the worker checkpoints and reconnects.",
							   &driftlock_otlp_stream_attribute,
							   "service.name",
							   PGC_SIGHUP,
							   0,
							   check_otlp_stream_attribute, NULL, NULL);

	DefineCustomBoolVariable("driftlock.kafka_strip_schema_header",
							 "Drop the Confluent Schema Registry header of Kafka payloads (boolean, reload).",
							 "When on, a payload starting with the magic byte 0 and a 4-byte schema id loses those 5 bytes before its stream id is read from JSON and before it is scored, so JSON Schema framed messages score like plain JSON; dead letters keep the payload as received.  Payloads shorter than 5 bytes are left as they are.  Takes effect on reload.",
							 &driftlock_kafka_strip_schema_header,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("driftlock.kafka_auto_create_streams",
							 "Create the stream a Kafka message names when there is none (boolean, reload).",
							 "When on, a message whose stream id is a name (not a UUID) that no row of driftlock.streams has creates that stream, with the settings of driftlock.kafka_stream_template, and is scored, instead of becoming an unknown_stream dead letter.  Bounded by driftlock.kafka_max_streams.  Takes effect on reload.",
							 &driftlock_kafka_auto_create_streams,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.kafka_stream_template",
							   "Detector settings of the streams the Kafka worker creates (JSON object, reload).",
							   "A JSON object of detector settings, checked like driftlock.streams.config, given as the config of each stream created by driftlock.kafka_auto_create_streams; '{}' (the default) is the defaults.  Takes effect on reload, for streams created from then on.",
							   &driftlock_kafka_stream_template,
							   "{}",
							   PGC_SIGHUP,
							   0,
							   check_kafka_stream_template, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_max_streams",
							"Most rows of driftlock.streams, beyond which the Kafka worker creates no stream (0 .. 2147483647, 0 = no limit, reload).",
							"A creation that would take driftlock.streams beyond this many rows writes a dead letter with reason stream_limit instead.  Streams created by hand are not limited.  The limit is approximate: workers creating streams at the same time may exceed it by what each creates in one batch.  Takes effect on reload.",
							&driftlock_kafka_max_streams,
							10000,
							0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_max_payload_bytes",
							"Largest Kafka message payload processed (1 B .. 1073741819 B, reload).",
							"Larger messages go to driftlock.dead_letters with reason payload_too_large.  Takes effect on reload.",
							&driftlock_kafka_max_payload_bytes,
							1048576,
							1, MaxAllocSize - VARHDRSZ,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_max_in_flight",
							"Most Kafka messages processed per transaction (1 .. 100000, reload).",
							"Upper bound on the batch of messages whose results and offsets are committed together.  Takes effect on reload.",
							&driftlock_kafka_max_in_flight,
							100,
							1, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_batch_ms",
							"Longest time a batch of Kafka messages waits to fill (1 ms .. 10 s, reload).",
							"A batch is committed when it holds driftlock.kafka_max_in_flight messages or when this much time has passed since its first message, so a quiet topic still commits promptly.  Takes effect on reload.",
							&driftlock_kafka_batch_ms,
							100,
							1, 10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.detector_cache_size",
							"Most stream detectors each Kafka worker keeps in memory (1 .. 1000000, reload).",
							"A count limit on top of driftlock.detector_cache_memory, which usually decides.  Least recently used detectors beyond either are dropped after a checkpoint has saved them, and loaded again from driftlock.stream_state when their stream shows up.  Takes effect on reload.",
							&driftlock_detector_cache_size,
							100000,
							1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.detector_cache_memory",
							"Memory for the stream detectors of each Kafka worker (1 MB and up, reload).",
							"A warm detector takes about 190 kB at the default settings, so the default 512 MB keeps about 2,700 streams in memory.  Beyond it, least recently used detectors are dropped (after a checkpoint when they changed) and loaded again when their stream shows up, about 0.7 ms each.  A batch may exceed the budget by the detectors it loads.  Takes effect on reload.",
							&driftlock_detector_cache_memory,
							512 * 1024,
							1024, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.checkpoint_interval",
							"Longest time between two saves of the stream detectors of a Kafka worker (100 ms .. 1 h, reload).",
							"Offsets, anomalies and dead letters commit with every batch; the detectors' states are saved at checkpoints, every this long or every driftlock.checkpoint_messages messages, whichever comes first.  After a crash, a worker reads again from its last checkpoint and lets the detectors relearn the messages since then without writing anything twice, so this bounds the replay.  Takes effect on reload.",
							&driftlock_checkpoint_interval,
							10000,
							100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.checkpoint_messages",
							"Most messages a Kafka worker processes between two checkpoints (1 .. 100000000, reload).",
							"See driftlock.checkpoint_interval.  An OpenTelemetry batch counts as one message, whatever its log records.  1 saves the touched detectors with every batch, as driftlock 0.1.0 did.  Takes effect on reload.",
							&driftlock_checkpoint_messages,
							100000,
							1, 100000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("driftlock.metrics_save",
							 "Keep the metrics across server restarts (boolean, reload).",
							 "When on, the counters of driftlock.metrics are written to pg_stat/driftlock.stat at a clean shutdown and read back at start.  Takes effect on reload.",
							 &driftlock_metrics_save,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.notify_channel",
							   "Channel on which new and escalated incidents are announced (channel name, reload).",
							   "At the commit that opens an incident, or raises it to a higher severity band, the writer sends NOTIFY on this channel with the payload {\"incidents\":[ids],\"max_severity\":n}; LISTEN to it.  Empty sends nothing.  Takes effect on reload.",
							   &driftlock_notify_channel,
							   "driftlock_incidents",
							   PGC_SIGHUP,
							   0,
							   check_notify_channel, NULL, NULL);

	DefineCustomIntVariable("driftlock.incident_quiet_period",
							"Event time after which an incident with no new anomaly is resolved (1 s .. 7 days, reload).",
							"An anomaly joins the latest incident of its stream and key when it comes within this time of that incident's last anomaly, and opens a new incident otherwise.  Time is the Kafka message's timestamp, else the transaction's start.  Takes effect on reload.",
							&driftlock_incident_quiet_period,
							900,
							1, 7 * 24 * 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.retention",
							"Age after which anomalies, dead letters, closed incidents, applied feedback and ended suppressions are deleted (0 = never, 1 min and up, reload).",
							"Kafka worker 0 deletes them between batches, at most once a minute and a thousand rows per transaction, sooner while rows are left over; driftlock_purge() does the same deletes on demand.  Dead letters a replay after a crash still needs are kept.  0 (the default) keeps everything.  Takes effect on reload.",
							&driftlock_retention,
							0,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.dead_letter_rate_limit",
							"Dead letters per Kafka partition and minute that keep their payload (0 = all, 0 .. 1000000, reload).",
							"Further dead letters of the partition in the same minute are recorded with their position, headers and reason, but without their payload, and their detail says so.  0 keeps every payload.  Takes effect on reload.",
							&driftlock_dead_letter_rate_limit,
							1000,
							0, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	/* ---- restart-only settings ---- */

	DefineCustomIntVariable("driftlock.metrics_max_streams",
							"Streams with their own rows in driftlock.metrics (0 .. 1000000, restart).",
							"The counters of further streams are added to driftlock_stream_overflow_events_total and driftlock_stream_overflow_anomalies_total.  Each stream takes 32 bytes of shared memory.  Requires a server restart.",
							&driftlock_metrics_max_streams,
							1000,
							0, 1000000,
							restart_context,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("driftlock.database",
							   "Database the Kafka worker connects to (database name, restart).",
							   "The worker writes anomalies, dead letters and offsets into this database, where CREATE EXTENSION driftlock must have been run.  Requires a server restart.",
							   &driftlock_database,
							   "postgres",
							   restart_context,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_restart_interval",
							"Seconds before a Kafka worker that exited or crashed is started again (1 s .. 1 h, restart).",
							"A worker exits after an error it cannot retry (offsets unreadable) or a SIGTERM, and is restarted with the rest of the server after a crash.  A worker that cannot connect to driftlock.database waits twice as long after each failed start in a row, up to once a minute.  Requires a server restart.",
							&driftlock_kafka_restart_interval,
							5,
							1, 3600,
							restart_context,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("driftlock.kafka_workers",
							"Number of Kafka consumer workers (0 .. 32, restart).",
							"0 starts no worker.  Each worker is a background worker, so max_worker_processes must leave room for them.  Requires a server restart.",
							&driftlock_kafka_workers,
							1,
							0, 32,
							restart_context,
							0,
							NULL, NULL, NULL);

	/*
	 * Extra librdkafka settings, typically TLS and SASL, so possibly a
	 * password.  Three rules keep it out of sight of non-superusers:
	 *
	 * - GUC_SUPERUSER_ONLY hides it from pg_settings, SHOW and
	 * current_setting() for roles without pg_read_all_settings.
	 *
	 * - No check hook: a rejected value makes PostgreSQL report "invalid
	 * value for parameter ...: <value>", which would copy the password into
	 * the server log.  The worker validates the syntax when it starts.
	 *
	 * - Restart-only: on reload the postmaster logs 'parameter "X" changed
	 * to "<value>"' for every changed reloadable setting, but only "cannot
	 * be changed without restarting the server" for PGC_POSTMASTER ones.
	 */
	DefineCustomStringVariable("driftlock.kafka_properties",
							   "Extra librdkafka settings, e.g. TLS and SASL (key=value;key=value, restart).",
							   "Semicolon-separated librdkafka configuration properties, for example security.protocol=SASL_SSL;sasl.username=u;sasl.password=p.  Not listed in pg_settings or SHOW ALL; SHOW shows it to superusers, and to members of pg_read_all_settings with every value masked.  Checked by the Kafka worker when it starts.  Requires a server restart.",
							   &driftlock_kafka_properties,
							   "",
							   restart_context,
							   /*
								* NO_SHOW_ALL: pg_settings would show the raw
								* reset_val to pg_read_all_settings members
								*/
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, show_kafka_properties);

	MarkGUCPrefixReserved("driftlock");
}
