/*
 * stream_state.c -- a stream's detector, persisted in driftlock.stream_state
 *
 * The detector of a stream (baseline, calibration, drift window, counters)
 * is saved as bytes (src/cbad/cbad_state.c) so it survives restarts and every
 * backend sees it.  driftlock_score(stream_id, payload) scores against it
 * without changing it; driftlock_observe(stream_id, payload) scores, learns,
 * saves, and records an anomaly with its incident, under a row lock on the
 * stream so that concurrent observers of one stream take turns.
 *
 * Every statement is parameterised; nothing is built from payloads.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "detector_glue.h"
#include "driftlock.h"
#include "feedback.h"
#include "incidents.h"
#include "stream_config.h"
#include "metrics.h"
#include "spi_plans.h"
#include "stream_state.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_score_stream);
DRIFTLOCK_SQL_FUNCTION(driftlock_observe);

static CachedStatement load_stmt = {
	"SELECT s.config, st.state, s.learn_only FROM driftlock.streams s "
	"LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id WHERE s.id = $1",
	1, {UUIDOID}, NULL
};

static CachedStatement load_for_update_stmt = {
	"SELECT s.config, st.state, s.learn_only FROM driftlock.streams s "
	"LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id WHERE s.id = $1 "
	"FOR UPDATE OF s",
	1, {UUIDOID}, NULL
};

static CachedStatement save_stmt = {
	"INSERT INTO driftlock.stream_state (stream_id, state, events, updated_at) "
	"VALUES ($1, $2, $3, now()) ON CONFLICT (stream_id) DO UPDATE "
	"SET state = excluded.state, events = excluded.events, updated_at = excluded.updated_at",
	3, {UUIDOID, BYTEAOID, INT8OID}, NULL
};

cbad_detector *
driftlock_stream_detector(Jsonb *config, bytea *state, MemoryContext cxt, bool *fresh)
{
	cbad_allocator allocator = driftlock_allocator(cxt);
	cbad_detector *det = NULL;
	cbad_config cfg;

	if (fresh != NULL)
		*fresh = false;
	driftlock_config_from_jsonb(config, &cfg);
	if (state != NULL)
	{
		driftlock_report_status(cbad_detector_deserialize((const uint8_t *) VARDATA_ANY(state),
														  VARSIZE_ANY_EXHDR(state),
														  &allocator, &det),
								"loading the stream's detector");
		if (!cbad_config_equal(cbad_detector_config(det), &cfg))
		{
			/* settings changed: the old baseline was built under other rules */
			ereport(NOTICE,
					(errmsg("the stream's detector settings changed since its state was saved; starting afresh")));
			cbad_detector_free(det);
			det = NULL;
			if (fresh != NULL)
				*fresh = true;
		}
	}
	if (det == NULL)
		driftlock_report_status(cbad_detector_create(&cfg, &allocator, &det),
								"creating the stream's detector");
	return det;
}

cbad_detector *
driftlock_stream_load(pg_uuid_t *stream_id, bool for_update, MemoryContext cxt,
					  bool *learn_only, bool *fresh)
{
	Datum		args[1] = {UUIDPGetDatum(stream_id)};
	bool		isnull;
	Datum		config;
	bool		config_null;
	Datum		state;
	int			ret;

	driftlock_check_schema();
	ret = spi_run(for_update ? &load_for_update_stmt : &load_stmt, args, NULL, !for_update, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "loading stream state failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("driftlock stream %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(stream_id)))),
				 errhint("Streams are rows of driftlock.streams.")));

	config = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &config_null);
	if (learn_only != NULL)
		*learn_only = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	state = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	return driftlock_stream_detector(config_null ? NULL : DatumGetJsonbP(config),
									 isnull ? NULL : DatumGetByteaPP(state), cxt, fresh);
}

/* The statement arguments of a detector's state: stream id, bytes, events. */
static void
state_args(pg_uuid_t *stream_id, const cbad_detector *det, Datum *args)
{
	uint8_t    *bytes;
	size_t		len;
	bytea	   *state;
	cbad_stats	stats;

	driftlock_report_status(cbad_detector_serialize(det, &bytes, &len), "saving the stream's detector");
	state = palloc(VARHDRSZ + len);
	SET_VARSIZE(state, VARHDRSZ + len);
	memcpy(VARDATA(state), bytes, len);
	cbad_buffer_free(det, bytes);
	cbad_detector_stats(det, &stats);

	args[0] = UUIDPGetDatum(stream_id);
	args[1] = PointerGetDatum(state);
	args[2] = Int64GetDatum((int64) stats.events);
}

void
driftlock_stream_save(pg_uuid_t *stream_id, const cbad_detector *det)
{
	Datum		args[3];
	int			ret;

	state_args(stream_id, det, args);
	ret = spi_run(&save_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "saving stream state failed: %s", SPI_result_code_string(ret));
	pfree(DatumGetPointer(args[1]));
}

