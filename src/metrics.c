/*
 * metrics.c -- shared-memory counters, the driftlock.metrics view and the
 * Prometheus exposition
 *
 * Locking: plain counters are pg_atomic_uint64 and need no lock.  The
 * per-stream table, the consumer-lag table and stats_reset are changed
 * under the "driftlock" LWLock; stream entries are only ever appended
 * (until a reset), so a backend remembers where a stream's entry is, and
 * notices a reset through the generation number.
 *
 * Counts that describe rows (events, anomalies, dead letters) are collected
 * per transaction (and subtransaction) and published when it commits, so
 * that the counters equal the rows in driftlock.anomalies and
 * driftlock.dead_letters; a batch or a savepoint that rolls back counts
 * nothing.  With driftlock.metrics_save the counters are
 * written to pg_stat/driftlock.stat at a clean shutdown and read back at
 * start, like pg_stat_statements.  A crash restart starts from zero.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "driftlock.h"
#include "guc.h"
#include "metrics.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_metrics);
DRIFTLOCK_SQL_FUNCTION(driftlock_prometheus);
DRIFTLOCK_SQL_FUNCTION(driftlock_metrics_reset);

const char *const metrics_reasons[METRICS_REASONS] = {
	"payload_too_large", "missing_stream_id", "invalid_stream_id", "unknown_stream",
	"invalid_json", "detector_error", "insert_failed"
};

const char *const metrics_bands[METRICS_BANDS] = {"low", "medium", "high"};

/* Upper bounds of the batch duration histogram, in seconds (+Inf last). */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
0.1, 0.25, 0.5, 1, 2.5, 5, 10};

#define LATENCY_BUCKETS (lengthof(latency_bounds) + 1)
#define MAX_WORKERS 32
#define MAX_PARTITIONS 1024
#define TOPIC_MAX 256
#define STAT_FILE PGSTAT_STAT_PERMANENT_DIRECTORY "/driftlock.stat"
#define STAT_FILE_TMP STAT_FILE ".tmp"
#define STAT_MAGIC 0x444c4d33	/* "DLM3" */

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
	int			max_streams;
	int			nstreams;
	StreamCounters streams[FLEXIBLE_ARRAY_MEMBER];
} MetricsShared;

static MetricsShared *shared = NULL;

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

static void
reset_counters(MetricsShared *m)
{
	for (int i = 0; i < N_COUNTERS; i++)
		pg_atomic_write_u64(&m->counters[i], 0);
	m->nstreams = 0;
	m->generation++;
	m->stats_reset = GetCurrentTimestamp();
}

static uint64
counter(int c)
{
	return pg_atomic_read_u64(&shared->counters[c]);
}

static void
count(int c, uint64 n)
{
	pg_atomic_fetch_add_u64(&shared->counters[c], n);
}

/*
 * The saved counters: the fixed part as plain numbers, then the streams.
 * Gauges (lag, detectors) are not saved: they describe the running workers.
 */
