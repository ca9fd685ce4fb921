/*
 * incidents.c -- anomalies recorded with their incident, suppressions,
 * severity and the notification at commit
 *
 * An incident is one stream's anomalies of one key (cbad_verdict's
 * incident_key: the pattern, or for an anomaly inside a known pattern the
 * pattern and the first token new to the stream) while they keep coming:
 * an anomaly joins the latest incident of its key when it comes within
 * driftlock.incident_quiet_period of that incident's last anomaly, and
 * opens a new one otherwise.  Time here is event time -- the Kafka
 * message's timestamp, else the transaction's start -- so a replay of the
 * same messages after a crash groups them the same way, however long the
 * replay takes.  driftlock_resolve_incidents() (run by the worker every few
 * seconds) only sets the status of incidents already past their quiet
 * period; the grouping never depends on it.
 *
 * Severity (0-100) says how surely and how much: with e the smallest
 * p-value's distance beyond alpha in orders of alpha, ln(1/p) / ln(1/alpha),
 * plus log10 of the number of anomalies,
 *
 *   severity = 100 * (1 - 1/e^2)      (0 when e <= 1)
 *
 * One anomaly just at alpha is 0; p = alpha^2 (1e-4 at the default alpha),
 * or ten anomalies at alpha, is 75, where high starts; p = alpha^4 is 94.
 * The p-values are the stream's own calibration, so severity is normalised
 * per stream.  Bands: low < 50 <= medium < 75 <= high.
 *
 * Every statement is parameterised; nothing is built from payloads.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "incidents.h"
#include "message_metadata.h"
#include "metrics.h"
#include "offset_fence.h"
#include "spi_plans.h"

/*
 * Everything an anomaly needs to know before it is written, in one round
 * trip: whether its Kafka message was recorded already, whether its pattern
 * is suppressed, its key's latest incident (locked: concurrent writers of a
 * stream take turns), and an id for it, so that the anomaly is inserted
 * once, complete, after its incident.
 */
static CachedStatement prepare_stmt = {
	"SELECT EXISTS (SELECT FROM driftlock.anomalies WHERE kafka_topic = $4 "
	"AND kafka_partition = $5 AND kafka_offset = $6 AND kafka_record_index = $8), "
	"EXISTS (SELECT FROM driftlock.suppressions WHERE stream_id = $1 AND pattern_id = $3 "
	"AND lifted_at IS NULL AND until > $7), "
	"pg_catalog.nextval('driftlock.anomalies_id_seq'), "
	"i.id, i.status, i.last_seen, i.anomalies, i.min_p_value, i.severity "
	"FROM (SELECT) x LEFT JOIN LATERAL (SELECT id, status, last_seen, anomalies, min_p_value, severity "
	"FROM driftlock.incidents WHERE stream_id = $1 AND incident_key = $2 "
	"ORDER BY id DESC LIMIT 1 FOR UPDATE) i ON true",
	8, {UUIDOID, INT8OID, INT8OID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID, INT4OID}, NULL
};

/*
 * An anomaly, complete with its incident (a redelivery is not recorded
 * twice).  No conflict target: a time-partitioned driftlock.anomalies
 * (docs/operations.md) has the unique Kafka position on each partition,
 * not on the parent the target would have to name.
 */
static CachedStatement insert_anomaly_stmt = {
	"INSERT INTO driftlock.anomalies (id, stream_id, payload, score, p_value, ncd, "
	"compression_ratio, entropy, confidence, explanation, kafka_topic, kafka_partition, "
	"kafka_offset, kafka_timestamp, event_number, pattern_id, pattern, pattern_status, "
	"pattern_count, pattern_first_event, incident_key, incident_id, suppressed, "
	"kafka_timestamp_type, kafka_key, kafka_headers, kafka_record_index) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
	"$18, $19, $20, $21, $22, $23, $24, $25, $26::jsonb, $27) "
	"ON CONFLICT DO NOTHING",
	27, {INT8OID, UUIDOID, BYTEAOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID,
		TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID,
	TEXTOID, BYTEAOID, TEXTOID, INT4OID}, NULL
};

