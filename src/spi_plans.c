/*
 * spi_plans.c -- parameterised statements prepared once per process
 *
 * Plans are kept with SPI_keepplan; the plan cache replans them when the
 * tables change (for instance after DROP and CREATE EXTENSION), because the
 * statements name the tables, not their OIDs.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "spi_plans.h"

int
spi_run(CachedStatement *stmt, Datum *args, const char *nulls, bool read_only, long count)
{
	MemoryContext caller = CurrentMemoryContext;
	int			ret;

	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

		if (plan == NULL)
			elog(ERROR, "preparing \"%s\" failed: %s", stmt->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "keeping the plan of \"%s\" failed", stmt->sql);
		stmt->plan = plan;
	}
	ret = SPI_execute_plan(stmt->plan, args, nulls, read_only, count);

	/*
	 * SPI returns in its procedure context, which lives until SPI_finish:
	 * what the caller allocates next belongs in the caller's context (the
	 * worker's per-message context, reset after each message; without
	 * this, everything a message allocated after its first statement
	 * stayed until the end of its batch).
	 */
	MemoryContextSwitchTo(caller);
	return ret;
}

void
spi_xact_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
spi_xact_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

ErrorData *
spi_subxact_try(void (*body) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

bool
spi_xact_try(void (*body) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		spi_xact_begin();
		body(arg);
		spi_xact_commit();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return ok;
}
