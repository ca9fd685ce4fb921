/*
 * metrics_internal.h -- what the three parts of the metrics share:
 * shared memory and persistence (metrics.c), counts published at commit
 * (metrics_pending.c), and the view and exposition (metrics_export.c)
 */
#ifndef DRIFTLOCK_METRICS_INTERNAL_H
#define DRIFTLOCK_METRICS_INTERNAL_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "metrics.h"

/* Upper bounds of the batch duration histogram, in seconds (+Inf last). */
#define METRICS_LATENCY_BOUNDS 13
extern const double metrics_latency_bounds[METRICS_LATENCY_BOUNDS];

#define LATENCY_BUCKETS (METRICS_LATENCY_BOUNDS + 1)
#define MAX_WORKERS 32
#define MAX_PARTITIONS 1024
#define TOPIC_MAX 256

/*
 * The counters that are one number each (or one per label value), in one
 * array: reset, saved, loaded and read by loops, not one by one.
 */
enum
{
	C_EVENTS,
	C_ANOMALIES,
	C_OVERFLOW_EVENTS,
	C_OVERFLOW_ANOMALIES,
	C_DEAD_LETTERS,				/* METRICS_REASONS of them */
	C_INCIDENTS_OPENED = C_DEAD_LETTERS + METRICS_REASONS,	/* per band */
	C_INCIDENTS_ESCALATED = C_INCIDENTS_OPENED + METRICS_BANDS,
	C_ANOMALIES_SUPPRESSED = C_INCIDENTS_ESCALATED + METRICS_BANDS,
	C_FEEDBACK_LEARNT,
	C_BATCHES,
	C_LATENCY,					/* LATENCY_BUCKETS of them, not cumulative */
	C_LATENCY_SUM_US = C_LATENCY + LATENCY_BUCKETS,
	C_CACHE_HITS,
	C_CACHE_MISSES,
	C_CACHE_EVICTIONS,
	C_CHECKPOINTS,
	C_REPLAYED,
	C_WORKER_RESTARTS,
	C_ROWS_PURGED,				/* METRICS_PURGE_TABLES of them */
	C_PAYLOADS_DROPPED = C_ROWS_PURGED + METRICS_PURGE_TABLES,
	C_STREAMS_CREATED,
	N_COUNTERS
};

typedef struct StreamCounters
{
	pg_uuid_t	id;
	pg_atomic_uint64 events;
	pg_atomic_uint64 anomalies;
} StreamCounters;

typedef struct PartitionLag
{
	int			owner;			/* worker id, -1 when free */
	int32		partition;
	int64		lag;
	char		topic[TOPIC_MAX];
} PartitionLag;

/* Messages a partition lost to Kafka's retention (retention_gap.c). */
typedef struct PartitionLoss
{
	int32		partition;
	uint64		lost;
	char		topic[TOPIC_MAX];
} PartitionLoss;

typedef struct MetricsShared
{
	LWLock	   *lock;
	uint64		generation;		/* bumped by each reset */
	TimestampTz stats_reset;
	pg_atomic_uint64 counters[N_COUNTERS];
	pg_atomic_uint32 worker_started[MAX_WORKERS];
	pg_atomic_uint32 detectors[MAX_WORKERS];
	pg_atomic_uint64 cache_bytes[MAX_WORKERS];
	PartitionLag lags[MAX_PARTITIONS];
	int			nlosses;		/* under lock */
	PartitionLoss losses[MAX_PARTITIONS];
	int			max_streams;
	int			nstreams;
	StreamCounters streams[FLEXIBLE_ARRAY_MEMBER];
} MetricsShared;

/* NULL unless the library was preloaded (no shared memory otherwise). */
extern MetricsShared *metrics_shared;

static inline uint64
metrics_counter(int c)
{
	return pg_atomic_read_u64(&metrics_shared->counters[c]);
}

static inline void
metrics_add(int c, uint64 n)
{
	pg_atomic_fetch_add_u64(&metrics_shared->counters[c], n);
}

/* Zero every counter and forget the streams (the lock held exclusively). */
extern void metrics_reset_counters(MetricsShared *m);

#endif
