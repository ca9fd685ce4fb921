/*
 * stream_autocreate.c -- streams on demand: the Kafka worker creates the
 * stream a message names when driftlock.streams has none by that name
 *
 * With driftlock.kafka_auto_create_streams on, a stream id that is a name
 * (not a UUID: creating streams by id would let producers choose ids) and
 * names no stream becomes a new stream with the settings of
 * driftlock.kafka_stream_template, and its message is scored.  The insert
 * is INSERT ... ON CONFLICT (name) DO NOTHING followed, when another
 * worker won, by reading that worker's row back: two workers creating the
 * same name at once end with one stream.
 *
 * driftlock.kafka_max_streams bounds the table: the streams are counted
 * once per transaction (batch), at its first creation, and what the batch
 * creates is added to that count.  Workers do not wait for each other, so
 * the bound is exceeded by at most what concurrent workers create in one
 * batch each (driftlock.kafka_max_in_flight streams a worker at most).
 *
 * The insert sends no invalidation of the workers' stream lookups
 * (stream_lookup.c): the worker remembers the new stream itself, and a
 * lookup that remembers the name as unknown elsewhere is read back from
 * the table before it is trusted (over the limit, or in a replay).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "guc.h"
#include "metrics.h"
#include "spi_plans.h"
#include "stream_autocreate.h"
#include "stream_config.h"
#include "stream_lookup.h"

/* the longest name driftlock.streams accepts (CHECK streams_name_valid) */
#define STREAM_NAME_MAX 200

/* streams counted in this transaction (-1: not yet), and created by it */
static int64 counted = -1;
static int64 created = 0;
static bool callback_registered = false;
/* driftlock.kafka_auto_create_streams at the last lookup */
static bool was_creating = false;

static void
autocreate_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		counted = -1;
		created = 0;
	}
}

static int64
count_streams(void)
{
	static CachedStatement count_stmt = {
		"SELECT count(*) FROM driftlock.streams", 0, {InvalidOid}, NULL
	};
	bool		isnull;
	int			ret = spi_run(&count_stmt, NULL, NULL, false, 1);

	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "counting the streams failed: %s", SPI_result_code_string(ret));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The stream of the row SPI returned: id, config, learn_only. */
static void
read_stream(pg_uuid_t *id, cbad_config *cfg, bool *learn_only)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		d;

	d = SPI_getbinval(tup, desc, 1, &isnull);
	memcpy(id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	driftlock_config_from_jsonb(isnull ? NULL : DatumGetJsonbP(d), cfg);
	d = SPI_getbinval(tup, desc, 3, &isnull);
	*learn_only = !isnull && DatumGetBool(d);
}

/* The stream of that name, with a new snapshot: false if there is none. */
static bool
read_back(const char *name, pg_uuid_t *id, cbad_config *cfg, bool *learn_only)
{
	static CachedStatement read_stmt = {
		"SELECT id, config, learn_only FROM driftlock.streams WHERE name = $1",
		1, {TEXTOID}, NULL
	};
	Datum		args[1] = {CStringGetTextDatum(name)};
	int			ret = spi_run(&read_stmt, args, NULL, false, 1);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading a stream back failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		return false;
	read_stream(id, cfg, learn_only);
	return true;
}

/*
 * Insert the stream, or read back the one another worker inserted at the
 * same time; false if there is none after all (deleted since).
 */
