/*
 * metrics.h -- shared-memory counters and their SQL and Prometheus views
 */
#ifndef DRIFTLOCK_METRICS_H
#define DRIFTLOCK_METRICS_H

#include "utils/uuid.h"

/* Dead-letter reason codes, in the order the counters keep them. */
#define METRICS_REASONS 10
extern const char *const metrics_reasons[METRICS_REASONS];

/* Severity bands of incidents: low (< 50), medium (< 75), high. */
#define METRICS_BANDS 3
extern const char *const metrics_bands[METRICS_BANDS];

/*
 * Tables the retention purges (retention.c), in the order the counters
 * keep them: the "table" label of driftlock_rows_purged_total.
 */
#define METRICS_PURGE_TABLES 5
extern const char *const metrics_purge_tables[METRICS_PURGE_TABLES];

/* Request shared memory (from _PG_init, only when preloaded). */
extern void metrics_init(void);

/*
 * Count, in the current transaction: the counts are published to shared
 * memory when the transaction commits and forgotten if it aborts, so the
 * counters always match the committed rows.  No-ops without preloading.
 */
extern void metrics_count_event(const pg_uuid_t *stream_id, bool anomaly);
extern void metrics_count_dead_letter(const char *reason);
extern void metrics_count_incident(int band, bool opened);	/* else escalated */
extern void metrics_count_suppressed(void);
extern void metrics_count_feedback(int64 learnt);
extern void metrics_count_purged(int table, uint64 rows);
extern void metrics_count_payload_dropped(void);
extern void metrics_count_stream_created(void);

/* Published immediately (they describe work, not rows). */
extern void metrics_batch_done(double seconds);
extern void metrics_cache_stats(uint64 hits, uint64 misses, uint64 evictions,
								uint64 replayed);
extern void metrics_count_checkpoint(void);
extern void metrics_detectors_active(int worker_id, int detectors, uint64 bytes);
extern void metrics_worker_started(int worker_id);
extern void metrics_set_lag(int worker_id, const char *topic, int32 partition, int64 lag);
extern void metrics_forget_lag(int worker_id);
/* Messages of a partition deleted by Kafka's retention before they were read. */
extern void metrics_count_lost(const char *topic, int32 partition, uint64 n);

#endif
