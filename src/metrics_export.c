/*
 * metrics_export.c -- the counters as the driftlock.metrics view and in
 * the Prometheus text exposition, and their reset
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "driftlock.h"
#include "guc.h"
#include "metrics.h"
#include "metrics_internal.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_metrics);
DRIFTLOCK_SQL_FUNCTION(driftlock_prometheus);
DRIFTLOCK_SQL_FUNCTION(driftlock_metrics_reset);

typedef struct Sample
{
	const char *metric;
	bool		has_stream;
	pg_uuid_t	stream;
	const char *label_keys[3];
	char	   *label_values[3];
	int			nlabels;
	double		value;
} Sample;

typedef struct SampleList
{
	Sample	   *items;
	int			len;
	int			cap;
} SampleList;

static Sample *
add_sample(SampleList *l, const char *metric, double value)
{
	Sample	   *s;

	if (l->len == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 64;
		l->items = l->items ? repalloc(l->items, sizeof(Sample) * l->cap)
			: palloc(sizeof(Sample) * l->cap);
	}
	s = &l->items[l->len++];
	memset(s, 0, sizeof(*s));
	s->metric = metric;
	s->value = value;
	return s;
}

static void
add_label(Sample *s, const char *key, char *value)
{
	s->label_keys[s->nlabels] = key;
	s->label_values[s->nlabels] = value;
	s->nlabels++;
}

static void
require_shared(void)
{
	if (metrics_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("driftlock must be loaded via shared_preload_libraries"),
				 errhint("Add driftlock to shared_preload_libraries in postgresql.conf and restart the server.")));
}

typedef struct NameEntry
{
	pg_uuid_t	id;				/* hash key */
	char	   *name;
} NameEntry;

/* Names of the streams that still exist, for the "stream" label. */
static HTAB *
stream_names(void)
{
	HTAB	   *names = NULL;
	HASHCTL		ctl;
	int			ret;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(NameEntry);
	ctl.hcxt = CurrentMemoryContext;
	names = hash_create("driftlock stream names", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	SPI_connect();
	ret = SPI_execute("SELECT id, name FROM driftlock.streams", true, 0);
	if (ret == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
			NameEntry  *e = hash_search(names, DatumGetUUIDP(id), HASH_ENTER, NULL);

			e->name = MemoryContextStrdup(ctl.hcxt, name ? name : "");
		}
	}
	SPI_finish();
	return names;
}

/*
 * Open incidents of this database by severity band: a gauge read from
 * driftlock.incidents, the truth that counters could drift from.
 */
static void
open_incidents(SampleList *l)
{
	int			ret;
	double		open[METRICS_BANDS] = {0, 0, 0};

	SPI_connect();
	/* before ALTER EXTENSION driftlock UPDATE there is no such table */
	ret = SPI_execute("SELECT pg_catalog.to_regclass('driftlock.incidents') IS NOT NULL", true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1 &&
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
		ret = SPI_execute("SELECT CASE WHEN severity >= 75 THEN 2 WHEN severity >= 50 THEN 1 ELSE 0 END, "
						  "count(*) FROM driftlock.incidents WHERE status = 'open' GROUP BY 1",
						  true, 0);
	else
		ret = SPI_ERROR_NOATTRIBUTE;
	if (ret == SPI_OK_SELECT)
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int			band = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));

			if (band >= 0 && band < METRICS_BANDS)
				open[band] = (double) n;
		}
	SPI_finish();
	for (int i = 0; i < METRICS_BANDS; i++)
		add_label(add_sample(l, "driftlock_incidents_open", open[i]),
				  "severity", pstrdup(metrics_bands[i]));
}

