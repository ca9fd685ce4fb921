/*
 * replay.c -- messages read again after a crash or a failed batch
 *
 * The detectors' states are saved at checkpoints (checkpoint.c), while
 * offsets, anomalies and dead letters commit with every batch.  So a
 * partition is (re)read from its checkpoint offset, and the messages from
 * there to its committed next offset are replayed: each goes through its
 * stream's detector again, which, being deterministic and starting from
 * the saved state, reaches the same verdicts, but nothing is written for
 * them -- their anomalies, incidents and dead letters are committed
 * already.  Messages that were set aside as dead letters never taught the
 * detector, so they are skipped, and so are the log records of
 * OpenTelemetry batches that were set aside one by one.  Past the
 * committed offset, processing is live again.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "batch_writer.h"
#include "checkpoint.h"
#include "replay.h"

typedef struct ReplayRange
{
	char	   *topic;
	int32		partition;
	int64		until;			/* first offset not committed */
	DeadLetterPosition *dead;	/* dead letters in the range, ascending */
	int			ndead;
	int			next_dead;		/* the first of them not passed yet */
	MessageFormat format;		/* how they were read */
} ReplayRange;

static ReplayRange *ranges = NULL;
static int	nranges = 0;
static int	ranges_cap = 0;
static uint64 replayed = 0;

static void
drop_range(int i)
{
	pfree(ranges[i].topic);
	pfree(ranges[i].dead);
	ranges[i] = ranges[--nranges];
}

static int
find_range(const char *topic, int32 partition)
{
	for (int i = 0; i < nranges; i++)
		if (ranges[i].partition == partition && strcmp(ranges[i].topic, topic) == 0)
			return i;
	return -1;
}

void
replay_plan(const char *topic, int32 partition, int64 from, int64 until,
			const MessageFormat *format)
{
	int			i = find_range(topic, partition);
	ReplayRange *r;
	MessageFormat now;

	if (i >= 0)
		drop_range(i);
	if (from < 0 || until <= from)
		return;
	if (nranges == ranges_cap)
	{
		ranges_cap = Max(8, ranges_cap * 2);
		ranges = ranges == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(ReplayRange) * ranges_cap)
			: repalloc(ranges, sizeof(ReplayRange) * ranges_cap);
	}
	r = &ranges[nranges];
	r->dead = batch_dead_letter_offsets(topic, partition, from, until, &r->ndead);
	r->topic = MemoryContextStrdup(TopMemoryContext, topic);
	r->partition = partition;
	r->until = until;
	r->next_dead = 0;
	r->format = *format;
	nranges++;
	ereport(LOG,
			(errmsg("driftlock will replay %s[%d] from offset %lld to %lld: the detectors learn again what they learnt after their last checkpoint",
					topic, partition, (long long) from, (long long) until)));
	message_format_current(&now);
	if (!message_format_equal(&now, format))
	{
		/*
		 * driftlock.kafka_format or otlp_stream_attribute changed since
		 * (a crash before the reload's checkpoint): the replay reads as
		 * before, and a checkpoint right after it ends the old format's
		 * range, so that no later replay mixes the two.
		 */
		ereport(LOG,
				(errmsg("driftlock replays %s[%d] as %s%s%s, as it was processed; driftlock.kafka_format is %s from offset %lld on",
						topic, partition, kafka_format_name(format->format),
						format->format == KAFKA_FORMAT_RAW ? "" : " named by ",
						format->otlp_stream_attribute,
						kafka_format_name(now.format), (long long) until)));
		checkpoint_request();
	}
}

const MessageFormat *
replay_format(const char *topic, int32 partition)
{
	int			i = nranges > 0 ? find_range(topic, partition) : -1;

	return i >= 0 ? &ranges[i].format : NULL;
}

ReplayKind
replay_kind(const char *topic, int32 partition, int64 offset)
{
	int			i;
	ReplayRange *r;

	if (nranges == 0)
		return REPLAY_LIVE;
	if ((i = find_range(topic, partition)) < 0)
		return REPLAY_LIVE;
	r = &ranges[i];
	if (offset >= r->until)
	{
		drop_range(i);
		return REPLAY_LIVE;
	}
	/* a partition's messages come in offset order */
	while (r->next_dead < r->ndead && r->dead[r->next_dead].offset < offset)
		r->next_dead++;
	if (r->next_dead < r->ndead && r->dead[r->next_dead].offset == offset &&
		r->dead[r->next_dead].record_index < 0)
		return REPLAY_SKIP;
	replayed++;
	return REPLAY_LEARN;
}

bool
replay_record_skipped(const char *topic, int32 partition, int64 offset, int32 record_index)
{
	int			i = nranges > 0 ? find_range(topic, partition) : -1;
	ReplayRange *r;

	if (i < 0)
		return false;
	/* replay_kind() has passed the dead letters before this message */
	r = &ranges[i];
	for (int d = r->next_dead; d < r->ndead && r->dead[d].offset == offset; d++)
		if (r->dead[d].record_index == record_index)
			return true;
	return false;
}

int64
replay_until(const char *topic, int32 partition)
{
	int			i = nranges > 0 ? find_range(topic, partition) : -1;

	return i >= 0 ? ranges[i].until : -1;
}

uint64
replay_take_count(void)
{
	uint64		n = replayed;

	replayed = 0;
	return n;
}

void
replay_forget(void)
{
	while (nranges > 0)
		drop_range(nranges - 1);
}
