/*
 * retention.h -- rows older than driftlock.retention deleted by Kafka
 * worker 0 between batches, and driftlock_purge()
 */
#ifndef DRIFTLOCK_RETENTION_H
#define DRIFTLOCK_RETENTION_H

/*
 * A turn of the worker's retention, between batches (no transaction open):
 * at most once a minute, or again at once while rows older than the
 * retention are left over, a few transactions of at most a thousand rows
 * each, for about a quarter of a second.  Does nothing while
 * driftlock.retention is 0.
 */
extern void retention_turn(void);

#endif