static CachedStatement resolve_stmt = {
	"UPDATE driftlock.incidents SET status = 'resolved', resolved_at = last_seen + $2, "
	"updated_at = now() WHERE id = $1 AND status = 'open'",
	2, {INT8OID, INTERVALOID}, NULL
};

/*
 * An anomaly joins its incident.  In an UPDATE every expression sees the old
 * row: min_p_value is the old one.  A false alarm stays one (see
 * join_or_open).
 */
static CachedStatement join_stmt = {
	"UPDATE driftlock.incidents SET "
	"status = CASE WHEN status = 'false_alarm' THEN status ELSE 'open' END, "
	"resolved_at = CASE WHEN status = 'false_alarm' THEN resolved_at END, "
	"anomalies = anomalies + 1, last_seen = greatest(last_seen, $2), last_event = $3, "
	"max_score = greatest(max_score, $4), "
	"top_anomaly_id = CASE WHEN $5 < min_p_value THEN $6 ELSE top_anomaly_id END, "
	"explanation = CASE WHEN $5 < min_p_value THEN $7 ELSE explanation END, "
	"min_p_value = least(min_p_value, $5), severity = $8, "
	"kafka_last_offset = CASE WHEN kafka_topic = $9 AND kafka_partition = $10 "
	"THEN $11 ELSE kafka_last_offset END, updated_at = now() WHERE id = $1",
	11, {INT8OID, TIMESTAMPTZOID, INT8OID, FLOAT8OID, FLOAT8OID, INT8OID, TEXTOID, INT4OID,
	TEXTOID, INT4OID, INT8OID}, NULL
};

static CachedStatement open_stmt = {
	"INSERT INTO driftlock.incidents (stream_id, incident_key, pattern_id, pattern, severity, "
	"anomalies, max_score, min_p_value, first_seen, last_seen, first_event, last_event, "
	"kafka_topic, kafka_partition, kafka_first_offset, kafka_last_offset, top_anomaly_id, "
	"explanation) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8, $9, $9, $10, $11, $12, $12, "
	"$13, $14) RETURNING id",
	14, {UUIDOID, INT8OID, INT8OID, TEXTOID, INT4OID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID,
	INT8OID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID}, NULL
};

static CachedStatement resolve_quiet_stmt = {
	"UPDATE driftlock.incidents SET status = 'resolved', resolved_at = last_seen + $1, "
	"updated_at = now() WHERE status = 'open' AND last_seen + $1 < now()",
	1, {INTERVALOID}, NULL
};

static CachedStatement notify_stmt = {
	"SELECT pg_catalog.pg_notify($1, $2)",
	2, {TEXTOID, TEXTOID}, NULL
};

int
incident_severity(double min_p_value, int64 anomalies, double alpha)
{
	double		p = min_p_value > 1e-300 ? min_p_value : 1e-300;
	double		e = log(1.0 / p) / log(1.0 / alpha) + log10((double) Max(anomalies, 1));

	if (!(e > 1))
		return 0;
	return (int) Min(100, lround(100.0 * (1.0 - 1.0 / (e * e))));
}