static SampleList *
collect_samples(void)
{
	SampleList *l = palloc0(sizeof(SampleList));
	HTAB	   *names;
	uint64		cumulative = 0;
	uint32		detectors = 0;
	uint64		cache_bytes = 0;

	require_shared();
	names = stream_names();

	add_sample(l, "driftlock_events_processed_total", (double) metrics_counter(C_EVENTS));
	add_sample(l, "driftlock_anomalies_detected_total", (double) metrics_counter(C_ANOMALIES));
	LWLockAcquire(metrics_shared->lock, LW_SHARED);
	for (int i = 0; i < metrics_shared->nstreams; i++)
	{
		StreamCounters *sc = &metrics_shared->streams[i];
		NameEntry  *name = hash_search(names, &sc->id, HASH_FIND, NULL);
		Sample	   *s;

		s = add_sample(l, "driftlock_stream_events_total", (double) pg_atomic_read_u64(&sc->events));
		s->has_stream = true;
		s->stream = sc->id;
		if (name)
			add_label(s, "stream", name->name);
		s = add_sample(l, "driftlock_stream_anomalies_total", (double) pg_atomic_read_u64(&sc->anomalies));
		s->has_stream = true;
		s->stream = sc->id;
		if (name)
			add_label(s, "stream", name->name);
	}
	LWLockRelease(metrics_shared->lock);
	add_sample(l, "driftlock_stream_overflow_events_total", (double) metrics_counter(C_OVERFLOW_EVENTS));
	add_sample(l, "driftlock_stream_overflow_anomalies_total", (double) metrics_counter(C_OVERFLOW_ANOMALIES));
	for (int i = 0; i < METRICS_REASONS; i++)
		add_label(add_sample(l, "driftlock_dead_letters_total",
							 (double) metrics_counter(C_DEAD_LETTERS + i)),
				  "reason", pstrdup(metrics_reasons[i]));

	for (int i = 0; i < METRICS_BANDS; i++)
	{
		add_label(add_sample(l, "driftlock_incidents_total", (double) metrics_counter(C_INCIDENTS_OPENED + i)),
				  "severity", pstrdup(metrics_bands[i]));
		add_label(add_sample(l, "driftlock_incident_escalations_total",
							 (double) metrics_counter(C_INCIDENTS_ESCALATED + i)),
				  "severity", pstrdup(metrics_bands[i]));
	}
	open_incidents(l);
	add_sample(l, "driftlock_anomalies_suppressed_total", (double) metrics_counter(C_ANOMALIES_SUPPRESSED));
	add_sample(l, "driftlock_feedback_learnt_total", (double) metrics_counter(C_FEEDBACK_LEARNT));

	LWLockAcquire(metrics_shared->lock, LW_SHARED);
	for (int i = 0; i < MAX_PARTITIONS; i++)
	{
		PartitionLag *pl = &metrics_shared->lags[i];
		Sample	   *s;

		if (pl->owner < 0)
			continue;
		s = add_sample(l, "driftlock_kafka_consumer_lag", (double) pl->lag);
		add_label(s, "topic", pstrdup(pl->topic));
		add_label(s, "partition", psprintf("%d", pl->partition));
	}
	for (int i = 0; i < metrics_shared->nlosses; i++)
	{
		PartitionLoss *pl = &metrics_shared->losses[i];
		Sample	   *s = add_sample(l, "driftlock_messages_lost_total", (double) pl->lost);

		add_label(s, "topic", pstrdup(pl->topic));
		add_label(s, "partition", psprintf("%d", pl->partition));
		add_label(s, "reason", pstrdup("retention"));
	}
	LWLockRelease(metrics_shared->lock);

	for (int i = 0; i < (int) LATENCY_BUCKETS; i++)
	{
		cumulative += metrics_counter(C_LATENCY + i);
		add_label(add_sample(l, "driftlock_batch_duration_seconds_bucket", (double) cumulative),
				  "le", i < (int) lengthof(metrics_latency_bounds) ? psprintf("%g", metrics_latency_bounds[i]) : pstrdup("+Inf"));
	}
	add_sample(l, "driftlock_batch_duration_seconds_sum",
			   (double) metrics_counter(C_LATENCY_SUM_US) / 1e6);
	add_sample(l, "driftlock_batch_duration_seconds_count", (double) cumulative);
	add_sample(l, "driftlock_batches_total", (double) metrics_counter(C_BATCHES));
	add_sample(l, "driftlock_detector_cache_hits_total", (double) metrics_counter(C_CACHE_HITS));
	add_sample(l, "driftlock_detector_cache_misses_total", (double) metrics_counter(C_CACHE_MISSES));
	add_sample(l, "driftlock_detector_cache_evictions_total", (double) metrics_counter(C_CACHE_EVICTIONS));
	for (int i = 0; i < MAX_WORKERS; i++)
	{
		detectors += pg_atomic_read_u32(&metrics_shared->detectors[i]);
		cache_bytes += pg_atomic_read_u64(&metrics_shared->cache_bytes[i]);
	}
	add_sample(l, "driftlock_detectors_active", (double) detectors);
	add_sample(l, "driftlock_detector_cache_bytes", (double) cache_bytes);
	add_sample(l, "driftlock_checkpoints_total", (double) metrics_counter(C_CHECKPOINTS));
	add_sample(l, "driftlock_messages_replayed_total", (double) metrics_counter(C_REPLAYED));
	add_sample(l, "driftlock_worker_restarts_total", (double) metrics_counter(C_WORKER_RESTARTS));
	for (int i = 0; i < METRICS_PURGE_TABLES; i++)
		add_label(add_sample(l, "driftlock_rows_purged_total",
							 (double) metrics_counter(C_ROWS_PURGED + i)),
				  "table", pstrdup(metrics_purge_tables[i]));
	add_sample(l, "driftlock_dead_letter_payloads_dropped_total",
			   (double) metrics_counter(C_PAYLOADS_DROPPED));
	add_sample(l, "driftlock_streams_created_total", (double) metrics_counter(C_STREAMS_CREATED));
	LWLockAcquire(metrics_shared->lock, LW_SHARED);
	add_sample(l, "driftlock_stats_reset_time_seconds",
			   (double) (metrics_shared->stats_reset - SetEpochTimestamp()) / USECS_PER_SEC);
	LWLockRelease(metrics_shared->lock);
	return l;
}