typedef struct SavedCounters
{
	uint32		magic;
	int32		nstreams;
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
	if (code != 0 || shared == NULL || !driftlock_metrics_save)
		return;
	memset(&sc, 0, sizeof(sc));
	sc.magic = STAT_MAGIC;
	sc.nstreams = shared->nstreams;
	sc.stats_reset = shared->stats_reset;
	for (int i = 0; i < N_COUNTERS; i++)
		sc.counters[i] = counter(i);

	f = AllocateFile(STAT_FILE_TMP, PG_BINARY_W);
	if (f == NULL || fwrite(&sc, sizeof(sc), 1, f) != 1)
		goto error;
	for (int i = 0; i < shared->nstreams; i++)
	{
		SavedStream ss;

		ss.id = shared->streams[i].id;
		ss.events = pg_atomic_read_u64(&shared->streams[i].events);
		ss.anomalies = pg_atomic_read_u64(&shared->streams[i].anomalies);
		if (fwrite(&ss, sizeof(ss), 1, f) != 1)
			goto error;
	}
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
	shared = ShmemInitStruct("driftlock metrics", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->lock = &(GetNamedLWLockTranche("driftlock"))->lock;
		shared->max_streams = driftlock_metrics_max_streams;
		for (int i = 0; i < N_COUNTERS; i++)
			pg_atomic_init_u64(&shared->counters[i], 0);
		for (int i = 0; i < MAX_WORKERS; i++)
		{
			pg_atomic_init_u32(&shared->worker_started[i], 0);
			pg_atomic_init_u32(&shared->detectors[i], 0);
			pg_atomic_init_u64(&shared->cache_bytes[i], 0);
		}
		for (int i = 0; i < MAX_PARTITIONS; i++)
			shared->lags[i].owner = -1;
		for (int i = 0; i < shared->max_streams; i++)
		{
			pg_atomic_init_u64(&shared->streams[i].events, 0);
			pg_atomic_init_u64(&shared->streams[i].anomalies, 0);
		}
		shared->stats_reset = GetCurrentTimestamp();
		shared->generation = 1;
		load_counters(shared);
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

/* ------------------------------------------------------------------------
 * Counting, published at commit
 * ------------------------------------------------------------------------ */

/*
 * Counts wait, per stream and per subtransaction level, for the transaction
 * to end: a rolled-back savepoint takes its counts with it.
 */
#define PENDING_LEVELS 32		/* deeper subtransactions count as level 31 */

typedef struct PendingKey
{
	pg_uuid_t	id;
	int			level;
} PendingKey;

typedef struct PendingStream
{
	PendingKey	key;			/* hash key */
	uint64		events;
	uint64		anomalies;
} PendingStream;

typedef struct StreamSlot
{
	pg_uuid_t	id;				/* hash key */
	int			index;			/* in shared->streams, -1 = overflow */
} StreamSlot;

static HTAB *pending_streams = NULL;
static uint64 pending[PENDING_LEVELS][N_COUNTERS];
static bool pending_any = false;
static bool callback_registered = false;

/* where each stream's counters are; valid for one generation */
static HTAB *slots = NULL;
static uint64 slots_generation = 0;

static HTAB *
uuid_table(const char *name, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = entrysize;
	ctl.hcxt = TopMemoryContext;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Whether the table of slots is there for the current generation: a reset
 * makes it stale.  create builds it (which may raise an error), otherwise
 * a stale table is only dropped.
 */
static bool
current_slots(bool create)
{
	if (slots != NULL && slots_generation != shared->generation)
	{
		hash_destroy(slots);
		slots = NULL;
	}
	if (slots == NULL && create)
	{
		slots = uuid_table("driftlock metric slots", sizeof(StreamSlot));
		slots_generation = shared->generation;
	}
	return slots != NULL;
}

/*
 * The stream's counters in shared memory, or NULL when the table is full
 * (or memory is short).  Called with the lock held exclusively, so that a
 * reset cannot happen between finding the slot and adding to it.  Never
 * raises an error: it runs after the commit record is written.
 */
static StreamCounters *
stream_slot(const pg_uuid_t *id)
{
	StreamSlot *slot;
	bool		found;

	if (!current_slots(false))
		return NULL;
	slot = hash_search(slots, id, HASH_ENTER_NULL, &found);
	if (slot == NULL)
		return NULL;
	if (!found)
	{
		slot->index = -1;
		for (int i = 0; i < shared->nstreams; i++)
			if (memcmp(&shared->streams[i].id, id, sizeof(pg_uuid_t)) == 0)
			{
				slot->index = i;
				break;
			}
		if (slot->index < 0 && shared->nstreams < shared->max_streams)
		{
			slot->index = shared->nstreams++;
			shared->streams[slot->index].id = *id;
			pg_atomic_write_u64(&shared->streams[slot->index].events, 0);
			pg_atomic_write_u64(&shared->streams[slot->index].anomalies, 0);
		}
	}
	return slot->index >= 0 ? &shared->streams[slot->index] : NULL;
}

static void
forget_pending(void)
{
	if (pending_streams != NULL)
		hash_destroy(pending_streams);
	pending_streams = NULL;
	memset(pending, 0, sizeof(pending));
	pending_any = false;
}

static void
publish_pending(void)
{
	HASH_SEQ_STATUS status;
	PendingStream *p;

	for (int l = 0; l < PENDING_LEVELS; l++)
		for (int i = 0; i < N_COUNTERS; i++)
			if (pending[l][i])
				count(i, pending[l][i]);
	if (pending_streams != NULL)
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		hash_seq_init(&status, pending_streams);
		while ((p = hash_seq_search(&status)) != NULL)
		{
			StreamCounters *s = stream_slot(&p->key.id);

			count(C_EVENTS, p->events);
			count(C_ANOMALIES, p->anomalies);
			if (s != NULL)
			{
				pg_atomic_fetch_add_u64(&s->events, p->events);
				pg_atomic_fetch_add_u64(&s->anomalies, p->anomalies);
			}
			else
			{
				count(C_OVERFLOW_EVENTS, p->events);
				count(C_OVERFLOW_ANOMALIES, p->anomalies);
			}
		}
		LWLockRelease(shared->lock);
	}
	forget_pending();
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (!pending_any)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			publish_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's outcome is not known here: not counted */
			forget_pending();
			break;
		default:
			break;
	}
}

static int
current_level(void)
{
	return Min(GetCurrentTransactionNestLevel(), PENDING_LEVELS - 1);
}

/*
 * A subtransaction ends: its counts (level >= its own) are dropped if it
 * aborts, or become its parent's if it commits.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level;
	HASH_SEQ_STATUS status;
	PendingStream *p;
	List	   *taken = NIL;
	ListCell   *lc;

	if (!pending_any || (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	if (GetCurrentTransactionNestLevel() >= PENDING_LEVELS)
		return;					/* too deep to tell apart: left with the deepest */
	level = GetCurrentTransactionNestLevel();
	for (int l = level; l < PENDING_LEVELS; l++)
		for (int i = 0; i < N_COUNTERS; i++)
		{
			if (event == SUBXACT_EVENT_COMMIT_SUB)
				pending[level - 1][i] += pending[l][i];
			pending[l][i] = 0;
		}
	if (pending_streams == NULL)
		return;

	/* take this level's entries out (removing the current one is allowed) */
	hash_seq_init(&status, pending_streams);
	while ((p = hash_seq_search(&status)) != NULL)
	{
		if (p->key.level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			PendingStream *copy = palloc(sizeof(PendingStream));

			*copy = *p;
			taken = lappend(taken, copy);
		}
		hash_search(pending_streams, &p->key, HASH_REMOVE, NULL);
	}
	/* and give them to the parent */
	foreach(lc, taken)
	{
		PendingStream *copy = lfirst(lc);
		bool		found;

		copy->key.level = level - 1;
		p = hash_search(pending_streams, &copy->key, HASH_ENTER, &found);
		if (!found)
			p->events = p->anomalies = 0;
		p->events += copy->events;
		p->anomalies += copy->anomalies;
	}
	list_free_deep(taken);
}

