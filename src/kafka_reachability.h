/*
 * kafka_reachability.h -- whether any Kafka broker answers the worker, for
 * pg_stat_activity and the log
 */
#ifndef DRIFTLOCK_KAFKA_REACHABILITY_H
#define DRIFTLOCK_KAFKA_REACHABILITY_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* A new consumer (new brokers, maybe): nothing known yet. */
extern void reachability_reset(int worker_id);

/* librdkafka's error callback saw err (only __ALL_BROKERS_DOWN counts). */
extern void reachability_kafka_error(int err);

/* A broker answered: a message or a partition assignment came. */
extern void reachability_confirmed(void);

/*
 * While the brokers are unreachable, ask them for metadata now and then
 * (at most every REACHABILITY_PROBE_MS, waiting at most 250 ms): an answer
 * means they are back, even on a topic with no traffic.
 */
extern void reachability_probe(rd_kafka_t *rk);

/*
 * The worker's idle activity for pg_stat_activity: "brokers unreachable
 * since <time>" or "waiting for messages on <topics>" (topic_list_label()).
 */
extern void reachability_activity(char *buf, size_t len, const char *topics);

#endif
