/*
 * dead_letter_limit.c -- at most driftlock.dead_letter_rate_limit dead
 * letters per Kafka partition and minute keep their payload
 *
 * A misconfigured producer can turn every message into a dead letter of up
 * to 64 KiB.  Past the limit, a partition's dead letters of the same minute
 * are still recorded (position, headers, reason: what is needed to count
 * them, find them in Kafka and fix the cause), but without their payload,
 * and their detail says why.
 *
 * Minutes are those of the transaction's start (the received_at of the
 * rows it writes), counted per Kafka worker process: each partition is
 * owned by one worker at a time, so the count is per partition; a partition
 * that moves to another worker starts a new count there.
 *
 * Only committed dead letters use up the limit.  What a transaction counts
 * waits in "pending" and is added to the partition's count when it commits,
 * or forgotten when it aborts, so a batch that fails and is retried keeps
 * exactly the payloads a single pass would have kept (no more, if the retry
 * falls in a new minute).  The worker writes dead letters in top-level
 * transactions only, so subtransactions are not tracked.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dead_letter_limit.h"
#include "guc.h"
#include "metrics.h"

#define LIMIT_TOPIC_MAX 256		/* Kafka topic names are at most 249 bytes */

typedef struct LimitKey
{
	char		topic[LIMIT_TOPIC_MAX];
	int32		partition;
} LimitKey;

typedef struct LimitEntry
{
	LimitKey	key;			/* hash key */
	int64		minute;			/* the minute counted */
	int64		committed;		/* dead letters with payloads committed in it */
	int64		pending;		/* those of the transaction in progress */
} LimitEntry;

static HTAB *partitions = NULL;
static bool pending_any = false;

/* At commit the pending counts become committed; at abort they go. */
static void
limit_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS status;
	LimitEntry *e;
	bool		commit;

	if (!pending_any)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		commit = true;
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		commit = false;
	else
		return;
	hash_seq_init(&status, partitions);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (commit)
			e->committed += e->pending;
		e->pending = 0;
	}
	pending_any = false;
}

static LimitEntry *
partition_entry(const char *topic, int32 partition)
{
	LimitKey	key;
	LimitEntry *e;
	bool		found;

	if (partitions == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(LimitKey);
		ctl.entrysize = sizeof(LimitEntry);
		ctl.hcxt = TopMemoryContext;
		partitions = hash_create("driftlock dead letter limit", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		RegisterXactCallback(limit_xact_callback, NULL);
	}
	memset(&key, 0, sizeof(key));
	strlcpy(key.topic, topic, sizeof(key.topic));
	key.partition = partition;
	e = hash_search(partitions, &key, HASH_ENTER, &found);
	if (!found)
		e->minute = e->committed = e->pending = 0;
	return e;
}

void
dead_letter_limit_apply(const char *topic, int32 partition, const uint8_t **payload,
						size_t *len, const char **detail)
{
	int			limit = driftlock_dead_letter_rate_limit;
	int64		minute = GetCurrentTransactionStartTimestamp() / USECS_PER_MINUTE;
	LimitEntry *e;

	if (limit <= 0 || *payload == NULL)
		return;
	e = partition_entry(topic, partition);
	if (e->minute != minute)
	{
		/* a transaction has one start: nothing pending belongs to another minute */
		e->minute = minute;
		e->committed = e->pending = 0;
	}
	if (e->committed + e->pending < limit)
	{
		e->pending++;
		pending_any = true;
		return;
	}
	*detail = psprintf("%s%sThe payload (%zu bytes) was not kept: partition %d of topic %s has had %d dead letters with their payloads in this minute (driftlock.dead_letter_rate_limit).",
					   *detail ? *detail : "", *detail ? " " : "", *len, partition, topic,
					   limit);
	*payload = NULL;
	*len = 0;
	metrics_count_payload_dropped();
}
