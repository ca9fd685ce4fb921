/*
 * driftlock.h
 *		State shared by the PostgreSQL glue of the driftlock extension.
 */
#ifndef DRIFTLOCK_H
#define DRIFTLOCK_H

#include "fmgr.h"

#if PG_VERSION_NUM < 150000
#error "driftlock needs PostgreSQL 15 or later (15, 17 and 18 are tested)"
#endif

/*
 * An SQL-callable function.  The library is built with -fvisibility=hidden
 * (PostgreSQL 15 loads libraries with RTLD_GLOBAL: a global helper named
 * like another library's would collide), so only what PostgreSQL looks up
 * is exported: _PG_init, the magic block, the worker's entry point and
 * these.  Before PostgreSQL 16, PG_FUNCTION_INFO_V1 marks only the info
 * function, so the function itself is marked here.  test/check_exports.sh
 * checks the result.
 */
#define DRIFTLOCK_SQL_FUNCTION(name) \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(name)

/*
 * True when the library was loaded through shared_preload_libraries, i.e.
 * in the postmaster before startup finished.  Only then can restart-only
 * settings be real PGC_POSTMASTER settings, and only then can static
 * background workers and shared memory be requested.
 */
extern bool driftlock_preloaded;

#endif							/* DRIFTLOCK_H */
