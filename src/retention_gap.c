/*
 * retention_gap.c -- messages Kafka's retention deleted before the worker
 * read them
 *
 * When a partition's stored next offset is below the start of its log,
 * librdkafka resets to the log start (auto.offset.reset) and says so only
 * in its own debug log: without this file, the messages in between would
 * be gone without a trace.  The worker sees it as a message further on
 * than the partition's position.  Gaps in offsets are normal too
 * (transaction markers, aborted transactions, compaction), but those never
 * delete a message nobody read while the log start stays behind it; so a
 * gap counts as lost only when the partition's log now starts after the
 * expected offset; then all of it was skipped.  The lost range is one dead letter (reason
 * retention_gap, no payload, kafka_offset to kafka_offset_end) in the
 * batch's transaction; once that commits it is logged as a WARNING and
 * counted in driftlock_messages_lost_total.
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "batch_writer.h"
#include "metrics.h"
#include "retention_gap.h"

/* How long to ask a broker for the log start when librdkafka has none cached. */
#define WATERMARK_TIMEOUT_MS 2000

typedef struct Gap
{
	char	   *topic;
	int32		partition;
	int64		from;			/* first lost offset */
	int64		until;			/* first offset after them */
	int64		start;			/* where the partition's log starts now */
} Gap;

static List *gaps = NIL;		/* of this transaction, in TopMemoryContext */

void
gap_begin(void)
{
	ListCell   *lc;

	foreach(lc, gaps)
	{
		Gap		   *g = lfirst(lc);

		pfree(g->topic);
		pfree(g);
	}
	list_free(gaps);
	gaps = NIL;
}

/* The offset the partition's log starts at now, or -1 when unknown. */
static int64
log_start(rd_kafka_t *rk, const char *topic, int32 partition)
{
	int64_t		low = -1,
				high = -1;

	/* updated from every fetch response: no broker round trip */
	if (rd_kafka_get_watermark_offsets(rk, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		low >= 0)
		return low;
	if (rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high,
										 WATERMARK_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		low >= 0)
		return low;
	return -1;
}

void
gap_check(rd_kafka_t *rk, const char *topic, int32 partition, int64 expected,
		  int64 offset, int64 committed_until)
{
	int64		start;
	int64		from = expected;
	int64		until = offset;
	MemoryContext old;
	Gap		   *g;

	if (expected < 0 || offset <= expected)
		return;
	start = log_start(rk, topic, partition);
	if (start <= expected)
		return;					/* markers or compaction: nothing unread deleted */
	/* past the log start, a reset to the end (auto.offset.reset) skips too */
	if (committed_until > from)
	{
		/* processed before; only the replay misses them */
		ereport(LOG,
				(errmsg("driftlock could not replay %s[%d] offsets %lld to %lld: Kafka's retention deleted them since they were processed",
						topic, partition, (long long) from, (long long) Min(until, committed_until) - 1),
				 errdetail("The detectors of their streams relearn without them.")));
		from = committed_until;
	}
	if (until <= from)
		return;
	batch_dead_range(topic, partition, from, until, "retention_gap",
					 psprintf("Offsets %lld to %lld (%lld messages) were skipped: Kafka's retention deleted the partition's messages before offset %lld before driftlock read them.",
							  (long long) from, (long long) until - 1,
							  (long long) (until - from), (long long) start));
	metrics_count_dead_letter("retention_gap");
	old = MemoryContextSwitchTo(TopMemoryContext);
	g = palloc(sizeof(Gap));
	g->topic = pstrdup(topic);
	g->partition = partition;
	g->from = from;
	g->until = until;
	g->start = start;
	gaps = lappend(gaps, g);
	MemoryContextSwitchTo(old);
}

void
gap_committed(int worker_id)
{
	ListCell   *lc;

	foreach(lc, gaps)
	{
		Gap		   *g = lfirst(lc);

		metrics_count_lost(g->topic, g->partition, (uint64) (g->until - g->from));
		ereport(WARNING,
				(errmsg("driftlock kafka worker %d lost %lld messages of %s[%d], offsets %lld to %lld: Kafka's retention deleted them before driftlock read them",
						worker_id, (long long) (g->until - g->from), g->topic, g->partition,
						(long long) g->from, (long long) g->until - 1),
				 errdetail("The partition's log now starts at offset %lld. The range is recorded in driftlock.dead_letters with reason retention_gap.",
						   (long long) g->start),
				 errhint("Keep messages longer than driftlock may be stopped or behind (the topic's retention.ms and retention.bytes), or keep the worker from falling behind.")));
	}
	gap_begin();
}
