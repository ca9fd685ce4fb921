/*
 * offset_fence.c -- a partition's stored offsets move only from where this
 * worker last saw them
 *
 * A worker that stalls past max.poll.interval.ms or the group's session
 * timeout (a long lock wait, SIGSTOP, a paused VM) loses its partitions to
 * another worker or instance without knowing it.  If its batch then
 * committed, it would move driftlock.kafka_offsets (and, at a checkpoint,
 * the detector states) back over the new owner's.  So every offset write
 * is a compare-and-set: the next offset moves from the value this worker
 * read at assignment or wrote itself, and a checkpoint is written only
 * while the next offset is still that value.  When the row holds anything
 * else, the partition has a new owner: the transaction is rolled back by
 * an error and the worker rejoins the group (kafka_worker.c).
 *
 * Two writers racing on one partition end the same way whatever the order:
 * the first to commit wins; the other's UPDATE waits for it, finds another
 * next offset and fails (its anomaly inserts, which wait on the winner's
 * rows the same way, do nothing).  Exactly once holds either way, since a
 * batch's rows and its offsets commit together.
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "batch_writer.h"
#include "offset_fence.h"

typedef struct FencedPartition
{
	char	   *topic;
	int32		partition;
	bool		stored;			/* a row existed / was written */
	int64		next;			/* its next offset */
	bool		pending;		/* written by the open transaction: */
	int64		pending_next;	/* the next offset it wrote */
} FencedPartition;

static FencedPartition *parts = NULL;
static int	nparts = 0;
static int	parts_cap = 0;
static bool tripped = false;

static FencedPartition *
find(const char *topic, int32 partition, bool add)
{
	for (int i = 0; i < nparts; i++)
		if (parts[i].partition == partition && strcmp(parts[i].topic, topic) == 0)
			return &parts[i];
	if (!add)
		return NULL;
	if (nparts == parts_cap)
	{
		parts_cap = Max(8, parts_cap * 2);
		parts = parts == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(FencedPartition) * parts_cap)
			: repalloc(parts, sizeof(FencedPartition) * parts_cap);
	}
	memset(&parts[nparts], 0, sizeof(FencedPartition));
	parts[nparts].topic = MemoryContextStrdup(TopMemoryContext, topic);
	parts[nparts].partition = partition;
	return &parts[nparts++];
}

void
fence_assigned(const char *topic, int32 partition, bool stored, int64 next)
{
	FencedPartition *p = find(topic, partition, true);

	p->stored = stored;
	p->next = next;
	p->pending = false;
}

void
fence_forget(void)
{
	for (int i = 0; i < nparts; i++)
		pfree(parts[i].topic);
	nparts = 0;
	tripped = false;
}

void
fence_begin(void)
{
	for (int i = 0; i < nparts; i++)
		parts[i].pending = false;
}

/* The partition's next offset as this transaction left it, or false. */
static bool
expected(const FencedPartition *p, int64 *next)
{
	if (p->pending)
	{
		*next = p->pending_next;
		return true;
	}
	*next = p->next;
	return p->stored;
}

#define FENCED_HINT "A worker loses its partitions when it stalls for longer than max.poll.interval.ms or session.timeout.ms (driftlock.kafka_properties); it rejoins the group by itself."

static void
fenced(const char *group, const char *topic, int32 partition, bool had, int64 saw)
{
	int64		next,
				checkpoint;
	bool		has;

	/* what the failed write saw: the latest row, not the batch's snapshot */
	PushActiveSnapshot(GetLatestSnapshot());
	has = batch_load_offset(group, topic, partition, &next, &checkpoint, NULL);
	PopActiveSnapshot();
	tripped = true;
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("driftlock batch fenced: partition %s[%d] has a new owner", topic, partition),
			 has && had
			 ? errdetail("Its stored next offset is %lld; this worker last saw %lld, so another worker or instance of group \"%s\" has processed the partition since. The batch is rolled back.",
						 (long long) next, (long long) saw, group)
			 : has
			 ? errdetail("Its stored next offset is %lld; this worker saw no stored offset, so another worker or instance of group \"%s\" has processed the partition since. The batch is rolled back.",
						 (long long) next, group)
			 : errdetail("Its stored offsets were deleted while this worker held it. The batch is rolled back."),
			 errhint(FENCED_HINT)));
}

void
fence_message_taken(const char *topic, int32 partition, int64 offset, int32 record_index)
{
	char		position[32] = "";

	if (record_index > 0)
		snprintf(position, sizeof(position), " (log record %d)", record_index);
	tripped = true;
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("driftlock batch fenced: partition %s[%d] has a new owner", topic, partition),
			 errdetail("Message %s[%d]@%lld%s was recorded by another worker or instance meanwhile. The batch is rolled back.",
					   topic, partition, (long long) offset, position),
			 errhint(FENCED_HINT)));
}

void
fence_save_offset(const char *group, const char *topic, int32 partition,
				  int64 next, int64 first_offset)
{
	FencedPartition *p = find(topic, partition, true);
	int64		saw;
	bool		had = expected(p, &saw);

	if (!batch_move_offset(group, topic, partition, had, saw, next, first_offset))
		fenced(group, topic, partition, had, saw);
	p->pending = true;
	p->pending_next = next;
}

void
fence_save_checkpoint(const char *group, const char *topic, int32 partition, int64 offset)
{
	FencedPartition *p = find(topic, partition, false);
	int64		saw;

	/* no row: nothing of the partition was committed, no offset to mark */
	if (p == NULL || !expected(p, &saw))
		return;
	if (!batch_save_checkpoint(group, topic, partition, saw, offset))
		fenced(group, topic, partition, true, saw);
}

void
fence_committed(void)
{
	for (int i = 0; i < nparts; i++)
		if (parts[i].pending)
		{
			parts[i].stored = true;
			parts[i].next = parts[i].pending_next;
			parts[i].pending = false;
		}
}

bool
fence_tripped(void)
{
	return tripped;
}