static bool
start_counting(void)
{
	if (shared == NULL)
		return false;
	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callback_registered = true;
	}
	pending_any = true;
	return true;
}

void
metrics_count_event(const pg_uuid_t *stream_id, bool anomaly)
{
	PendingStream *p;
	PendingKey	key;
	bool		found;

	if (!start_counting())
		return;
	/* allocate here, not at commit, where an error would be fatal */
	current_slots(true);
	if (pending_streams == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(PendingKey);
		ctl.entrysize = sizeof(PendingStream);
		ctl.hcxt = TopMemoryContext;
		pending_streams = hash_create("driftlock pending metrics", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.id = *stream_id;
	key.level = current_level();
	p = hash_search(pending_streams, &key, HASH_ENTER, &found);
	if (!found)
		p->events = p->anomalies = 0;
	p->events++;
	p->anomalies += anomaly ? 1 : 0;
}

/* Count n in the current (sub)transaction, published at commit. */
static void
count_pending(int c, uint64 n)
{
	if (start_counting())
		pending[current_level()][c] += n;
}

void
metrics_count_dead_letter(const char *reason)
{
	for (int i = 0; i < METRICS_REASONS; i++)
		if (strcmp(reason, metrics_reasons[i]) == 0)
			count_pending(C_DEAD_LETTERS + i, 1);
}

void
metrics_count_incident(int band, bool opened)
{
	if (band >= 0 && band < METRICS_BANDS)
		count_pending((opened ? C_INCIDENTS_OPENED : C_INCIDENTS_ESCALATED) + band, 1);
}

void
metrics_count_suppressed(void)
{
	count_pending(C_ANOMALIES_SUPPRESSED, 1);
}

void
metrics_count_feedback(int64 learnt)
{
	count_pending(C_FEEDBACK_LEARNT, learnt);
}

void
metrics_batch_done(double seconds)
{
	int			b = 0;

	if (shared == NULL)
		return;
	while (b < (int) lengthof(latency_bounds) && seconds > latency_bounds[b])
		b++;
	count(C_LATENCY + b, 1);
	count(C_LATENCY_SUM_US, (uint64) (seconds * 1e6));
	count(C_BATCHES, 1);
}

void
metrics_cache_stats(uint64 hits, uint64 misses, uint64 evictions, uint64 replayed)
{
	if (shared == NULL)
		return;
	count(C_CACHE_HITS, hits);
	count(C_CACHE_MISSES, misses);
	count(C_CACHE_EVICTIONS, evictions);
	count(C_REPLAYED, replayed);
}

void
metrics_count_checkpoint(void)
{
	if (shared != NULL)
		count(C_CHECKPOINTS, 1);
}

void
metrics_detectors_active(int worker_id, int detectors, uint64 bytes)
{
	if (shared != NULL && worker_id >= 0 && worker_id < MAX_WORKERS)
	{
		pg_atomic_write_u32(&shared->detectors[worker_id], (uint32) detectors);
		pg_atomic_write_u64(&shared->cache_bytes[worker_id], bytes);
	}
}

void
metrics_worker_started(int worker_id)
{
	if (shared == NULL || worker_id < 0 || worker_id >= MAX_WORKERS)
		return;
	/* the first start after server start is no restart */
	if (pg_atomic_exchange_u32(&shared->worker_started[worker_id], 1) != 0)
		count(C_WORKER_RESTARTS, 1);
	pg_atomic_write_u32(&shared->detectors[worker_id], 0);
	pg_atomic_write_u64(&shared->cache_bytes[worker_id], 0);
}

void
metrics_set_lag(int worker_id, const char *topic, int32 partition, int64 lag)
{
	int			free_slot = -1;

	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_PARTITIONS; i++)
	{
		PartitionLag *l = &shared->lags[i];

		if (l->owner >= 0 && l->partition == partition && strcmp(l->topic, topic) == 0)
		{
			l->owner = worker_id;
			l->lag = lag;
			LWLockRelease(shared->lock);
			return;
		}
		if (l->owner < 0 && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		PartitionLag *l = &shared->lags[free_slot];

		l->owner = worker_id;
		l->partition = partition;
		l->lag = lag;
		strlcpy(l->topic, topic, TOPIC_MAX);
	}
	LWLockRelease(shared->lock);
}

void
metrics_forget_lag(int worker_id)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_PARTITIONS; i++)
		if (shared->lags[i].owner == worker_id)
			shared->lags[i].owner = -1;
	LWLockRelease(shared->lock);
}