static int
severity_band(int severity)
{
	return severity >= 75 ? 2 : severity >= 50 ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * Notifications
 * ------------------------------------------------------------------------ */

/* A NOTIFY payload must stay under 8000 bytes: at most this many ids. */
#define NOTIFY_IDS_MAX 400

static int64 notify_ids[NOTIFY_IDS_MAX];
static int	notify_count = 0;		/* ids to send, may exceed NOTIFY_IDS_MAX */
static int	notify_max_severity = -1;

void
incidents_begin(void)
{
	notify_count = 0;
	notify_max_severity = -1;
}

static void
to_notify(int64 incident_id, int severity)
{
	for (int i = 0; i < Min(notify_count, NOTIFY_IDS_MAX); i++)
		if (notify_ids[i] == incident_id)
		{
			notify_max_severity = Max(notify_max_severity, severity);
			return;
		}
	if (notify_count < NOTIFY_IDS_MAX)
		notify_ids[notify_count] = incident_id;
	notify_count++;
	notify_max_severity = Max(notify_max_severity, severity);
}

void
incidents_notify(void)
{
	StringInfoData payload;
	Datum		args[2];
	int			ret;

	if (notify_count == 0 || driftlock_notify_channel == NULL || driftlock_notify_channel[0] == '\0')
	{
		incidents_begin();
		return;
	}
	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"incidents\":[");
	for (int i = 0; i < Min(notify_count, NOTIFY_IDS_MAX); i++)
		appendStringInfo(&payload, "%s" INT64_FORMAT, i ? "," : "", notify_ids[i]);
	appendStringInfo(&payload, "],\"max_severity\":%d", notify_max_severity);
	if (notify_count > NOTIFY_IDS_MAX)
		appendStringInfo(&payload, ",\"more\":%d", notify_count - NOTIFY_IDS_MAX);
	appendStringInfoChar(&payload, '}');
	args[0] = CStringGetTextDatum(driftlock_notify_channel);
	args[1] = CStringGetTextDatum(payload.data);
	ret = spi_run(&notify_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "notifying about incidents failed: %s", SPI_result_code_string(ret));
	incidents_begin();
}

/* ------------------------------------------------------------------------
 * Recording
 * ------------------------------------------------------------------------ */

static Datum
quiet_period(void)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (int64) driftlock_incident_quiet_period * USECS_PER_SEC;
	return IntervalPGetDatum(iv);
}

void
incidents_source_args(const AnomalySource *src, Datum *args, char *nulls)
{
	if (src->topic != NULL)
	{
		args[0] = CStringGetTextDatum(src->topic);
		args[1] = Int32GetDatum(src->partition);
		args[2] = Int64GetDatum(src->offset);
		nulls[0] = nulls[1] = nulls[2] = ' ';
	}
	else
		nulls[0] = nulls[1] = nulls[2] = 'n';
}

/* The id an INSERT ... RETURNING id just returned (ret: spi_run's result). */
static int64
returned_id(int ret, const char *what)
{
	bool		isnull;

	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(ret));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Check an UPDATE's result (ret: spi_run's result). */
static void
updated(int ret, const char *what)
{
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(ret));
}

/* The latest incident of the anomaly's key, as prepare_stmt read it. */
typedef struct LatestIncident
{
	int64		id;				/* 0: the key has none */
	bool		false_alarm;
	TimestampTz last_seen;
	int64		anomalies;
	double		min_p_value;
	int			severity;
} LatestIncident;

/*
 * Where the anomaly goes: into the latest incident of its key when it comes
 * within the quiet period of that incident's last anomaly, or into a new
 * incident (the latest, past its quiet period, is resolved).  Updates or
 * opens the incident and returns its id.
 *
 * An incident that reopens was resolved by the sweep while a late message
 * (event time) was on its way.  An incident marked a false alarm takes the
 * anomaly in silently: it stays closed and notifies nobody while its kind
 * keeps recurring -- the user said that this is normal, and the detector,
 * which has learnt the marked events, may still find neighbours of them in
 * its tail.  An anomaly of a key new to the stream (a pattern, or a new
 * token in a known one) has another key, so it opens an incident of its own.
 */
