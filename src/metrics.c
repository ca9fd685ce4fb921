/*
 * metrics.c -- driftlock's counters in shared memory: their layout, their
 * persistence across restarts, and the gauges the workers set
 *
 * The counters are in three parts: this file, metrics_pending.c (counts
 * of rows, published when their transaction commits) and metrics_export.c
 * (the driftlock.metrics view and the Prometheus exposition); they share
 * metrics_internal.h.
 *
 * Locking: plain counters are pg_atomic_uint64 and need no lock.  The
 * per-stream table, the consumer-lag table and stats_reset are changed
 * under the "driftlock" LWLock; stream entries are only ever appended
 * (until a reset), so a backend remembers where a stream's entry is, and
 * notices a reset through the generation number.  With
 * driftlock.metrics_save the counters are written to pg_stat/driftlock.stat
 * at a clean shutdown and read back at start, like pg_stat_statements.  A
 * crash restart starts from zero.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "metrics.h"
#include "metrics_internal.h"

#define STAT_FILE PGSTAT_STAT_PERMANENT_DIRECTORY "/driftlock.stat"
#define STAT_FILE_TMP STAT_FILE ".tmp"
#define STAT_MAGIC 0x444c4d36	/* "DLM6" */

const char *const metrics_reasons[METRICS_REASONS] = {
	"payload_too_large", "missing_stream_id", "invalid_stream_id", "unknown_stream",
	"invalid_json", "detector_error", "insert_failed", "retention_gap", "stream_limit",
	"invalid_otlp"
};

const char *const metrics_bands[METRICS_BANDS] = {"low", "medium", "high"};

const char *const metrics_purge_tables[METRICS_PURGE_TABLES] = {
	"anomalies", "dead_letters", "incidents", "feedback", "suppressions"
};

const double metrics_latency_bounds[METRICS_LATENCY_BOUNDS] = {0.001, 0.0025, 0.005, 0.01,
0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

MetricsShared *metrics_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(MetricsShared, streams),
					mul_size(sizeof(StreamCounters), driftlock_metrics_max_streams));
}

static void
request_shmem(void)
{
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("driftlock", 1);
}

static void
metrics_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	request_shmem();
}

void
metrics_reset_counters(MetricsShared *m)
{
	for (int i = 0; i < N_COUNTERS; i++)
		pg_atomic_write_u64(&m->counters[i], 0);
	m->nstreams = 0;
	m->nlosses = 0;
	m->generation++;
	m->stats_reset = GetCurrentTimestamp();
}

/*
 * The saved counters: the fixed part as plain numbers, then the streams.
 * Gauges (lag, detectors) are not saved: they describe the running workers.
 */
typedef struct SavedCounters
{
	uint32		magic;
	int32		nstreams;
	int32		nlosses;		/* PartitionLoss entries after the streams */
	TimestampTz stats_reset;
	uint64		counters[N_COUNTERS];
} SavedCounters;

typedef struct SavedStream
{
	pg_uuid_t	id;
	uint64		events;
	uint64		anomalies;
} SavedStream;

static void
save_counters(int code, Datum arg)
{
	SavedCounters sc;
	FILE	   *f;

	/* only at a clean shutdown; after a crash the counters are not trusted */
	if (code != 0 || metrics_shared == NULL || !driftlock_metrics_save)
		return;
	memset(&sc, 0, sizeof(sc));
	sc.magic = STAT_MAGIC;
	sc.nstreams = metrics_shared->nstreams;
	sc.nlosses = metrics_shared->nlosses;
	sc.stats_reset = metrics_shared->stats_reset;
	for (int i = 0; i < N_COUNTERS; i++)
		sc.counters[i] = metrics_counter(i);

	f = AllocateFile(STAT_FILE_TMP, PG_BINARY_W);
	if (f == NULL || fwrite(&sc, sizeof(sc), 1, f) != 1)
		goto error;
	for (int i = 0; i < metrics_shared->nstreams; i++)
	{
		SavedStream ss;

		ss.id = metrics_shared->streams[i].id;
		ss.events = pg_atomic_read_u64(&metrics_shared->streams[i].events);
		ss.anomalies = pg_atomic_read_u64(&metrics_shared->streams[i].anomalies);
		if (fwrite(&ss, sizeof(ss), 1, f) != 1)
			goto error;
	}
	if (sc.nlosses > 0 &&
		fwrite(metrics_shared->losses, sizeof(PartitionLoss), sc.nlosses, f) != (size_t) sc.nlosses)
		goto error;
	if (FreeFile(f) != 0)
	{
		f = NULL;
		goto error;
	}
	(void) durable_rename(STAT_FILE_TMP, STAT_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write driftlock metrics file \"%s\": %m", STAT_FILE_TMP)));
	if (f)
		FreeFile(f);
	unlink(STAT_FILE_TMP);
}