static bool
create_stream(const char *name, pg_uuid_t *id, cbad_config *cfg, bool *learn_only)
{
	static CachedStatement insert_stmt = {
		"INSERT INTO driftlock.streams (name, config) VALUES ($1, $2::jsonb) "
		"ON CONFLICT (name) DO NOTHING RETURNING id, config, learn_only",
		2, {TEXTOID, TEXTOID}, NULL
	};
	Datum		args[2];
	volatile int ret = 0;

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(driftlock_kafka_stream_template);
	/* the row is remembered below: no need to drop every lookup for it */
	stream_lookup_own_insert(true);
	PG_TRY();
	{
		ret = spi_run(&insert_stmt, args, NULL, false, 0);
	}
	PG_FINALLY();
	{
		stream_lookup_own_insert(false);
	}
	PG_END_TRY();
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "creating a stream failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		read_stream(id, cfg, learn_only);
		created++;
		metrics_count_stream_created();
		ereport(LOG,
				(errmsg("driftlock created stream \"%s\" for a Kafka message", name),
				 errdetail("driftlock.kafka_auto_create_streams is on.")));
		return true;
	}
	/* another worker's, committed (ON CONFLICT waited): a new snapshot sees it */
	return read_back(name, id, cfg, learn_only);
}

StreamResolution
stream_resolve(const char *key, StreamCreation creation, pg_uuid_t *id, cbad_config *cfg,
			   bool *learn_only)
{
	bool		over_limit = false;

	/*
	 * Unknown names remembered while streams were created on demand may have
	 * been created since by other workers, unannounced (stream_lookup.c):
	 * forget them when creating stops, and read them back below otherwise.
	 */
	if (was_creating && !driftlock_kafka_auto_create_streams)
		stream_lookup_forget();
	was_creating = driftlock_kafka_auto_create_streams;
	if (stream_lookup_find(key, id, cfg, learn_only))
		return STREAM_FOUND;
	if (!driftlock_kafka_auto_create_streams || stream_key_is_uuid(key) ||
		pg_mbstrlen(key) > STREAM_NAME_MAX)
		return STREAM_UNKNOWN;
	if (!callback_registered)
	{
		RegisterXactCallback(autocreate_xact_callback, NULL);
		callback_registered = true;
	}
	if (creation != STREAM_FIND_ONLY && driftlock_kafka_max_streams > 0)
	{
		if (counted < 0)
			counted = count_streams();
		over_limit = counted + created >= driftlock_kafka_max_streams;
	}
	if (creation == STREAM_FIND_ONLY || over_limit)
	{
		if (!read_back(key, id, cfg, learn_only))
			return over_limit ? STREAM_OVER_LIMIT : STREAM_UNKNOWN;
	}
	else if (!create_stream(key, id, cfg, learn_only))
		return STREAM_UNKNOWN;
	stream_lookup_remember(key, id, cfg, *learn_only);
	if (creation != STREAM_CREATE)
	{
		/*
		 * The batch's read-only statements (the detector's load in
		 * detector_cache.c) read with the snapshot taken at its start, which
		 * sees neither this insert nor another worker's row: take a new
		 * one, as a statement that writes would.
		 */
		PopActiveSnapshot();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	return STREAM_FOUND;
}

void
stream_limit_detail(char *buf, size_t len)
{
	snprintf(buf, len,
			 "driftlock.streams has driftlock.kafka_max_streams (%d) streams or more; no stream is created for this name.",
			 driftlock_kafka_max_streams);
}

/*
 * Check hook of driftlock.kafka_stream_template: a jsonb object of detector
 * settings, with the checks of driftlock.streams.config (stream_config.c).
 * Their errors become the setting's: the checks only parse, so catching
 * the error without a subtransaction leaves nothing behind.
 */
bool
check_kafka_stream_template(char **newval, void **extra, GucSource source)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		Datum		jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(*newval));
		cbad_config cfg;

		driftlock_config_from_jsonb(DatumGetJsonbP(jb), &cfg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		GUC_check_errdetail("%c%s.%s%s", pg_toupper((unsigned char) edata->message[0]),
							edata->message + 1, edata->detail ? " " : "",
							edata->detail ? edata->detail : "");
		GUC_check_errhint("%s", edata->hint ? edata->hint
						  : "Use a JSON object of detector settings, for example '{\"alpha\": 0.01}', or '{}' for the defaults.");
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
