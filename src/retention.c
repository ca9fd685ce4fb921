/*
 * retention.c -- rows older than driftlock.retention deleted by Kafka
 * worker 0 between batches, and driftlock_purge(older_than)
 *
 * What goes, older than the cutoff (now minus the retention):
 *
 *   driftlock.anomalies      detected_at before it (feedback keeps its own
 *                            copy of the payload; its anomaly_id becomes
 *                            NULL through the foreign key)
 *   driftlock.dead_letters   received_at before it, except those a replay
 *                            still needs: replay.c skips the dead letters
 *                            between a partition's checkpoint offset and its
 *                            next offset, so a dead letter at or after the
 *                            checkpoint offset of its partition in
 *                            driftlock.kafka_offsets (any group) is kept
 *   driftlock.incidents      closed (resolved or false alarm) with
 *                            resolved_at before it; open ones never go
 *   driftlock.feedback       applied (learnt) before it; pending feedback
 *                            never goes
 *   driftlock.suppressions   ended (lifted, or past until) before it
 *
 * Streams, their detector states and the Kafka offsets are never touched.
 *
 * The worker deletes in transactions of at most RETENTION_BATCH_ROWS rows,
 * oldest first, skipping rows someone else has locked, with a short
 * lock_timeout, for at most RETENTION_TURN_MS per turn: a turn comes
 * between two batches, so the worker is never held up for long and locks
 * stay short.  A run starts at most once a minute (or when the setting
 * changes) and goes on over the next turns while a table still had a full
 * batch to delete.  driftlock_purge() deletes the same rows in one
 * statement per table, in the caller's transaction.
 *
 * The rows are counted in driftlock_rows_purged_total{table} when their
 * transaction commits.  Every statement is parameterised.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "driftlock.h"
#include "guc.h"
#include "metrics.h"
#include "retention.h"
#include "spi_plans.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_purge);

/* At most this many rows per transaction of the worker. */
#define RETENTION_BATCH_ROWS 1000
/* A run starts at most this often, unless the setting changed. */
#define RETENTION_EVERY_MS 60000
/* How long a turn may go on deleting (it finishes the batch it is in). */
#define RETENTION_TURN_MS 250
/* How long a delete of the worker waits for a row or table lock. */
#define RETENTION_LOCK_TIMEOUT "1s"

/* The tables, in the order of metrics_purge_tables. */
enum
{
	PURGE_ANOMALIES,
	PURGE_DEAD_LETTERS,
	PURGE_INCIDENTS,
	PURGE_FEEDBACK,
	PURGE_SUPPRESSIONS
};

/*
 * Each table's rows to delete, twice: the worker's batch (the oldest $2,
 * skipping locked rows) and driftlock_purge()'s statement (all of them).
 * The conditions must stay the same in both.
 */