static void
load_counters(MetricsShared *m)
{
	SavedCounters sc;
	FILE	   *f = AllocateFile(STAT_FILE, PG_BINARY_R);

	if (f == NULL)
		return;
	if (fread(&sc, sizeof(sc), 1, f) != 1 || sc.magic != STAT_MAGIC || sc.nstreams < 0)
	{
		ereport(LOG, (errmsg("ignoring driftlock metrics file \"%s\": unknown format", STAT_FILE)));
		goto done;
	}
	m->stats_reset = sc.stats_reset;
	for (int i = 0; i < N_COUNTERS; i++)
		pg_atomic_write_u64(&m->counters[i], sc.counters[i]);
	for (int i = 0; i < sc.nstreams; i++)
	{
		SavedStream ss;

		if (fread(&ss, sizeof(ss), 1, f) != 1)
			break;
		if (m->nstreams < m->max_streams)
		{
			StreamCounters *s = &m->streams[m->nstreams++];

			s->id = ss.id;
			pg_atomic_write_u64(&s->events, ss.events);
			pg_atomic_write_u64(&s->anomalies, ss.anomalies);
		}
		else
		{
			pg_atomic_fetch_add_u64(&m->counters[C_OVERFLOW_EVENTS], ss.events);
			pg_atomic_fetch_add_u64(&m->counters[C_OVERFLOW_ANOMALIES], ss.anomalies);
		}
	}
	if (sc.nlosses > 0 && sc.nlosses <= MAX_PARTITIONS &&
		fread(m->losses, sizeof(PartitionLoss), sc.nlosses, f) == (size_t) sc.nlosses)
	{
		m->nlosses = sc.nlosses;
		for (int i = 0; i < m->nlosses; i++)
			m->losses[i].topic[TOPIC_MAX - 1] = '\0';
	}
done:
	FreeFile(f);
	/* a crash before the next clean shutdown must not bring these back */
	unlink(STAT_FILE);
}

static void
metrics_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	metrics_shared = ShmemInitStruct("driftlock metrics", shared_size(), &found);
	if (!found)
	{
		memset(metrics_shared, 0, shared_size());
		metrics_shared->lock = &(GetNamedLWLockTranche("driftlock"))->lock;
		metrics_shared->max_streams = driftlock_metrics_max_streams;
		for (int i = 0; i < N_COUNTERS; i++)
			pg_atomic_init_u64(&metrics_shared->counters[i], 0);
		for (int i = 0; i < MAX_WORKERS; i++)
		{
			pg_atomic_init_u32(&metrics_shared->worker_started[i], 0);
			pg_atomic_init_u32(&metrics_shared->detectors[i], 0);
			pg_atomic_init_u64(&metrics_shared->cache_bytes[i], 0);
		}
		for (int i = 0; i < MAX_PARTITIONS; i++)
			metrics_shared->lags[i].owner = -1;
		for (int i = 0; i < metrics_shared->max_streams; i++)
		{
			pg_atomic_init_u64(&metrics_shared->streams[i].events, 0);
			pg_atomic_init_u64(&metrics_shared->streams[i].anomalies, 0);
		}
		metrics_shared->stats_reset = GetCurrentTimestamp();
		metrics_shared->generation = 1;
		load_counters(metrics_shared);
	}
	LWLockRelease(AddinShmemInitLock);

	/* the postmaster saves the counters when it shuts down */
	if (!IsUnderPostmaster)
		on_shmem_exit(save_counters, (Datum) 0);
}

