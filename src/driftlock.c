/*
 * driftlock.c
 *		Module entry point of the driftlock extension.
 *
 * _PG_init stays small: each subsystem has an init function of its own in
 * the file that implements it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "driftlock.h"
#include "guc.h"
#include "kafka_worker.h"
#include "kafka_worker_start.h"
#include "metrics.h"

PG_MODULE_MAGIC;

bool		driftlock_preloaded = false;

#if PG_VERSION_NUM < 160000
/* fmgr.h declares _PG_init from PostgreSQL 16 on */
extern PGDLLEXPORT void _PG_init(void);
#endif

/* Library load: remember how we were loaded, then define the settings */
void
_PG_init(void)
{
	driftlock_preloaded = process_shared_preload_libraries_in_progress;

	driftlock_guc_init();
	if (driftlock_preloaded)
	{
		metrics_init();
		worker_start_init();
		driftlock_kafka_register_workers();
	}
	else if (driftlock_kafka_enabled)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("driftlock.kafka_enabled is on, but no Kafka worker runs"),
				 errdetail("The Kafka worker is started only when driftlock is loaded through shared_preload_libraries."),
				 errhint("Add driftlock to shared_preload_libraries in postgresql.conf and restart the server.")));
}
