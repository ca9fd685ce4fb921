/*
 * kafka_worker_start.c -- how a Kafka worker connects to driftlock.database:
 * failed starts back off, and an unknown database says how to fix it
 *
 * A worker that cannot connect (driftlock.database names no database, the
 * database refuses connections) dies of a FATAL error inside
 * BackgroundWorkerInitializeConnection(), and the postmaster starts it
 * again driftlock.kafka_restart_interval later, for as long as the server
 * runs.  To keep that from filling the log, each worker's failed starts in
 * a row are counted in shared memory, which outlives the worker's process:
 * a start counts as failed from the moment it tries to connect until the
 * connection succeeds, which resets the count.  Before connecting, a worker
 * with failures behind it waits until its last attempt is
 *
 *     restart_interval * 2^(failures - 1), at most MAX_START_GAP_S (60 s)
 *
 * old, so that the attempts are 1x, 2x, 4x ... the restart interval apart,
 * then once a minute (never closer than the restart interval).  The wait is
 * on the latch: a SIGTERM or the postmaster's death ends it at once.  A
 * restart of the server starts again from zero, with new shared memory.
 *
 * The FATAL error cannot be caught (it exits the process from inside
 * PostgreSQL), and the database cannot be looked up before connecting
 * (that needs the connection).  So an emit_log_hook is installed just
 * around the connection: it sees the error report before it is written and
 * adds what the worker knows, namely which setting names the database (a
 * HINT, for ERRCODE_UNDEFINED_DATABASE) and when the next attempt comes (a
 * DETAIL, for any error that has none).  It chains to the hook that was
 * there before and is removed once connected.
 *
 * Locking: slot i is used only by worker i's process, and the postmaster
 * never runs two of them at once, so the slots need no lock.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "kafka_worker_start.h"

/* Failed starts of a worker come at most this far apart. */
#define MAX_START_GAP_S 60

typedef struct WorkerStartSlot
{
	int			failed_starts;	/* in a row, the current attempt included */
	TimestampTz last_attempt;	/* when the last one began to connect */
} WorkerStartSlot;

/* driftlock.kafka_workers slots; NULL unless preloaded */
static WorkerStartSlot *start_slots = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* What the hook adds to the report of a failed connection. */
static int	connecting_worker = -1;
static int	next_attempt_s = 0;

static Size
slots_size(void)
{
	return mul_size(sizeof(WorkerStartSlot), Max(driftlock_kafka_workers, 1));
}

static void
worker_start_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(slots_size());
}

static void
worker_start_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	start_slots = ShmemInitStruct("driftlock worker starts", slots_size(), &found);
	if (!found)
		memset(start_slots, 0, slots_size());
	LWLockRelease(AddinShmemInitLock);
}

void
worker_start_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_start_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_start_shmem_startup;
}

/* Seconds from a failed start's attempt to the next, after `failures`. */
static int
start_gap_s(int failures)
{
	int			interval = driftlock_kafka_restart_interval;
	int			gap = interval;

	for (int i = 1; i < failures && gap < MAX_START_GAP_S; i++)
		gap *= 2;
	return Max(Min(gap, MAX_START_GAP_S), interval);
}

/* Sleep until `until` on the latch; a SIGTERM ends the worker. */
static void
wait_until(TimestampTz until)
{
	for (;;)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (ShutdownRequestPending)
			proc_exit(1);
		if (ms <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* See the file header: add what the worker knows to its connection error. */
static void
connection_error_hook(ErrorData *edata)
{
	if (edata->elevel >= ERROR && connecting_worker >= 0)
	{
		if (edata->sqlerrcode == ERRCODE_UNDEFINED_DATABASE && edata->hint == NULL)
			edata->hint = psprintf("Set driftlock.database to the database where CREATE EXTENSION driftlock was run and restart the server (the setting is read at server start), or create database \"%s\".",
								   driftlock_database);
		if (edata->detail == NULL)
			edata->detail = psprintf("driftlock kafka worker %d connects to driftlock.database \"%s\"; it tries again in %d s (failed starts back off to once a minute).",
									 connecting_worker, driftlock_database, next_attempt_s);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
worker_start_connect(int worker_id)
{
	WorkerStartSlot *slot = NULL;

	if (start_slots != NULL && worker_id >= 0 && worker_id < driftlock_kafka_workers)
		slot = &start_slots[worker_id];
	if (slot != NULL && slot->failed_starts > 0)
		wait_until(TimestampTzPlusMilliseconds(slot->last_attempt,
												 (int64) start_gap_s(slot->failed_starts) * 1000));

	/* counted as failed until the connection succeeds */
	if (slot != NULL)
	{
		slot->failed_starts++;
		slot->last_attempt = GetCurrentTimestamp();
	}
	connecting_worker = worker_id;
	next_attempt_s = start_gap_s(slot != NULL ? slot->failed_starts : 1);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = connection_error_hook;

	BackgroundWorkerInitializeConnection(driftlock_database, NULL, 0);

	emit_log_hook = prev_emit_log_hook;
	connecting_worker = -1;
	if (slot != NULL)
		slot->failed_starts = 0;
}