/* ------------------------------------------------------------------------
 * Reading: one list of samples for the view and the exposition
 * ------------------------------------------------------------------------ */

typedef struct Sample
{
	const char *metric;
	bool		has_stream;
	pg_uuid_t	stream;
	const char *label_keys[2];
	char	   *label_values[2];
	int			nlabels;
	double		value;
} Sample;

typedef struct SampleList
{
	Sample	   *items;
	int			len;
	int			cap;
} SampleList;

static Sample *
add_sample(SampleList *l, const char *metric, double value)
{
	Sample	   *s;

	if (l->len == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 64;
		l->items = l->items ? repalloc(l->items, sizeof(Sample) * l->cap)
			: palloc(sizeof(Sample) * l->cap);
	}
	s = &l->items[l->len++];
	memset(s, 0, sizeof(*s));
	s->metric = metric;
	s->value = value;
	return s;
}

static void
add_label(Sample *s, const char *key, char *value)
{
	s->label_keys[s->nlabels] = key;
	s->label_values[s->nlabels] = value;
	s->nlabels++;
}

static void
require_shared(void)
{
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("driftlock must be loaded via shared_preload_libraries"),
				 errhint("Add driftlock to shared_preload_libraries in postgresql.conf and restart the server.")));
}

typedef struct NameEntry
{
	pg_uuid_t	id;				/* hash key */
	char	   *name;
} NameEntry;