static int64
join_or_open(const pg_uuid_t *stream_id, int64 anomaly_id, const cbad_verdict *v,
			 const VerdictExtras *x, const char *explanation, double alpha,
			 TimestampTz event_time, const AnomalySource *src, const LatestIncident *latest)
{
	Datum		args[14];
	char		nulls[14];
	int			severity;
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	if (latest->id != 0)
	{
		if (event_time <= latest->last_seen + (int64) driftlock_incident_quiet_period * USECS_PER_SEC)
		{
			severity = incident_severity(Min(latest->min_p_value, v->p_value),
										 latest->anomalies + 1, alpha);
			args[0] = Int64GetDatum(latest->id);
			args[1] = TimestampTzGetDatum(event_time);
			args[2] = Int64GetDatum((int64) v->event_number);
			args[3] = Float8GetDatum(v->score);
			args[4] = Float8GetDatum(v->p_value);
			args[5] = Int64GetDatum(anomaly_id);
			args[6] = CStringGetTextDatum(explanation);
			args[7] = Int32GetDatum(severity);
			incidents_source_args(src, &args[8], &nulls[8]);
			updated(spi_run(&join_stmt, args, nulls, false, 0), "adding the anomaly to its incident");
			if (!latest->false_alarm && severity_band(severity) > severity_band(latest->severity))
			{
				metrics_count_incident(severity_band(severity), false);
				to_notify(latest->id, severity);
			}
			return latest->id;
		}
		/* past its quiet period: resolved (the sweep may not have come yet) */
		args[0] = Int64GetDatum(latest->id);
		args[1] = quiet_period();
		updated(spi_run(&resolve_stmt, args, NULL, false, 0), "resolving a quiet incident");
	}

	memset(nulls, ' ', sizeof(nulls));
	severity = incident_severity(v->p_value, 1, alpha);
	args[0] = UUIDPGetDatum(stream_id);
	args[1] = Int64GetDatum((int64) v->incident_key);
	args[2] = Int64GetDatum((int64) v->pattern_id);
	args[3] = CStringGetTextDatum(x->pattern);
	args[4] = Int32GetDatum(severity);
	args[5] = Float8GetDatum(v->score);
	args[6] = Float8GetDatum(v->p_value);
	args[7] = TimestampTzGetDatum(event_time);
	args[8] = Int64GetDatum((int64) v->event_number);
	incidents_source_args(src, &args[9], &nulls[9]);
	args[12] = Int64GetDatum(anomaly_id);
	args[13] = CStringGetTextDatum(explanation);
	id = returned_id(spi_run(&open_stmt, args, nulls, false, 0), "opening an incident");
	metrics_count_incident(severity_band(severity), true);
	to_notify(id, severity);
	return id;
}

