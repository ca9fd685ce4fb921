/*
 * metrics_pending.c -- counts of rows, published when their transaction
 * commits
 *
 * Counts that describe rows (events, anomalies, dead letters, incidents,
 * rows purged, dead-letter payloads not kept, streams created) are collected per
 * transaction (and subtransaction) and published when it commits, so
 * that the counters equal the rows in driftlock.anomalies and
 * driftlock.dead_letters; a batch or a savepoint that rolls back counts
 * nothing.
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "metrics.h"
#include "metrics_internal.h"

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
	int			index;			/* in metrics_shared->streams, -1 = overflow */
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
	if (slots != NULL && slots_generation != metrics_shared->generation)
	{
		hash_destroy(slots);
		slots = NULL;
	}
	if (slots == NULL && create)
	{
		slots = uuid_table("driftlock metric slots", sizeof(StreamSlot));
		slots_generation = metrics_shared->generation;
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
		for (int i = 0; i < metrics_shared->nstreams; i++)
			if (memcmp(&metrics_shared->streams[i].id, id, sizeof(pg_uuid_t)) == 0)
			{
				slot->index = i;
				break;
			}
		if (slot->index < 0 && metrics_shared->nstreams < metrics_shared->max_streams)
		{
			slot->index = metrics_shared->nstreams++;
			metrics_shared->streams[slot->index].id = *id;
			pg_atomic_write_u64(&metrics_shared->streams[slot->index].events, 0);
			pg_atomic_write_u64(&metrics_shared->streams[slot->index].anomalies, 0);
		}
	}
	return slot->index >= 0 ? &metrics_shared->streams[slot->index] : NULL;
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
				metrics_add(i, pending[l][i]);
	if (pending_streams != NULL)
	{
		LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
		hash_seq_init(&status, pending_streams);
		while ((p = hash_seq_search(&status)) != NULL)
		{
			StreamCounters *s = stream_slot(&p->key.id);

			metrics_add(C_EVENTS, p->events);
			metrics_add(C_ANOMALIES, p->anomalies);
			if (s != NULL)
			{
				pg_atomic_fetch_add_u64(&s->events, p->events);
				pg_atomic_fetch_add_u64(&s->anomalies, p->anomalies);
			}
			else
			{
				metrics_add(C_OVERFLOW_EVENTS, p->events);
				metrics_add(C_OVERFLOW_ANOMALIES, p->anomalies);
			}
		}
		LWLockRelease(metrics_shared->lock);
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
	if (metrics_shared == NULL)
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
metrics_count_purged(int table, uint64 rows)
{
	if (table >= 0 && table < METRICS_PURGE_TABLES && rows > 0)
		count_pending(C_ROWS_PURGED + table, rows);
}

void
metrics_count_payload_dropped(void)
{
	count_pending(C_PAYLOADS_DROPPED, 1);
}

void
metrics_count_stream_created(void)
{
	count_pending(C_STREAMS_CREATED, 1);
}