/* Names of the streams that still exist, for the "stream" label. */
static HTAB *
stream_names(void)
{
	HTAB	   *names = NULL;
	HASHCTL		ctl;
	int			ret;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(NameEntry);
	ctl.hcxt = CurrentMemoryContext;
	names = hash_create("driftlock stream names", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	SPI_connect();
	ret = SPI_execute("SELECT id, name FROM driftlock.streams", true, 0);
	if (ret == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
			NameEntry  *e = hash_search(names, DatumGetUUIDP(id), HASH_ENTER, NULL);

			e->name = MemoryContextStrdup(ctl.hcxt, name ? name : "");
		}
	}
	SPI_finish();
	return names;
}

/*
 * Open incidents of this database by severity band: a gauge read from
 * driftlock.incidents, the truth that counters could drift from.
 */
static void
open_incidents(SampleList *l)
{
	int			ret;
	double		open[METRICS_BANDS] = {0, 0, 0};

	SPI_connect();
	/* before ALTER EXTENSION driftlock UPDATE there is no such table */
	ret = SPI_execute("SELECT pg_catalog.to_regclass('driftlock.incidents') IS NOT NULL", true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1 &&
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
		ret = SPI_execute("SELECT CASE WHEN severity >= 75 THEN 2 WHEN severity >= 50 THEN 1 ELSE 0 END, "
						  "count(*) FROM driftlock.incidents WHERE status = 'open' GROUP BY 1",
						  true, 0);
	else
		ret = SPI_ERROR_NOATTRIBUTE;
	if (ret == SPI_OK_SELECT)
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int			band = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));

			if (band >= 0 && band < METRICS_BANDS)
				open[band] = (double) n;
		}
	SPI_finish();
	for (int i = 0; i < METRICS_BANDS; i++)
		add_label(add_sample(l, "driftlock_incidents_open", open[i]),
				  "severity", pstrdup(metrics_bands[i]));
}