bool
incidents_record_anomaly(const pg_uuid_t *stream_id, const cbad_detector *det,
						 const uint8_t *payload, size_t len, const cbad_verdict *v,
						 const VerdictExtras *x, const char *explanation,
						 const AnomalySource *src)
{
	Datum		args[27];
	char		nulls[27];
	Datum		meta[MESSAGE_METADATA_ARGS];
	char		meta_nulls[MESSAGE_METADATA_ARGS];
	Datum		numbers[5];
	bool		number_nulls[5];
	bytea	   *p;
	TimestampTz event_time = src->has_timestamp ? src->timestamp : GetCurrentTransactionStartTimestamp();
	LatestIncident latest = {0};
	bool		suppressed;
	int64		anomaly_id;
	int64		incident_id = 0;
	int			ret;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = UUIDPGetDatum(stream_id);
	args[1] = Int64GetDatum((int64) v->incident_key);
	args[2] = Int64GetDatum((int64) v->pattern_id);
	incidents_source_args(src, &args[3], &nulls[3]);
	args[6] = TimestampTzGetDatum(event_time);
	args[7] = Int32GetDatum(src->record_index);
	nulls[7] = ' ';
	ret = spi_run(&prepare_stmt, args, nulls, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "looking up the anomaly's incident failed: %s", SPI_result_code_string(ret));
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;

		/* a redelivered Kafka message finds its anomaly already there */
		if (DatumGetBool(SPI_getbinval(t, d, 1, &isnull)))
			return false;
		suppressed = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
		anomaly_id = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		latest.id = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
		if (isnull)
			latest.id = 0;
		else
		{
			char	   *status = SPI_getvalue(t, d, 5);

			latest.false_alarm = strcmp(status, "false_alarm") == 0;
			latest.last_seen = DatumGetTimestampTz(SPI_getbinval(t, d, 6, &isnull));
			latest.anomalies = DatumGetInt64(SPI_getbinval(t, d, 7, &isnull));
			latest.min_p_value = DatumGetFloat8(SPI_getbinval(t, d, 8, &isnull));
			latest.severity = DatumGetInt32(SPI_getbinval(t, d, 9, &isnull));
		}
	}

	if (suppressed)
		metrics_count_suppressed();
	else
		incident_id = join_or_open(stream_id, anomaly_id, v, x, explanation,
								   cbad_detector_config(det)->alpha, event_time, src, &latest);

	p = palloc(VARHDRSZ + len);
	SET_VARSIZE(p, VARHDRSZ + len);
	memcpy(VARDATA(p), payload, len);
	driftlock_verdict_numbers(v, numbers, number_nulls);
	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(anomaly_id);
	args[1] = UUIDPGetDatum(stream_id);
	args[2] = PointerGetDatum(p);
	for (int i = 0; i < 4; i++)
	{
		/* score, p_value, ncd, compression_ratio */
		args[3 + i] = numbers[i];
		nulls[3 + i] = number_nulls[i] ? 'n' : ' ';
	}
	args[7] = Float8GetDatum(x->entropy);
	args[8] = numbers[4];
	nulls[8] = number_nulls[4] ? 'n' : ' ';
	args[9] = CStringGetTextDatum(explanation);
	incidents_source_args(src, &args[10], &nulls[10]);
	args[13] = TimestampTzGetDatum(src->timestamp);
	nulls[13] = src->has_timestamp ? ' ' : 'n';
	args[14] = Int64GetDatum((int64) v->event_number);
	args[15] = Int64GetDatum((int64) v->pattern_id);
	args[16] = CStringGetTextDatum(x->pattern);
	args[17] = CStringGetTextDatum(cbad_pattern_status_name(v->pattern_status));
	args[18] = Int64GetDatum((int64) v->pattern_count);
	args[19] = Int64GetDatum((int64) v->pattern_first_event);
	args[20] = Int64GetDatum((int64) v->incident_key);
	args[21] = Int64GetDatum(incident_id);
	nulls[21] = incident_id == 0 ? 'n' : ' ';
	args[22] = BoolGetDatum(suppressed);
	/* kafka_timestamp_type, kafka_key, kafka_headers (the timestamp is $14) */
	if (src->message == NULL && src->metadata_args != NULL)
	{
		memcpy(meta, src->metadata_args, sizeof(meta));
		memcpy(meta_nulls, src->metadata_nulls, sizeof(meta_nulls));
	}
	else
		message_metadata_args(src->message, meta, meta_nulls);
	for (int i = 1; i < MESSAGE_METADATA_ARGS; i++)
	{
		args[22 + i] = meta[i];
		nulls[22 + i] = meta_nulls[i];
	}
	args[26] = Int32GetDatum(src->record_index);
	ret = spi_run(&insert_anomaly_stmt, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "recording the anomaly failed: %s", SPI_result_code_string(ret));
	/*
	 * Another worker recorded the message since prepare_stmt looked: it
	 * owns the partition now (a rebalance while this batch stalled).  This
	 * transaction's incident changes would count it twice, so it must not
	 * commit: the batch is fenced.
	 */
	if (SPI_processed != 1)
		fence_message_taken(src->topic, src->partition, src->offset, src->record_index);
	return true;
}

int
incidents_resolve_quiet(void)
{
	Datum		args[1] = {quiet_period()};

	updated(spi_run(&resolve_quiet_stmt, args, NULL, false, 0), "resolving quiet incidents");
	return (int) SPI_processed;
}