static CachedStatement anomalies_batch = {
	"DELETE FROM driftlock.anomalies WHERE id = ANY (ARRAY("
	"SELECT a.id FROM driftlock.anomalies a WHERE a.detected_at < $1 "
	"ORDER BY a.detected_at LIMIT $2 FOR UPDATE OF a SKIP LOCKED))",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static CachedStatement anomalies_all = {
	"DELETE FROM driftlock.anomalies a WHERE a.detected_at < $1",
	1, {TIMESTAMPTZOID}, NULL
};

static CachedStatement dead_letters_batch = {
	"DELETE FROM driftlock.dead_letters WHERE id = ANY (ARRAY("
	"SELECT d.id FROM driftlock.dead_letters d WHERE d.received_at < $1 "
	"AND NOT EXISTS (SELECT FROM driftlock.kafka_offsets o WHERE o.topic = d.kafka_topic "
	"AND o.partition = d.kafka_partition "
	"AND d.kafka_offset >= coalesce(o.checkpoint_offset, o.next_offset)) "
	"ORDER BY d.received_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED))",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static CachedStatement dead_letters_all = {
	"DELETE FROM driftlock.dead_letters d WHERE d.received_at < $1 "
	"AND NOT EXISTS (SELECT FROM driftlock.kafka_offsets o WHERE o.topic = d.kafka_topic "
	"AND o.partition = d.kafka_partition "
	"AND d.kafka_offset >= coalesce(o.checkpoint_offset, o.next_offset))",
	1, {TIMESTAMPTZOID}, NULL
};

static CachedStatement incidents_batch = {
	"DELETE FROM driftlock.incidents WHERE id = ANY (ARRAY("
	"SELECT i.id FROM driftlock.incidents i WHERE i.status <> 'open' AND i.resolved_at < $1 "
	"ORDER BY i.resolved_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED))",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static CachedStatement incidents_all = {
	"DELETE FROM driftlock.incidents i WHERE i.status <> 'open' AND i.resolved_at < $1",
	1, {TIMESTAMPTZOID}, NULL
};

static CachedStatement feedback_batch = {
	"DELETE FROM driftlock.feedback WHERE id = ANY (ARRAY("
	"SELECT f.id FROM driftlock.feedback f WHERE f.applied_at < $1 "
	"ORDER BY f.applied_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED))",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static CachedStatement feedback_all = {
	"DELETE FROM driftlock.feedback f WHERE f.applied_at < $1",
	1, {TIMESTAMPTZOID}, NULL
};

/* least() ignores NULL: a suppression ends when lifted or at its until */
static CachedStatement suppressions_batch = {
	"DELETE FROM driftlock.suppressions WHERE id = ANY (ARRAY("
	"SELECT s.id FROM driftlock.suppressions s WHERE least(s.lifted_at, s.until) < $1 "
	"ORDER BY s.id LIMIT $2 FOR UPDATE OF s SKIP LOCKED))",
	2, {TIMESTAMPTZOID, INT8OID}, NULL
};
static CachedStatement suppressions_all = {
	"DELETE FROM driftlock.suppressions s WHERE least(s.lifted_at, s.until) < $1",
	1, {TIMESTAMPTZOID}, NULL
};

/*
 * Delete a table's rows older than cutoff (SPI connected): the oldest
 * RETENTION_BATCH_ROWS of them when batch, else all.  Returns how many.
 */
static uint64
purge_table(int table, TimestampTz cutoff, bool batch)
{
	Datum		args[2];
	int			ret;

	args[0] = TimestampTzGetDatum(cutoff);
	args[1] = Int64GetDatum(RETENTION_BATCH_ROWS);
	switch (table)
	{
		case PURGE_ANOMALIES:
			ret = spi_run(batch ? &anomalies_batch : &anomalies_all, args, NULL, false, 0);
			break;
		case PURGE_DEAD_LETTERS:
			ret = spi_run(batch ? &dead_letters_batch : &dead_letters_all, args, NULL, false, 0);
			break;
		case PURGE_INCIDENTS:
			ret = spi_run(batch ? &incidents_batch : &incidents_all, args, NULL, false, 0);
			break;
		case PURGE_FEEDBACK:
			ret = spi_run(batch ? &feedback_batch : &feedback_all, args, NULL, false, 0);
			break;
		case PURGE_SUPPRESSIONS:
			ret = spi_run(batch ? &suppressions_batch : &suppressions_all, args, NULL, false, 0);
			break;
		default:
			elog(ERROR, "unknown driftlock retention table %d", table);
	}
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "deleting old rows of driftlock.%s failed: %s",
			 metrics_purge_tables[table], SPI_result_code_string(ret));
	metrics_count_purged(table, SPI_processed);
	return SPI_processed;
}

/* ------------------------------------------------------------------------
 * The worker's turns
 * ------------------------------------------------------------------------ */

typedef struct PurgeBatch
{
	int			table;
	TimestampTz cutoff;
	uint64		deleted;
} PurgeBatch;

static void
purge_batch_body(void *arg)
{
	PurgeBatch *b = arg;

	/* wait a little for a lock someone holds, then give up until next time */
	(void) set_config_option("lock_timeout", RETENTION_LOCK_TIMEOUT, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR, false);
	b->deleted = purge_table(b->table, b->cutoff, true);
}

/* The run in progress: where it stands and what it deleted so far. */
static TimestampTz run_started = 0;
static int	run_retention = 0;	/* the setting it applies, in minutes */
static TimestampTz run_cutoff = 0;
static int	run_table = METRICS_PURGE_TABLES;	/* < that: rows left over */
static uint64 run_deleted[METRICS_PURGE_TABLES];

/* A run is over: say what it did. */
static void
report_run(void)
{
	uint64		total = 0;

	for (int t = 0; t < METRICS_PURGE_TABLES; t++)
		total += run_deleted[t];
	ereport(total > 0 ? LOG : DEBUG1,
			(errmsg("driftlock retention deleted " UINT64_FORMAT " rows older than %s (driftlock.retention): "
					UINT64_FORMAT " anomalies, " UINT64_FORMAT " dead letters, " UINT64_FORMAT
					" incidents, " UINT64_FORMAT " feedback, " UINT64_FORMAT " suppressions",
					total, timestamptz_to_str(run_cutoff), run_deleted[PURGE_ANOMALIES],
					run_deleted[PURGE_DEAD_LETTERS], run_deleted[PURGE_INCIDENTS],
					run_deleted[PURGE_FEEDBACK], run_deleted[PURGE_SUPPRESSIONS])));
}

void
retention_turn(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz deadline;

	if (driftlock_retention <= 0)
	{
		run_table = METRICS_PURGE_TABLES;
		return;
	}
	if (run_table >= METRICS_PURGE_TABLES)
	{
		/* no run in progress: start one when due */
		if (driftlock_retention == run_retention &&
			!TimestampDifferenceExceeds(run_started, now, RETENTION_EVERY_MS))
			return;
		run_started = now;
		run_retention = driftlock_retention;
		run_cutoff = now - (TimestampTz) driftlock_retention * USECS_PER_MINUTE;
		run_table = 0;
		memset(run_deleted, 0, sizeof(run_deleted));
	}
	pgstat_report_activity(STATE_RUNNING, "deleting rows older than driftlock.retention");
	deadline = TimestampTzPlusMilliseconds(now, RETENTION_TURN_MS);
	while (run_table < METRICS_PURGE_TABLES && !ShutdownRequestPending)
	{
		PurgeBatch	b;

		CHECK_FOR_INTERRUPTS();
		b.table = run_table;
		b.cutoff = run_cutoff;
		b.deleted = 0;
		if (!spi_xact_try(purge_batch_body, &b))
		{
			/* logged; the next run (in a minute) tries again */
			run_table = METRICS_PURGE_TABLES;
			report_run();
			return;
		}
		run_deleted[b.table] += b.deleted;
		if (b.deleted > 0)
			ereport(DEBUG1,
					(errmsg("driftlock retention deleted " UINT64_FORMAT " rows of driftlock.%s",
							b.deleted, metrics_purge_tables[b.table])));
		if (b.deleted < RETENTION_BATCH_ROWS)
			run_table++;		/* none left in this table */
		if (GetCurrentTimestamp() >= deadline)
			break;
	}
	if (run_table >= METRICS_PURGE_TABLES)
		report_run();
}

/* ------------------------------------------------------------------------
 * driftlock_purge(older_than interval)
 *   returns table (table_name text, rows_deleted bigint)
 * ------------------------------------------------------------------------ */
Datum
driftlock_purge(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *older_than;
	Interval	zero;
	TimestampTz cutoff;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be null"),
				 errhint("Give the age from which rows go, such as interval '30 days'.")));
	older_than = PG_GETARG_INTERVAL_P(0);
	memset(&zero, 0, sizeof(zero));
	if (DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(older_than),
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative: %s",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(older_than)))),
				 errdetail("Rows older than now() minus older_than are deleted; a negative interval would reach into the future."),
				 errhint("Give the age from which rows go, such as interval '30 days'.")));
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													 IntervalPGetDatum(older_than)));

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	for (int t = 0; t < METRICS_PURGE_TABLES; t++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[1] = Int64GetDatum((int64) purge_table(t, cutoff, false));
		values[0] = CStringGetTextDatum(metrics_purge_tables[t]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