static SampleList *
collect_samples(void)
{
	SampleList *l = palloc0(sizeof(SampleList));
	HTAB	   *names;
	uint64		cumulative = 0;
	uint32		detectors = 0;
	uint64		cache_bytes = 0;

	require_shared();
	names = stream_names();

	add_sample(l, "driftlock_events_processed_total", (double) counter(C_EVENTS));
	add_sample(l, "driftlock_anomalies_detected_total", (double) counter(C_ANOMALIES));
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->nstreams; i++)
	{
		StreamCounters *sc = &shared->streams[i];
		NameEntry  *name = hash_search(names, &sc->id, HASH_FIND, NULL);
		Sample	   *s;

		s = add_sample(l, "driftlock_stream_events_total", (double) pg_atomic_read_u64(&sc->events));
		s->has_stream = true;
		s->stream = sc->id;
		if (name)
			add_label(s, "stream", name->name);
		s = add_sample(l, "driftlock_stream_anomalies_total", (double) pg_atomic_read_u64(&sc->anomalies));
		s->has_stream = true;
		s->stream = sc->id;
		if (name)
			add_label(s, "stream", name->name);
	}
	LWLockRelease(shared->lock);
	add_sample(l, "driftlock_stream_overflow_events_total", (double) counter(C_OVERFLOW_EVENTS));
	add_sample(l, "driftlock_stream_overflow_anomalies_total", (double) counter(C_OVERFLOW_ANOMALIES));
	for (int i = 0; i < METRICS_REASONS; i++)
		add_label(add_sample(l, "driftlock_dead_letters_total",
							 (double) counter(C_DEAD_LETTERS + i)),
				  "reason", pstrdup(metrics_reasons[i]));

	for (int i = 0; i < METRICS_BANDS; i++)
	{
		add_label(add_sample(l, "driftlock_incidents_total", (double) counter(C_INCIDENTS_OPENED + i)),
				  "severity", pstrdup(metrics_bands[i]));
		add_label(add_sample(l, "driftlock_incident_escalations_total",
							 (double) counter(C_INCIDENTS_ESCALATED + i)),
				  "severity", pstrdup(metrics_bands[i]));
	}
	open_incidents(l);
	add_sample(l, "driftlock_anomalies_suppressed_total", (double) counter(C_ANOMALIES_SUPPRESSED));
	add_sample(l, "driftlock_feedback_learnt_total", (double) counter(C_FEEDBACK_LEARNT));

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < MAX_PARTITIONS; i++)
	{
		PartitionLag *pl = &shared->lags[i];
		Sample	   *s;

		if (pl->owner < 0)
			continue;
		s = add_sample(l, "driftlock_kafka_consumer_lag", (double) pl->lag);
		add_label(s, "topic", pstrdup(pl->topic));
		add_label(s, "partition", psprintf("%d", pl->partition));
	}
	LWLockRelease(shared->lock);

	for (int i = 0; i < (int) LATENCY_BUCKETS; i++)
	{
		cumulative += counter(C_LATENCY + i);
		add_label(add_sample(l, "driftlock_batch_duration_seconds_bucket", (double) cumulative),
				  "le", i < (int) lengthof(latency_bounds) ? psprintf("%g", latency_bounds[i]) : pstrdup("+Inf"));
	}
	add_sample(l, "driftlock_batch_duration_seconds_sum",
			   (double) counter(C_LATENCY_SUM_US) / 1e6);
	add_sample(l, "driftlock_batch_duration_seconds_count", (double) cumulative);
	add_sample(l, "driftlock_batches_total", (double) counter(C_BATCHES));
	add_sample(l, "driftlock_detector_cache_hits_total", (double) counter(C_CACHE_HITS));
	add_sample(l, "driftlock_detector_cache_misses_total", (double) counter(C_CACHE_MISSES));
	add_sample(l, "driftlock_detector_cache_evictions_total", (double) counter(C_CACHE_EVICTIONS));
	for (int i = 0; i < MAX_WORKERS; i++)
	{
		detectors += pg_atomic_read_u32(&shared->detectors[i]);
		cache_bytes += pg_atomic_read_u64(&shared->cache_bytes[i]);
	}
	add_sample(l, "driftlock_detectors_active", (double) detectors);
	add_sample(l, "driftlock_detector_cache_bytes", (double) cache_bytes);
	add_sample(l, "driftlock_checkpoints_total", (double) counter(C_CHECKPOINTS));
	add_sample(l, "driftlock_messages_replayed_total", (double) counter(C_REPLAYED));
	add_sample(l, "driftlock_worker_restarts_total", (double) counter(C_WORKER_RESTARTS));
	LWLockAcquire(shared->lock, LW_SHARED);
	add_sample(l, "driftlock_stats_reset_time_seconds",
			   (double) (shared->stats_reset - SetEpochTimestamp()) / USECS_PER_SEC);
	LWLockRelease(shared->lock);
	return l;
}

static char *
labels_json(const Sample *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < s->nlabels; i++)
	{
		if (i)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, s->label_keys[i]);
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, s->label_values[i]);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * driftlock_metrics() returns setof (metric text, stream_id uuid,
 * labels jsonb, value double precision): the rows of driftlock.metrics.
 */
