/*
 * kafka_worker.h -- the Kafka background workers
 */
#ifndef DRIFTLOCK_KAFKA_WORKER_H
#define DRIFTLOCK_KAFKA_WORKER_H

/* Register driftlock.kafka_workers static workers (from _PG_init, preloaded). */
extern void driftlock_kafka_register_workers(void);

#endif
