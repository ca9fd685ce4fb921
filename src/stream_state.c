/*
 * stream_state.c -- a stream's detector, persisted in driftlock.stream_state
 *
 * The detector of a stream (baseline, calibration, drift window, counters)
 * is saved as bytes (src/cbad/cbad_state.c) so it survives restarts and every
 * backend sees it.  driftlock_score(stream_id, payload) scores against it
 * without changing it; driftlock_observe(stream_id, payload) scores, learns,
 * saves, and records an anomaly, under a row lock on the stream so that
 * concurrent observers of one stream take turns.
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
#include "stream_config.h"
#include "metrics.h"
#include "spi_plans.h"
#include "stream_state.h"

PG_FUNCTION_INFO_V1(driftlock_score_stream);
PG_FUNCTION_INFO_V1(driftlock_observe);

static CachedStatement load_stmt = {
	"SELECT s.config, st.state FROM driftlock.streams s "
	"LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id WHERE s.id = $1",
	1, {UUIDOID}, NULL
};

static CachedStatement load_for_update_stmt = {
	"SELECT s.config, st.state FROM driftlock.streams s "
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

/* a redelivered Kafka message finds its anomaly already there */
static CachedStatement insert_anomaly_stmt = {
	"INSERT INTO driftlock.anomalies (stream_id, payload, score, p_value, ncd, "
	"compression_ratio, entropy, confidence, explanation, kafka_topic, kafka_partition, kafka_offset) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
	"ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
	12, {UUIDOID, BYTEAOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
	FLOAT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID}, NULL
};

cbad_detector *
driftlock_stream_load(pg_uuid_t *stream_id, bool for_update, MemoryContext cxt)
{
	Datum		args[1] = {UUIDPGetDatum(stream_id)};
	cbad_allocator allocator = driftlock_allocator(cxt);
	cbad_detector *det = NULL;
	cbad_config cfg;
	bool		isnull;
	Datum		d;
	int			ret;

	ret = spi_run(for_update ? &load_for_update_stmt : &load_stmt, args, NULL, !for_update, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "loading stream state failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("driftlock stream %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(stream_id)))),
				 errhint("Streams are rows of driftlock.streams.")));

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	driftlock_config_from_jsonb(isnull ? NULL : DatumGetJsonbP(d), &cfg);

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!isnull)
	{
		bytea	   *state = DatumGetByteaPP(d);

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
		}
	}
	if (det == NULL)
		driftlock_report_status(cbad_detector_create(&cfg, &allocator, &det),
								"creating the stream's detector");
	return det;
}

void
driftlock_stream_save(pg_uuid_t *stream_id, const cbad_detector *det)
{
	Datum		args[3];
	uint8_t    *bytes;
	size_t		len;
	bytea	   *state;
	cbad_stats	stats;
	int			ret;

	driftlock_report_status(cbad_detector_serialize(det, &bytes, &len), "saving the stream's detector");
	state = palloc(VARHDRSZ + len);
	SET_VARSIZE(state, VARHDRSZ + len);
	memcpy(VARDATA(state), bytes, len);
	cbad_buffer_free(det, bytes);
	cbad_detector_stats(det, &stats);

	args[0] = UUIDPGetDatum(stream_id);
	args[1] = PointerGetDatum(state);
	args[2] = Int64GetDatum((int64) stats.events);
	ret = spi_run(&save_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "saving stream state failed: %s", SPI_result_code_string(ret));
	pfree(state);
}

bool
driftlock_anomaly_insert(pg_uuid_t *stream_id, const uint8_t *payload, size_t len,
						 const cbad_verdict *v, const char *explanation,
						 const char *topic, int32 partition, int64 offset)
{
	Datum		args[12];
	char		nulls[12];
	bytea	   *p = palloc(VARHDRSZ + len);
	int			ret;

	memset(nulls, ' ', sizeof(nulls));

	SET_VARSIZE(p, VARHDRSZ + len);
	memcpy(VARDATA(p), payload, len);
	args[0] = UUIDPGetDatum(stream_id);
	args[1] = PointerGetDatum(p);
	args[2] = Float8GetDatum(v->score);
	args[3] = Float8GetDatum(v->p_value);
	args[4] = Float8GetDatum(v->ncd);
	args[5] = Float8GetDatum(v->compression_ratio);
	args[6] = Float8GetDatum(v->entropy);
	args[7] = Float8GetDatum(v->confidence);
	args[8] = CStringGetTextDatum(explanation);
	if (topic != NULL)
	{
		args[9] = CStringGetTextDatum(topic);
		args[10] = Int32GetDatum(partition);
		args[11] = Int64GetDatum(offset);
	}
	else
		nulls[9] = nulls[10] = nulls[11] = 'n';
	ret = spi_run(&insert_anomaly_stmt, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "recording the anomaly failed: %s", SPI_result_code_string(ret));
	return SPI_processed == 1;
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
	size_t		len;
	const uint8_t *payload;

	SPI_connect();
	det = driftlock_stream_load(id, false, cxt);
	SPI_finish();
	payload = driftlock_payload_bytes(PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1),
									  (size_t) cbad_detector_config(det)->max_event_bytes, &len);
	driftlock_report_status(cbad_detector_score(det, payload, len, &verdict), "scoring the payload");
	PG_RETURN_DATUM(driftlock_verdict_datum(tupdesc, &verdict,
											driftlock_explanation(det, payload, len, &verdict)));
}

/*
 * driftlock_observe(stream_id uuid, payload text|bytea|jsonb)
 *		returns driftlock.verdict
 *
 * Scores payload, lets the stream's detector learn from it, saves the
 * detector, and records an anomaly in driftlock.anomalies when it is one:
 * what the Kafka worker does for a message, for events that arrive by SQL.
 */
Datum
driftlock_observe(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = PG_GETARG_UUID_P(0);
	MemoryContext cxt = CurrentMemoryContext;
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	cbad_detector *det;
	cbad_verdict verdict;
	char	   *explanation;
	MemoryContext old;
	size_t		len;
	/* whole: the anomaly row keeps the exact bytes */
	const uint8_t *payload = driftlock_payload_bytes(PG_GETARG_DATUM(1),
													 get_fn_expr_argtype(fcinfo->flinfo, 1), 0, &len);

	SPI_connect();
	det = driftlock_stream_load(id, true, cxt);
	driftlock_report_status(cbad_detector_observe(det, payload, len, &verdict), "scoring the payload");
	/* in the caller's context: SPI_finish frees SPI's */
	old = MemoryContextSwitchTo(cxt);
	explanation = driftlock_explanation(det, payload, len, &verdict);
	MemoryContextSwitchTo(old);
	metrics_count_event(id, verdict.is_anomaly &&
						driftlock_anomaly_insert(id, payload, len, &verdict, explanation, NULL, 0, 0));
	driftlock_stream_save(id, det);
	SPI_finish();
	PG_RETURN_DATUM(driftlock_verdict_datum(tupdesc, &verdict, explanation));
}
