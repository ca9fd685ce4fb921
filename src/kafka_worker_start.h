/*
 * kafka_worker_start.h -- how a Kafka worker connects to driftlock.database
 */
#ifndef DRIFTLOCK_KAFKA_WORKER_START_H
#define DRIFTLOCK_KAFKA_WORKER_START_H

/* Request the shared memory of the failed-start counts (_PG_init, preloaded). */
extern void worker_start_init(void);

/*
 * Connect worker worker_id to driftlock.database, after backing off when
 * its last starts failed.  A failure is a FATAL error (the process exits);
 * its report says which setting to fix and when the next attempt is.
 */
extern void worker_start_connect(int worker_id);

#endif