Datum
driftlock_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SampleList *l;

	InitMaterializedSRF(fcinfo, 0);
	l = collect_samples();
	for (int i = 0; i < l->len; i++)
	{
		Sample	   *s = &l->items[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(s->metric);
		if (s->has_stream)
		{
			pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

			*u = s->stream;
			values[1] = UUIDPGetDatum(u);
		}
		else
			nulls[1] = true;
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(labels_json(s)));
		values[3] = Float8GetDatum(s->value);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Prometheus label value escaping: backslash, double quote, newline. */
static void
append_label_value(StringInfo buf, const char *v)
{
	for (; *v; v++)
	{
		if (*v == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*v == '"')
			appendStringInfoString(buf, "\\\"");
		else if (*v == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *v);
	}
}

typedef struct Family
{
	const char *name;
	const char *type;
	const char *help;
} Family;

static const Family families[] = {
	{"driftlock_events_processed_total", "counter", "Events run through a detector (Kafka messages that were not dead letters, and driftlock_observe calls)."},
	{"driftlock_anomalies_detected_total", "counter", "Anomalies recorded in driftlock.anomalies."},
	{"driftlock_stream_events_total", "counter", "Events run through a detector, per stream."},
	{"driftlock_stream_anomalies_total", "counter", "Anomalies recorded, per stream."},
	{"driftlock_stream_overflow_events_total", "counter", "Events of streams beyond driftlock.metrics_max_streams."},
	{"driftlock_stream_overflow_anomalies_total", "counter", "Anomalies of streams beyond driftlock.metrics_max_streams."},
	{"driftlock_dead_letters_total", "counter", "Messages recorded in driftlock.dead_letters, by reason."},
	{"driftlock_incidents_total", "counter", "Incidents opened, by the severity band they opened in (low < 50 <= medium < 75 <= high)."},
	{"driftlock_incident_escalations_total", "counter", "Incidents whose severity rose into a higher band, by the band reached."},
	{"driftlock_incidents_open", "gauge", "Open incidents of this database, by severity band."},
	{"driftlock_anomalies_suppressed_total", "counter", "Anomalies recorded with no incident because their pattern was suppressed."},
	{"driftlock_feedback_learnt_total", "counter", "Events marked normal that a stream's detector learnt."},
	{"driftlock_kafka_consumer_lag", "gauge", "Messages in a partition after the next offset to process (high watermark minus next offset)."},
	{"driftlock_batch_duration_seconds", "histogram", "Time from a batch's first message to its commit."},
	{"driftlock_batches_total", "counter", "Batches committed by the Kafka workers."},
	{"driftlock_detector_cache_hits_total", "counter", "Stream detectors found in a worker's cache."},
	{"driftlock_detector_cache_misses_total", "counter", "Stream detectors loaded from driftlock.stream_state."},
	{"driftlock_detector_cache_evictions_total", "counter", "Stream detectors dropped from a worker's cache to stay within driftlock.detector_cache_memory or driftlock.detector_cache_size."},
	{"driftlock_detectors_active", "gauge", "Stream detectors cached in the Kafka workers."},
	{"driftlock_detector_cache_bytes", "gauge", "Memory of the stream detectors cached in the Kafka workers."},
	{"driftlock_checkpoints_total", "counter", "Checkpoints of the Kafka workers: the changed detectors saved with the offsets they correspond to."},
	{"driftlock_messages_replayed_total", "counter", "Messages read again after a crash or a failed batch, which only the detectors learnt (their results were committed before)."},
	{"driftlock_worker_restarts_total", "counter", "Times a Kafka worker started again after exiting."},
	{"driftlock_stats_reset_time_seconds", "gauge", "Unix time of the last reset of these counters."},
	{NULL, NULL, NULL}
};

static const Family *
family_of(const char *metric)
{
	for (const Family *f = families; f->name; f++)
	{
		size_t		n = strlen(f->name);

		if (strncmp(metric, f->name, n) == 0 &&
			(metric[n] == '\0' || strcmp(f->type, "histogram") == 0))
			return f;
	}
	return NULL;
}

/* driftlock_prometheus() returns text: the Prometheus text exposition. */
Datum
driftlock_prometheus(PG_FUNCTION_ARGS)
{
	SampleList *l = collect_samples();
	StringInfoData buf;

	initStringInfo(&buf);
	for (const Family *f = families; f->name; f++)
	{
		appendStringInfo(&buf, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
		for (int i = 0; i < l->len; i++)
		{
			Sample	   *s = &l->items[i];
			bool		first = true;

			if (family_of(s->metric) != f)
				continue;
			appendStringInfoString(&buf, s->metric);
			if (s->has_stream || s->nlabels > 0)
			{
				appendStringInfoChar(&buf, '{');
				if (s->has_stream)
				{
					appendStringInfo(&buf, "stream_id=\"%s\"",
									 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&s->stream))));
					first = false;
				}
				for (int k = 0; k < s->nlabels; k++)
				{
					appendStringInfo(&buf, "%s%s=\"", first ? "" : ",", s->label_keys[k]);
					append_label_value(&buf, s->label_values[k]);
					appendStringInfoChar(&buf, '"');
					first = false;
				}
				appendStringInfoChar(&buf, '}');
			}
			if (s->value == floor(s->value) && fabs(s->value) < 1e15)
				appendStringInfo(&buf, " %.0f\n", s->value);
			else
				appendStringInfo(&buf, " %.17g\n", s->value);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/* driftlock_metrics_reset() returns void */
Datum
driftlock_metrics_reset(PG_FUNCTION_ARGS)
{
	require_shared();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	reset_counters(shared);
	LWLockRelease(shared->lock);
	PG_RETURN_VOID();
}