bool
driftlock_stream_save_new(pg_uuid_t *stream_id, const cbad_detector *det)
{
	static CachedStatement save_new_stmt = {
		"INSERT INTO driftlock.stream_state (stream_id, state, events, updated_at) "
		"VALUES ($1, $2, $3, now()) ON CONFLICT (stream_id) DO NOTHING",
		3, {UUIDOID, BYTEAOID, INT8OID}, NULL
	};
	Datum		args[3];
	int			ret;

	state_args(stream_id, det, args);
	ret = spi_run(&save_new_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "saving stream state failed: %s", SPI_result_code_string(ret));
	pfree(DatumGetPointer(args[1]));
	return SPI_processed == 1;
}

bool
driftlock_installed_version(char *version, size_t cap)
{
	int			ret = SPI_execute("SELECT extversion FROM pg_catalog.pg_extension "
								  "WHERE extname = 'driftlock'", true, 1);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "looking up the installed version of driftlock failed: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	strlcpy(version, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), cap);
	return true;
}

void
driftlock_check_schema(void)
{
	static bool current = false;
	char		version[64];

	/* once current, always current: an update never goes back */
	if (current)
		return;
	if (!driftlock_installed_version(version, sizeof(version)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"driftlock\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION driftlock.")));
	if (strcmp(version, DRIFTLOCK_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("driftlock's SQL objects are version %s but its library is version %s",
						version, DRIFTLOCK_VERSION),
				 errhint("Run ALTER EXTENSION driftlock UPDATE.")));
	current = true;
}

bool
driftlock_stream_record(const pg_uuid_t *stream_id, const cbad_detector *det,
						const uint8_t *payload, size_t len, const cbad_verdict *v,
						const AnomalySource *src, VerdictExtras *extras, char **explanation)
{
	VerdictExtras own;
	bool		recorded = false;

	if (extras == NULL && v->is_anomaly)
		extras = &own;
	if (extras != NULL)
		driftlock_verdict_extras(det, payload, len, v, extras);
	if (explanation != NULL || v->is_anomaly)
	{
		char	   *text = driftlock_explanation(det, payload, len, v);

		if (v->is_anomaly)
			recorded = incidents_record_anomaly(stream_id, det, payload, len, v, extras, text, src);
		if (explanation != NULL)
			*explanation = text;
	}
	metrics_count_event(stream_id, recorded);
	return recorded;
}

/*
 * driftlock_score(stream_id uuid, payload text|bytea|jsonb)
 *		returns driftlock.verdict
 *
 * Scores payload against the stream's saved detector without changing it.
 * A stream with no saved state yet gives warm = false.
 */
Datum
driftlock_score_stream(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = PG_GETARG_UUID_P(0);
	MemoryContext cxt = CurrentMemoryContext;
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	cbad_detector *det;
	cbad_verdict verdict;
	VerdictExtras extras;
	size_t		len;
	const uint8_t *payload;

	SPI_connect();
	det = driftlock_stream_load(id, false, cxt, NULL, NULL);
	SPI_finish();
	payload = driftlock_payload_bytes(PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1),
									  (size_t) cbad_detector_config(det)->max_event_bytes, &len);
	driftlock_report_status(cbad_detector_score(det, payload, len, &verdict), "scoring the payload");
	driftlock_verdict_extras(det, payload, len, &verdict, &extras);
	PG_RETURN_DATUM(driftlock_verdict_datum(tupdesc, &verdict, &extras,
											driftlock_explanation(det, payload, len, &verdict)));
}

/*
 * driftlock_observe(stream_id uuid, payload text|bytea|jsonb)
 *		returns driftlock.verdict
 *
 * What the Kafka worker does for a message, for events that arrive by SQL:
 * learns the stream's pending feedback, scores the payload, lets the
 * detector learn from it (everything, for a learn-only stream), saves the
 * detector, and records an anomaly with its incident when it is one.
 */
Datum
driftlock_observe(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = PG_GETARG_UUID_P(0);
	MemoryContext cxt = CurrentMemoryContext;
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	AnomalySource src = {0};
	cbad_detector *det;
	cbad_verdict verdict;
	VerdictExtras extras;
	char	   *explanation;
	bool		learn_only;
	MemoryContext old;
	size_t		len;
	/* whole: the anomaly row keeps the exact bytes */
	const uint8_t *payload = driftlock_payload_bytes(PG_GETARG_DATUM(1),
													 get_fn_expr_argtype(fcinfo->flinfo, 1), 0, &len);

	SPI_connect();
	det = driftlock_stream_load(id, true, cxt, &learn_only, NULL);
	incidents_begin();
	feedback_apply(id, det, &src);
	driftlock_report_status(learn_only
							? cbad_detector_observe_learning(det, payload, len, &verdict)
							: cbad_detector_observe(det, payload, len, &verdict),
							"scoring the payload");
	/* in the caller's context: SPI_finish frees SPI's */
	old = MemoryContextSwitchTo(cxt);
	driftlock_stream_record(id, det, payload, len, &verdict, &src, &extras, &explanation);
	MemoryContextSwitchTo(old);
	driftlock_stream_save(id, det);
	incidents_notify();
	SPI_finish();
	PG_RETURN_DATUM(driftlock_verdict_datum(tupdesc, &verdict, &extras, explanation));
}
