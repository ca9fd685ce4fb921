/*
 * spi_plans.h -- parameterised statements prepared once per process
 */
#ifndef DRIFTLOCK_SPI_PLANS_H
#define DRIFTLOCK_SPI_PLANS_H

#include "executor/spi.h"

/* A statement and its prepared plan, declared static by its user. */
typedef struct CachedStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[32];
	SPIPlanPtr	plan;
} CachedStatement;

/*
 * Run a cached statement (SPI connected): prepared and kept on first use,
 * so the worker does not parse the same SQL for every message.  Returns
 * SPI_execute_plan's result.
 */
extern int	spi_run(CachedStatement *stmt, Datum *args, const char *nulls,
					bool read_only, long count);

/*
 * A transaction of a background worker, between its batches: started,
 * with a snapshot and SPI connected; and committed.  On an error, the
 * caller aborts it (AbortCurrentTransaction).
 */
extern void spi_xact_begin(void);
extern void spi_xact_commit(void);

/*
 * body(arg) in a transaction of its own (spi_xact_begin/commit).  If it
 * raises an error, the error is logged, the transaction aborted and false
 * returned: for the worker's work between batches, which must not stop it.
 */
extern bool spi_xact_try(void (*body) (void *arg), void *arg);

/*
 * body(arg) in a subtransaction.  Returns NULL when it succeeded; else the
 * error, copied into the caller's memory context, the subtransaction rolled
 * back (with what it wrote and locked).  Either way the caller's memory
 * context and resource owner are current again.
 */
extern ErrorData *spi_subxact_try(void (*body) (void *arg), void *arg);

#endif
