/*
 * feedback.c -- events marked normal, learnt by their stream's detector
 *
 * driftlock_mark_normal() and driftlock_mark_normal_incident() only insert
 * rows into driftlock.feedback.  The writer of the stream (the Kafka worker,
 * or driftlock_observe()) learns them before the stream's next event and
 * marks them applied in the same transaction, with the event count and the
 * Kafka message before which they took effect (for an OpenTelemetry
 * batch: before the stream's first log record in it).  A crash before that commit
 * rolls both back, so the replay learns the feedback before the same
 * message again and gives the same verdicts.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "detector_glue.h"
#include "feedback.h"
#include "metrics.h"
#include "spi_plans.h"

static CachedStatement pending_streams_stmt = {
	"SELECT DISTINCT stream_id FROM driftlock.feedback WHERE applied_at IS NULL",
	0, {InvalidOid}, NULL
};

static CachedStatement pending_stmt = {
	"SELECT id, payload FROM driftlock.feedback WHERE stream_id = $1 AND applied_at IS NULL "
	"ORDER BY id FOR UPDATE",
	1, {UUIDOID}, NULL
};

static CachedStatement applied_stmt = {
	"UPDATE driftlock.feedback SET applied_at = now(), applied_event = $2, "
	"applied_kafka_topic = $3, applied_kafka_partition = $4, applied_kafka_offset = $5 "
	"WHERE id = $1",
	5, {INT8OID, INT8OID, TEXTOID, INT4OID, INT8OID}, NULL
};

/*
 * Streams with pending feedback, in TopTransactionContext: only valid in
 * the transaction that called feedback_batch_begin(), which the worker does
 * first in each of its transactions.
 */
static List *pending_streams = NIL;

void
feedback_batch_begin(void)
{
	int			ret;
	MemoryContext old;

	pending_streams = NIL;
	ret = spi_run(&pending_streams_stmt, NULL, NULL, true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "looking up pending feedback failed: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(TopTransactionContext);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
			   sizeof(pg_uuid_t));
		pending_streams = lappend(pending_streams, id);
	}
	MemoryContextSwitchTo(old);
}

bool
feedback_pending(const pg_uuid_t *stream_id)
{
	ListCell   *lc;

	foreach(lc, pending_streams)
		if (memcmp(lfirst(lc), stream_id, sizeof(pg_uuid_t)) == 0)
			return true;
	return false;
}

static void
forget_pending(const pg_uuid_t *stream_id)
{
	ListCell   *lc;

	foreach(lc, pending_streams)
		if (memcmp(lfirst(lc), stream_id, sizeof(pg_uuid_t)) == 0)
		{
			pending_streams = foreach_delete_current(pending_streams, lc);
			return;
		}
}

int
feedback_apply(const pg_uuid_t *stream_id, cbad_detector *det, const AnomalySource *src)
{
	return feedback_apply_keep(stream_id, det, src, NULL, NULL);
}

int
feedback_apply_keep(const pg_uuid_t *stream_id, cbad_detector *det, const AnomalySource *src,
					List **learnt, MemoryContext cxt)
{
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	SPITupleTable *rows;
	uint64		n;
	cbad_stats	stats;
	int			ret;

	forget_pending(stream_id);
	args[0] = UUIDPGetDatum(stream_id);
	ret = spi_run(&pending_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "loading pending feedback failed: %s", SPI_result_code_string(ret));
	rows = SPI_tuptable;
	n = SPI_processed;
	if (n == 0)
		return 0;

	cbad_detector_stats(det, &stats);
	args[1] = Int64GetDatum((int64) stats.events);
	incidents_source_args(src, &args[2], &nulls[2]);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		bytea	   *payload = DatumGetByteaPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));

		driftlock_report_status(cbad_detector_learn(det, (const uint8_t *) VARDATA_ANY(payload),
													VARSIZE_ANY_EXHDR(payload)),
								"learning an event marked normal");
		if (learnt != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			*learnt = lappend(*learnt, PG_DETOAST_DATUM_COPY(PointerGetDatum(payload)));
			MemoryContextSwitchTo(old);
		}
		args[0] = Int64GetDatum(id);
		ret = spi_run(&applied_stmt, args, nulls, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "marking feedback applied failed: %s", SPI_result_code_string(ret));
	}
	metrics_count_feedback((int64) n);
	return (int) n;
}