void
metrics_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = metrics_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = metrics_shmem_startup;
}

void
metrics_batch_done(double seconds)
{
	int			b = 0;

	if (metrics_shared == NULL)
		return;
	while (b < (int) lengthof(metrics_latency_bounds) && seconds > metrics_latency_bounds[b])
		b++;
	metrics_add(C_LATENCY + b, 1);
	metrics_add(C_LATENCY_SUM_US, (uint64) (seconds * 1e6));
	metrics_add(C_BATCHES, 1);
}

void
metrics_cache_stats(uint64 hits, uint64 misses, uint64 evictions, uint64 replayed)
{
	if (metrics_shared == NULL)
		return;
	metrics_add(C_CACHE_HITS, hits);
	metrics_add(C_CACHE_MISSES, misses);
	metrics_add(C_CACHE_EVICTIONS, evictions);
	metrics_add(C_REPLAYED, replayed);
}

void
metrics_count_checkpoint(void)
{
	if (metrics_shared != NULL)
		metrics_add(C_CHECKPOINTS, 1);
}

void
metrics_detectors_active(int worker_id, int detectors, uint64 bytes)
{
	if (metrics_shared != NULL && worker_id >= 0 && worker_id < MAX_WORKERS)
	{
		pg_atomic_write_u32(&metrics_shared->detectors[worker_id], (uint32) detectors);
		pg_atomic_write_u64(&metrics_shared->cache_bytes[worker_id], bytes);
	}
}

void
metrics_worker_started(int worker_id)
{
	if (metrics_shared == NULL || worker_id < 0 || worker_id >= MAX_WORKERS)
		return;
	/* the first start after server start is no restart */
	if (pg_atomic_exchange_u32(&metrics_shared->worker_started[worker_id], 1) != 0)
		metrics_add(C_WORKER_RESTARTS, 1);
	pg_atomic_write_u32(&metrics_shared->detectors[worker_id], 0);
	pg_atomic_write_u64(&metrics_shared->cache_bytes[worker_id], 0);
}

void
metrics_set_lag(int worker_id, const char *topic, int32 partition, int64 lag)
{
	int			free_slot = -1;

	if (metrics_shared == NULL)
		return;
	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_PARTITIONS; i++)
	{
		PartitionLag *l = &metrics_shared->lags[i];

		if (l->owner >= 0 && l->partition == partition && strcmp(l->topic, topic) == 0)
		{
			l->owner = worker_id;
			l->lag = lag;
			LWLockRelease(metrics_shared->lock);
			return;
		}
		if (l->owner < 0 && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		PartitionLag *l = &metrics_shared->lags[free_slot];

		l->owner = worker_id;
		l->partition = partition;
		l->lag = lag;
		strlcpy(l->topic, topic, TOPIC_MAX);
	}
	LWLockRelease(metrics_shared->lock);
}

void
metrics_count_lost(const char *topic, int32 partition, uint64 n)
{
	PartitionLoss *l = NULL;

	if (metrics_shared == NULL)
		return;
	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < metrics_shared->nlosses && l == NULL; i++)
		if (metrics_shared->losses[i].partition == partition &&
			strcmp(metrics_shared->losses[i].topic, topic) == 0)
			l = &metrics_shared->losses[i];
	if (l == NULL && metrics_shared->nlosses < MAX_PARTITIONS)
	{
		l = &metrics_shared->losses[metrics_shared->nlosses++];
		l->partition = partition;
		l->lost = 0;
		strlcpy(l->topic, topic, TOPIC_MAX);
	}
	if (l != NULL)
		l->lost += n;
	LWLockRelease(metrics_shared->lock);
}

void
metrics_forget_lag(int worker_id)
{
	if (metrics_shared == NULL)
		return;
	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_PARTITIONS; i++)
		if (metrics_shared->lags[i].owner == worker_id)
			metrics_shared->lags[i].owner = -1;
	LWLockRelease(metrics_shared->lock);
}