static char *
labels_json(const Sample *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < s->nlabels; i++)
	{
		if (i)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, s->label_keys[i]);
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, s->label_values[i]);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * driftlock_metrics() returns setof (metric text, stream_id uuid,
 * labels jsonb, value double precision): the rows of driftlock.metrics.
 */
Datum
driftlock_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SampleList *l;

	InitMaterializedSRF(fcinfo, 0);
	l = collect_samples();
	for (int i = 0; i < l->len; i++)
	{
		Sample	   *s = &l->items[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(s->metric);
		if (s->has_stream)
		{
			pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

			*u = s->stream;
			values[1] = UUIDPGetDatum(u);
		}
		else
			nulls[1] = true;
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(labels_json(s)));
		values[3] = Float8GetDatum(s->value);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Prometheus label value escaping: backslash, double quote, newline. */
static void
append_label_value(StringInfo buf, const char *v)
{
	for (; *v; v++)
	{
		if (*v == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*v == '"')
			appendStringInfoString(buf, "\\\"");
		else if (*v == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *v);
	}
}

typedef struct Family
{
	const char *name;
	const char *type;
	const char *help;
} Family;

static const Family families[] = {
	{"driftlock_events_processed_total", "counter", "Events run through a detector (Kafka messages that were not dead letters, or their log records for OpenTelemetry batches, and driftlock_observe calls)."},
	{"driftlock_anomalies_detected_total", "counter", "Anomalies recorded in driftlock.anomalies."},
	{"driftlock_stream_events_total", "counter", "Events run through a detector, per stream."},
	{"driftlock_stream_anomalies_total", "counter", "Anomalies recorded, per stream."},
	{"driftlock_stream_overflow_events_total", "counter", "Events of streams beyond driftlock.metrics_max_streams."},
	{"driftlock_stream_overflow_anomalies_total", "counter", "Anomalies of streams beyond driftlock.metrics_max_streams."},
	{"driftlock_dead_letters_total", "counter", "Messages recorded in driftlock.dead_letters, by reason."},
	{"driftlock_incidents_total", "counter", "Incidents opened, by the severity band they opened in (low < 50 <= medium < 75 <= high)."},
	{"driftlock_incident_escalations_total", "counter", "Incidents whose severity rose into a higher band, by the band reached."},
	{"driftlock_incidents_open", "gauge", "Open incidents of this database, by severity band."},
	{"driftlock_anomalies_suppressed_total", "counter", "Anomalies recorded with no incident because their pattern was suppressed."},
	{"driftlock_feedback_learnt_total", "counter", "Events marked normal that a stream's detector learnt."},
	{"driftlock_kafka_consumer_lag", "gauge", "Messages in a partition after the next offset to process (high watermark minus next offset)."},
	{"driftlock_messages_lost_total", "counter", "Messages of a partition that Kafka's retention deleted before driftlock read them (each range is a retention_gap dead letter)."},
	{"driftlock_batch_duration_seconds", "histogram", "Time from a batch's first message to its commit."},
	{"driftlock_batches_total", "counter", "Batches committed by the Kafka workers."},
	{"driftlock_detector_cache_hits_total", "counter", "Stream detectors found in a worker's cache."},
	{"driftlock_detector_cache_misses_total", "counter", "Stream detectors loaded from driftlock.stream_state."},
	{"driftlock_detector_cache_evictions_total", "counter", "Stream detectors dropped from a worker's cache to stay within driftlock.detector_cache_memory or driftlock.detector_cache_size."},
	{"driftlock_detectors_active", "gauge", "Stream detectors cached in the Kafka workers."},
	{"driftlock_detector_cache_bytes", "gauge", "Memory of the stream detectors cached in the Kafka workers."},
	{"driftlock_checkpoints_total", "counter", "Checkpoints of the Kafka workers: the changed detectors saved with the offsets they correspond to."},
	{"driftlock_messages_replayed_total", "counter", "Messages read again after a crash or a failed batch, which only the detectors learnt (their results were committed before)."},
	{"driftlock_worker_restarts_total", "counter", "Times a Kafka worker started again after exiting."},
	{"driftlock_rows_purged_total", "counter", "Rows deleted for being older than driftlock.retention (by Kafka worker 0) or by driftlock_purge(), by table."},
	{"driftlock_dead_letter_payloads_dropped_total", "counter", "Dead letters recorded without their payload because their partition had driftlock.dead_letter_rate_limit of them in that minute already."},
	{"driftlock_streams_created_total", "counter", "Streams the Kafka workers created for unknown stream names (driftlock.kafka_auto_create_streams)."},
	{"driftlock_stats_reset_time_seconds", "gauge", "Unix time of the last reset of these counters."},
	{NULL, NULL, NULL}
};

static const Family *
family_of(const char *metric)
{
	for (const Family *f = families; f->name; f++)
	{
		size_t		n = strlen(f->name);

		if (strncmp(metric, f->name, n) == 0 &&
			(metric[n] == '\0' || strcmp(f->type, "histogram") == 0))
			return f;
	}
	return NULL;
}

/* driftlock_prometheus() returns text: the Prometheus text exposition. */
Datum
driftlock_prometheus(PG_FUNCTION_ARGS)
{
	SampleList *l = collect_samples();
	StringInfoData buf;

	initStringInfo(&buf);
	for (const Family *f = families; f->name; f++)
	{
		appendStringInfo(&buf, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
		for (int i = 0; i < l->len; i++)
		{
			Sample	   *s = &l->items[i];
			bool		first = true;

			if (family_of(s->metric) != f)
				continue;
			appendStringInfoString(&buf, s->metric);
			if (s->has_stream || s->nlabels > 0)
			{
				appendStringInfoChar(&buf, '{');
				if (s->has_stream)
				{
					appendStringInfo(&buf, "stream_id=\"%s\"",
									 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&s->stream))));
					first = false;
				}
				for (int k = 0; k < s->nlabels; k++)
				{
					appendStringInfo(&buf, "%s%s=\"", first ? "" : ",", s->label_keys[k]);
					append_label_value(&buf, s->label_values[k]);
					appendStringInfoChar(&buf, '"');
					first = false;
				}
				appendStringInfoChar(&buf, '}');
			}
			if (s->value == floor(s->value) && fabs(s->value) < 1e15)
				appendStringInfo(&buf, " %.0f\n", s->value);
			else
				appendStringInfo(&buf, " %.17g\n", s->value);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/* driftlock_metrics_reset() returns void */
Datum
driftlock_metrics_reset(PG_FUNCTION_ARGS)
{
	require_shared();
	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	metrics_reset_counters(metrics_shared);
	LWLockRelease(metrics_shared->lock);
	PG_RETURN_VOID();
}
