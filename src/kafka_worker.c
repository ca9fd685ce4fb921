/*
 * kafka_worker.c -- the Kafka background worker: consume, detect, commit
 *
 * A message goes through: the consumer (kafka_consumer.c) -> a batch of at
 * most driftlock.kafka_max_in_flight messages or driftlock.kafka_batch_ms
 * -> for each message, or each log record of the OpenTelemetry batch it
 * holds (driftlock.kafka_format; message/otlp_logs.c): stream resolution
 * (kafka_message.c, stream_lookup.c) -> the stream's detector
 * (detector_cache.c) -> an anomaly row or a dead letter -> one transaction
 * that also saves the next offsets (batch_writer.c) and, at checkpoints,
 * the changed detectors (checkpoint.c) -> commit, then the offsets to
 * Kafka, asynchronously.  The records of a message commit together, so
 * offsets stay per message; a record's anomaly or dead letter carries its
 * index in the message as the fourth part of its position.
 *
 * Exactly once: the offsets, the anomalies and the dead letters commit
 * together; the detector states commit at checkpoints with the offsets
 * they correspond to.  On (re)assignment partitions restart at their
 * checkpoint, and the messages up to the stored next offsets are replayed
 * (replay.c): a deterministic detector starting from the saved state
 * relearns them and writes nothing, then processing goes on live.  A batch
 * that fails is rolled back and retried the same way, with backoff; after
 * three failures before its messages are passed it is retried one message
 * per transaction, and a message that fails on its own becomes a dead
 * letter (insert_failed or detector_error).
 *
 * The batches commit with synchronous_commit = off: waiting for a WAL flush
 * per batch made the worker wait more than it worked.  A crash may then lose
 * the last batches' commits, but they lose their offsets with them, so those
 * messages are processed again, with the same results.  The only thing that
 * must not run ahead of the flushed WAL is the offset committed to Kafka
 * (another instance taking over a partition starts there), so it is sent
 * only once the WAL holding the batch is flushed.
 *
 * Signals: SIGHUP reloads the settings (the consumer is recreated when the
 * brokers, topic or group change); SIGTERM ends the worker between batches,
 * after the current batch has committed.  Postmaster death ends it too.
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "batch_writer.h"
#include "checkpoint.h"
#include "dead_letter_replay.h"
#include "detector_cache.h"
#include "detector_glue.h"
#include "feedback.h"
#include "guc.h"
#include "incidents.h"
#include "kafka_consumer.h"
#include "kafka_message.h"
#include "kafka_reachability.h"
#include "kafka_worker.h"
#include "kafka_worker_start.h"
#include "message/otlp_logs.h"
#include "message_metadata.h"
#include "metrics.h"
#include "offset_fence.h"
#include "replay.h"
#include "retention.h"
#include "retention_gap.h"
#include "spi_plans.h"
#include "stream_autocreate.h"
#include "stream_lookup.h"
#include "stream_state.h"

PGDLLEXPORT void driftlock_kafka_worker_main(Datum main_arg);

/* How long an idle poll waits before the loop checks signals again. */
#define IDLE_POLL_MS 200
/* Retry delays after a failed batch. */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
/*
 * After this many failures before the messages of the failed batches are
 * passed, batches are retried message by message.
 */
#define ISOLATE_AFTER_FAILURES 3

static int	worker_id = 0;

/*
 * Offsets to tell Kafka: "flushing" waits for the WAL up to flushing_lsn to
 * be flushed; "next" collects the batches committed meanwhile.
 */
static rd_kafka_topic_partition_list_t *flushing = NULL;
static XLogRecPtr flushing_lsn = InvalidXLogRecPtr;
static rd_kafka_topic_partition_list_t *next_offsets = NULL;
static XLogRecPtr next_lsn = InvalidXLogRecPtr;

/*
 * Where the batches that failed since the last clean stretch ended: per
 * partition, the offset after their last message.  The failure count goes
 * back to zero only once every partition has committed past it: a retried
 * batch that happens not to hold the failing message (batches are collected
 * across partitions, in arrival order) must not reset it, or one poisonous
 * message among many good ones is never isolated and costs a rollback, a
 * replay and a backoff on every pass.
 */
static rd_kafka_topic_partition_list_t *failed_until = NULL;

/* The messages taken from Kafka and not yet committed. */
static rd_kafka_message_t **batch = NULL;
static int	batch_len = 0;
static int	batch_cap = 0;
static TimestampTz batch_started = 0;	/* when its first message came */

void
driftlock_kafka_register_workers(void)
{
	BackgroundWorker worker;

	for (int i = 0; i < driftlock_kafka_workers; i++)
	{
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = driftlock_kafka_restart_interval;
		strlcpy(worker.bgw_library_name, "driftlock", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "driftlock_kafka_worker_main", BGW_MAXLEN);
		snprintf(worker.bgw_name, BGW_MAXLEN, "driftlock kafka worker %d", i);
		strlcpy(worker.bgw_type, "driftlock kafka worker", BGW_MAXLEN);
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
	}
}

/* Set a partition's offset in a list, adding the partition when missing. */
static void
set_partition_offset(rd_kafka_topic_partition_list_t *list, const char *topic,
					 int32 partition, int64 offset)
{
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(list, topic, partition);

	if (p == NULL)
		p = rd_kafka_topic_partition_list_add(list, topic, partition);
	p->offset = offset;
}

/* Copy the offsets of src into *dst (created when NULL). */
static void
merge_offsets(rd_kafka_topic_partition_list_t **dst, const rd_kafka_topic_partition_list_t *src)
{
	if (*dst == NULL)
		*dst = rd_kafka_topic_partition_list_new(src->cnt);
	for (int i = 0; i < src->cnt; i++)
		set_partition_offset(*dst, src->elems[i].topic, src->elems[i].partition,
							 src->elems[i].offset);
}

/* Remember where the batch that just failed ends, per partition. */
static void
failed_batch_remember(void)
{
	if (failed_until == NULL)
		failed_until = rd_kafka_topic_partition_list_new(4);
	for (int i = 0; i < batch_len; i++)
	{
		const char *topic = rd_kafka_topic_name(batch[i]->rkt);
		rd_kafka_topic_partition_t *p =
			rd_kafka_topic_partition_list_find(failed_until, topic, batch[i]->partition);

		if (p == NULL || p->offset < batch[i]->offset + 1)
			set_partition_offset(failed_until, topic, batch[i]->partition, batch[i]->offset + 1);
	}
}

/* Committed offsets: the partitions committed past their failed batches. */
static void
failed_batch_passed(const rd_kafka_topic_partition_list_t *committed)
{
	if (failed_until == NULL)
		return;
	for (int i = failed_until->cnt - 1; i >= 0; i--)
	{
		rd_kafka_topic_partition_t *f = &failed_until->elems[i];
		rd_kafka_topic_partition_t *c =
			rd_kafka_topic_partition_list_find(committed, f->topic, f->partition);

		if (c != NULL && c->offset >= f->offset)
			rd_kafka_topic_partition_list_del_by_idx(failed_until, i);
	}
}

/* Whether the messages of every failed batch have been committed since. */
static bool
failed_batches_passed(void)
{
	return failed_until == NULL || failed_until->cnt == 0;
}

static void
failed_batches_forget(void)
{
	if (failed_until != NULL)
		rd_kafka_topic_partition_list_destroy(failed_until);
	failed_until = NULL;
}

/* Remember a committed batch's next offsets for Kafka. */
static void
kafka_offsets_committed(rd_kafka_topic_partition_list_t *batch_next, XLogRecPtr lsn)
{
	merge_offsets(&next_offsets, batch_next);
	next_lsn = lsn;
	failed_batch_passed(batch_next);
}

/*
 * Send Kafka the offsets whose batches are durable (see the file header);
 * wait: flush the WAL and commit them synchronously (revocation, shutdown).
 */
static void
kafka_offsets_flush(rd_kafka_t *rk, bool wait)
{
	if (flushing == NULL && next_offsets != NULL)
	{
		flushing = next_offsets;
		flushing_lsn = next_lsn;
		next_offsets = NULL;
	}
	if (flushing == NULL)
		return;
	if (wait)
		XLogFlush(flushing_lsn);
	if (GetFlushRecPtr(NULL) < flushing_lsn)
		return;
	consumer_commit(rk, flushing, wait);
	rd_kafka_topic_partition_list_destroy(flushing);
	flushing = NULL;
	if (wait)
		kafka_offsets_flush(rk, true);
}

/* Offsets of partitions we no longer own must not be sent later. */
static void
kafka_offsets_forget(void)
{
	if (flushing != NULL)
		rd_kafka_topic_partition_list_destroy(flushing);
	if (next_offsets != NULL)
		rd_kafka_topic_partition_list_destroy(next_offsets);
	flushing = next_offsets = NULL;
}

static void
drop_batch(void)
{
	for (int i = 0; i < batch_len; i++)
		rd_kafka_message_destroy(batch[i]);
	batch_len = 0;
}

/* the consumer (static: it must survive the longjmp of a failed batch) */
static rd_kafka_t *rk = NULL;

/*
 * The partitions this worker owns, with the next offset to process, for
 * the consumer-lag metric (refreshed every LAG_REFRESH_MS, not only when a
 * batch commits, so that a stalled worker shows a growing lag).
 */
#define LAG_REFRESH_MS 1000
static rd_kafka_topic_partition_list_t *owned = NULL;
static bool rewind_needed = false;
static TimestampTz lag_refreshed = 0;

static void
on_assign(const rd_kafka_topic_partition_list_t *parts)
{
	merge_offsets(&owned, parts);
	lag_refreshed = 0;
}

/* Publish the lag of every owned partition (watermarks cached by librdkafka). */
static void
refresh_lag(rd_kafka_t *rk, bool force)
{
	TimestampTz now = GetCurrentTimestamp();

	if (owned == NULL || (!force && !TimestampDifferenceExceeds(lag_refreshed, now, LAG_REFRESH_MS)))
		return;
	lag_refreshed = now;
	for (int i = 0; i < owned->cnt; i++)
	{
		rd_kafka_topic_partition_t *p = &owned->elems[i];
		int64_t		low,
					high,
					next = p->offset;

		if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
			high < 0)
			continue;
		if (next < 0)
			next = low;			/* nothing processed yet: all of it is lag */
		metrics_set_lag(worker_id, p->topic, p->partition, Max(high - next, 0));
	}
}

/* What the worker knows of its partitions: their positions, plans, fences. */
static void
forget_partitions(void)
{
	fence_forget();
	replay_forget();
	failed_batches_forget();
	metrics_forget_lag(worker_id);
	if (owned != NULL)
		rd_kafka_topic_partition_list_destroy(owned);
	owned = NULL;
}

/* Partitions are going: nothing held for them was committed, drop it all. */
static void
on_revoke(void)
{
	drop_batch();
	/*
	 * The next owner starts at the checkpoint: make it the latest.  If that
	 * fails, the partitions we keep (cooperative rebalancing) must be read
	 * again from theirs too.
	 */
	if (!checkpoint_now(owned, "partitions revoked"))
		rewind_needed = true;
	detector_cache_reset();
	forget_partitions();
	/* the next owner starts at the group's offsets: give it ours first */
	if (rk != NULL)
		kafka_offsets_flush(rk, true);
	kafka_offsets_forget();
}

static void
wait_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

typedef enum SchemaState
{
	SCHEMA_MISSING,				/* no CREATE EXTENSION driftlock yet */
	SCHEMA_OLD,					/* installed, ALTER EXTENSION UPDATE not run */
	SCHEMA_CURRENT
} SchemaState;

/* The installed version of the extension against the library's. */
static SchemaState
schema_state(char *installed, size_t cap)
{
	SchemaState state = SCHEMA_MISSING;

	spi_xact_begin();
	if (driftlock_installed_version(installed, cap))
		state = strcmp(installed, DRIFTLOCK_VERSION) == 0 ? SCHEMA_CURRENT : SCHEMA_OLD;
	spi_xact_commit();
	return state;
}

/* How often worker 0 resolves the incidents past their quiet period. */
#define RESOLVE_EVERY_MS 10000

static void
resolve_quiet_body(void *arg)
{
	incidents_resolve_quiet();
}

static void
resolve_quiet_incidents(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (worker_id != 0 || !TimestampDifferenceExceeds(last, now, RESOLVE_EVERY_MS))
		return;
	last = now;
	pgstat_report_activity(STATE_RUNNING, "resolving quiet incidents");
	/* a failure is not worth stopping for: the next turn tries again */
	(void) spi_xact_try(resolve_quiet_body, NULL);
}

static bool
settings_changed(const ConsumerSettings *s)
{
	return strcmp(s->brokers, driftlock_kafka_brokers) != 0 ||
		strcmp(s->topic, driftlock_kafka_topic) != 0 ||
		strcmp(s->group, driftlock_kafka_group_id) != 0 ||
		s->format != driftlock_kafka_format ||
		strcmp(s->otlp_stream_attribute, driftlock_otlp_stream_attribute) != 0;
}

/*
 * Take messages from Kafka until the batch is full or driftlock.kafka_batch_ms
 * has passed since its first message.  Returns with an empty batch after an
 * idle poll, so that the caller sees signals promptly.
 */
static void
collect_batch(rd_kafka_t *rk)
{
	TimestampTz deadline = 0;

	if (batch_cap < driftlock_kafka_max_in_flight)
	{
		batch = batch == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(*batch) * driftlock_kafka_max_in_flight)
			: repalloc(batch, sizeof(*batch) * driftlock_kafka_max_in_flight);
		batch_cap = driftlock_kafka_max_in_flight;
	}
	while (batch_len < driftlock_kafka_max_in_flight && !ShutdownRequestPending && !ConfigReloadPending)
	{
		int			timeout = IDLE_POLL_MS;
		rd_kafka_message_t *msg;

		if (batch_len > 0)
		{
			long		secs;
			int			usecs;

			TimestampDifference(GetCurrentTimestamp(), deadline, &secs, &usecs);
			timeout = (int) (secs * 1000 + usecs / 1000);
			if (timeout <= 0)
				break;
		}
		msg = rd_kafka_consumer_poll(rk, timeout);
		if (consumer_rebalance_failed())
			return;
		if (msg == NULL)
		{
			if (batch_len == 0)
				return;
			continue;
		}
		if (msg->err)
		{
			/* consumer errors (not messages): librdkafka retries; just log */
			consumer_log_message_error(worker_id, msg);
			rd_kafka_message_destroy(msg);
			continue;
		}
		reachability_confirmed();
		if (batch_len == 0)
		{
			batch_started = GetCurrentTimestamp();
			deadline = TimestampTzPlusMilliseconds(batch_started, driftlock_kafka_batch_ms);
		}
		batch[batch_len++] = msg;
	}
}

static void
dead_letter(const rd_kafka_message_t *msg, const char *reason, const char *detail)
{
	metrics_count_dead_letter(reason);
	batch_dead_letter(rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, -1,
					  reason, detail, msg, msg->payload, msg->payload ? msg->len : 0);
}

/*
 * One log record of a decoded batch as a dead letter of its own (only
 * live messages have dead letters: they are read in the current format).
 */
static void
record_dead_letter(const rd_kafka_message_t *msg, const uint8_t *batch_bytes,
				   const OtlpRecord *record, const char *reason, const char *detail)
{
	OtlpEncoding enc = message_otlp_encoding(driftlock_kafka_format);
	/* the record alone, as a batch that driftlock_replay_dead_letters() reads */
	size_t		len = otlp_single_record(batch_bytes, enc, record, NULL, 0);
	uint8_t    *single = palloc(Max(len, 1));

	(void) otlp_single_record(batch_bytes, enc, record, single, len);
	metrics_count_dead_letter(reason);
	batch_dead_letter(rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset,
					  (int32) record->index, reason, detail, msg, single, len);
	pfree(single);
}

/*
 * What a message was doing when it failed, for the reason of its dead
 * letter when batches are retried message by message.
 */
static const char *failing_step = "insert_failed";
static ReplayKind failing_kind = REPLAY_LIVE;

/*
 * One event of a message: the message itself (raw), or one log record of
 * the OpenTelemetry batch it holds (record not NULL; batch_bytes is the
 * payload it was decoded from).
 */
typedef struct MessageEvent
{
	const rd_kafka_message_t *msg;
	ReplayKind	kind;
	const uint8_t *bytes;		/* what is scored */
	size_t		len;
	const OtlpRecord *record;
	const uint8_t *batch_bytes;
} MessageEvent;

static void
event_dead_letter(const MessageEvent *ev, const char *reason, const char *detail)
{
	if (ev->record == NULL)
		dead_letter(ev->msg, reason, detail);
	else
		record_dead_letter(ev->msg, ev->batch_bytes, ev->record, reason, detail);
}

/*
 * The stream an id names; false, after a dead letter for a live event
 * (ev->record NULL: the whole message), when there is none.
 */
static bool
resolve_event(const MessageEvent *ev, const char *key, pg_uuid_t *stream_id, cbad_config *cfg,
			  bool *learn_only)
{
	StreamResolution resolved;
	char		detail[STREAM_KEY_MAX + 128];

	/* live messages may create their stream (stream_autocreate.c) */
	resolved = stream_resolve(key, ev->kind == REPLAY_LIVE ? STREAM_CREATE_IN_BATCH : STREAM_FIND_ONLY,
							  stream_id, cfg, learn_only);
	if (resolved == STREAM_FOUND)
		return true;
	if (ev->kind == REPLAY_LEARN)
		return false;			/* dropped since */
	if (resolved == STREAM_OVER_LIMIT)
	{
		stream_limit_detail(detail, sizeof(detail));
		event_dead_letter(ev, "stream_limit", detail);
		return false;
	}
	snprintf(detail, sizeof(detail), "No stream in driftlock.streams has the id or name \"%s\".", key);
	event_dead_letter(ev, "unknown_stream", detail);
	return false;
}

/*
 * An event of a message, its stream id found: a dead letter, nothing, or
 * an anomaly.  A replayed event only teaches its detector (replay.c).
 */
static void
process_event(const MessageEvent *ev, const char *key)
{
	const rd_kafka_message_t *msg = ev->msg;
	ReplayKind	kind = ev->kind;
	pg_uuid_t	stream_id;
	cbad_config cfg;
	bool		learn_only;
	bool		fresh;
	cbad_detector *det;
	cbad_verdict verdict;
	cbad_status status;
	AnomalySource src;

	if (!resolve_event(ev, key, &stream_id, &cfg, &learn_only))
		return;

	memset(&src, 0, sizeof(src));
	src.topic = rd_kafka_topic_name(msg->rkt);
	src.partition = msg->partition;
	src.offset = msg->offset;
	src.record_index = ev->record ? (int32) ev->record->index : 0;
	src.has_timestamp = message_timestamp(msg, &src.timestamp, NULL);
	src.message = msg;

	failing_step = "detector_error";
	det = detector_cache_get(&stream_id, &cfg, &fresh);
	/*
	 * Feedback, and a detector started afresh for new settings, happen at a
	 * point a replay would not reproduce: checkpoint with this batch.
	 * Pending feedback waits for live messages; it is learnt before the
	 * stream's first event of the batch.
	 */
	if (fresh)
		checkpoint_request();
	if (kind == REPLAY_LIVE && feedback_pending(&stream_id) &&
		feedback_apply(&stream_id, det, &src) > 0)
		checkpoint_request();
	/*
	 * A failed update may leave the detector half changed, so it must not be
	 * saved: fail the batch, which drops the cache and replays from the
	 * checkpoint.
	 */
	status = learn_only
		? cbad_detector_observe_learning(det, ev->bytes, ev->len, &verdict)
		: cbad_detector_observe(det, ev->bytes, ev->len, &verdict);
	detector_cache_used(&stream_id, det);
	if (status != CBAD_OK)
		driftlock_report_status(status, "scoring a Kafka message");
	if (kind == REPLAY_LEARN)
		return;
	failing_step = "insert_failed";
	driftlock_stream_record(&stream_id, det, ev->bytes, ev->len, &verdict, &src, NULL, NULL);
}

/*
 * Decode an OpenTelemetry batch into *out; false after a whole-message
 * dead letter (invalid_otlp) for a live one.
 */
static bool
decode_batch(const rd_kafka_message_t *msg, ReplayKind kind, const MessageFormat *fmt,
			 const uint8_t *payload, size_t len, OtlpBatch *out)
{
	char		err[256];
	char		detail[400];

	/* in the message's memory context */
	if (message_decode_batch(payload, len, fmt->format, fmt->otlp_stream_attribute,
							 out, err, sizeof(err)))
		return true;
	if (kind == REPLAY_LIVE)
	{
		snprintf(detail, sizeof(detail),
				 "The payload is not an OpenTelemetry logs batch in %s (driftlock.kafka_format): %s",
				 kafka_format_name(fmt->format), err);
		dead_letter(msg, "invalid_otlp", detail);
	}
	return false;
}

/*
 * What one log record allocates (its dead letter's copies of the key and
 * headers, its anomaly): reset after each, or a message of thousands of
 * records would hold them all until its end.
 */
static MemoryContext record_cxt = NULL;

static void
record_cxt_enter(MemoryContext *old)
{
	if (record_cxt == NULL)
		record_cxt = AllocSetContextCreate(TopMemoryContext, "driftlock log record",
										   ALLOCSET_DEFAULT_SIZES);
	*old = MemoryContextSwitchTo(record_cxt);
}

static void
record_cxt_leave(MemoryContext old)
{
	MemoryContextSwitchTo(old);
	MemoryContextReset(record_cxt);
}

/* Each log record of an OpenTelemetry batch, an event of its own. */
static void
process_batch_records(const rd_kafka_message_t *msg, ReplayKind kind, const MessageFormat *fmt,
					  const uint8_t *payload, size_t len)
{
	const char *topic = rd_kafka_topic_name(msg->rkt);
	OtlpBatch	b;
	MessageEvent ev = {msg, kind, NULL, 0, NULL, payload};
	char		message_key[STREAM_KEY_MAX + 1];
	MessageProblem problem;
	bool		message_wide;

	if (!decode_batch(msg, kind, fmt, payload, len, &b))
		return;

	/*
	 * A header or key that names the stream names it for every record: a
	 * problem with it, or a stream that is not there, is the whole
	 * message's, one dead letter (not one per record, all alike), which
	 * driftlock_replay_dead_letters() replays whole.
	 */
	message_wide = message_stream_key(msg, payload, len, &message_batch_only, message_key, &problem);
	if (!message_wide && problem.reason != NULL)
	{
		if (kind == REPLAY_LIVE)
			dead_letter(msg, problem.reason, problem.detail);
		return;
	}
	if (message_wide && b.count > 0)
	{
		pg_uuid_t	stream_id;
		cbad_config cfg;
		bool		learn_only;

		if (!resolve_event(&ev, message_key, &stream_id, &cfg, &learn_only))
			return;
	}

	for (size_t i = 0; i < b.count; i++)
	{
		const OtlpRecord *r = &b.records[i];
		char		key[STREAM_KEY_MAX + 1];
		MemoryContext old;

		if (kind == REPLAY_LEARN &&
			replay_record_skipped(topic, msg->partition, msg->offset, (int32) r->index))
			continue;
		ev.record = r;
		ev.bytes = (const uint8_t *) r->text;
		ev.len = r->text_len;
		record_cxt_enter(&old);
		if (message_wide)
			process_event(&ev, message_key);
		else if (message_stream_key(msg, payload, len, r, key, &problem))
			process_event(&ev, key);
		else if (kind == REPLAY_LIVE)
			event_dead_letter(&ev, problem.reason, problem.detail);
		record_cxt_leave(old);
	}
}

/*
 * One message: a dead letter, nothing, or an anomaly (for each log record,
 * with driftlock.kafka_format otlp_*); never an error for bad input.  A
 * replayed message only teaches its detectors (replay.c).
 */
static void
process_message(const rd_kafka_message_t *msg, ReplayKind kind, const MessageFormat *current)
{
	const uint8_t *payload = msg->payload;
	size_t		len = payload ? msg->len : 0;
	char		key[STREAM_KEY_MAX + 1];
	MessageProblem problem;
	MessageEvent ev = {msg, kind, NULL, 0, NULL, NULL};
	const MessageFormat *fmt = NULL;

	if (kind == REPLAY_SKIP)
		return;
	/* a replayed message is read as it was the first time (replay.c) */
	if (kind == REPLAY_LEARN)
		fmt = replay_format(rd_kafka_topic_name(msg->rkt), msg->partition);
	if (fmt == NULL)
		fmt = current;
	if (len > (size_t) driftlock_kafka_max_payload_bytes)
	{
		char		detail[256];

		if (kind == REPLAY_LEARN)
			return;
		snprintf(detail, sizeof(detail),
				 "The payload is %zu bytes; driftlock.kafka_max_payload_bytes is %d. The first %d bytes are kept.",
				 len, driftlock_kafka_max_payload_bytes, DEAD_LETTER_PAYLOAD_MAX);
		dead_letter(msg, "payload_too_large", detail);
		return;
	}
	message_scored_payload(&payload, &len);	/* kafka_strip_schema_header */
	if (fmt->format != KAFKA_FORMAT_RAW)
	{
		process_batch_records(msg, kind, fmt, payload, len);
		return;
	}
	if (!message_stream_key(msg, payload, len, NULL, key, &problem))
	{
		if (kind == REPLAY_LIVE)
			dead_letter(msg, problem.reason, problem.detail);
		return;
	}
	ev.bytes = payload;
	ev.len = len;
	process_event(&ev, key);
}

/*
 * The next offset the worker expects of a partition: after its last message
 * in this batch (batch_next), else its position (owned); -1 when unknown.
 */
static int64
position(const rd_kafka_topic_partition_list_t *batch_next, const char *topic, int32 partition)
{
	const rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(batch_next, topic, partition);

	if (p == NULL && owned != NULL)
		p = rd_kafka_topic_partition_list_find(owned, topic, partition);
	return p != NULL && p->offset >= 0 ? p->offset : -1;
}

static MemoryContext message_cxt = NULL;
/* the lists of the batch in progress (a failed batch leaves them behind) */
static rd_kafka_topic_partition_list_t *batch_next = NULL;
static rd_kafka_topic_partition_list_t *batch_live = NULL;
static rd_kafka_topic_partition_list_t *batch_first = NULL;

static rd_kafka_topic_partition_list_t *
new_list(rd_kafka_topic_partition_list_t **slot)
{
	if (*slot != NULL)
		rd_kafka_topic_partition_list_destroy(*slot);
	return *slot = rd_kafka_topic_partition_list_new(8);
}

/*
 * Process batch[from..to) in one transaction.  Returns the next offsets to
 * tell Kafka (the caller destroys the list): those of the live messages;
 * replayed ones move only the partitions' positions (owned).  Returns NULL,
 * with nothing done and the detectors dropped, when saved detector states
 * changed under the worker: the partitions must be read again from their
 * checkpoints.
 *
 * caught_up: the batch did not fill up, or nothing fetched is waiting
 * behind it, so the worker has read all there was; it then checkpoints
 * too.  A worker that keeps up has the time, SQL readers of
 * driftlock.stream_state see current states, and a stop or a crash once
 * the topic is quiet replays nothing.  A worker that falls
 * behind fills its batches and checkpoints by the settings.
 */
static rd_kafka_topic_partition_list_t *
process_batch(int from, int to, bool caught_up)
{
	rd_kafka_topic_partition_list_t *next;
	rd_kafka_topic_partition_list_t *live;
	rd_kafka_topic_partition_list_t *first;
	bool		checkpoint;
	char		activity[300];
	char		label[256];
	MessageFormat current;

	next = new_list(&batch_next);
	live = new_list(&batch_live);
	first = new_list(&batch_first);
	if (message_cxt == NULL)
		message_cxt = AllocSetContextCreate(TopMemoryContext, "driftlock message",
											ALLOCSET_DEFAULT_SIZES);

	topic_list_label(driftlock_kafka_topic, label, sizeof(label));
	snprintf(activity, sizeof(activity), "processing %d messages from %s", to - from, label);
	pgstat_report_activity(STATE_RUNNING, activity);

	spi_xact_begin();
	if (detectors_invalidated())
	{
		/* saved states changed under the cache (dead_letter_replay.c) */
		AbortCurrentTransaction();
		detector_cache_reset();
		replay_forget();
		return NULL;			/* the caller rewinds to the checkpoints */
	}
	fence_begin();
	gap_begin();
	incidents_begin();
	feedback_batch_begin();
	/* the settings do not change within a batch (SIGHUP is handled between) */
	message_format_current(&current);

	for (int i = from; i < to; i++)
	{
		const rd_kafka_message_t *msg = batch[i];
		const char *topic = rd_kafka_topic_name(msg->rkt);
		int64		expected = position(next, topic, msg->partition);
		ReplayKind kind;
		MemoryContext old;

		if (expected >= 0 && msg->offset > expected)
			gap_check(rk, topic, msg->partition, expected, msg->offset,
					  replay_until(topic, msg->partition));
		kind = replay_kind(topic, msg->partition, msg->offset);

		failing_kind = kind;
		CHECK_FOR_INTERRUPTS();
		/* what one message allocates goes with it, whatever the batch size */
		old = MemoryContextSwitchTo(message_cxt);
		failing_step = "insert_failed";
		process_message(msg, kind, &current);
		MemoryContextSwitchTo(old);
		MemoryContextReset(message_cxt);
		set_partition_offset(next, topic, msg->partition, msg->offset + 1);
		if (kind == REPLAY_LIVE)
		{
			set_partition_offset(live, topic, msg->partition, msg->offset + 1);
			if (rd_kafka_topic_partition_list_find(first, topic, msg->partition) == NULL)
				set_partition_offset(first, topic, msg->partition, msg->offset);
		}
	}
	for (int i = 0; i < live->cnt; i++)
		fence_save_offset(driftlock_kafka_group_id, live->elems[i].topic,
						  live->elems[i].partition, live->elems[i].offset,
						  rd_kafka_topic_partition_list_find(first, live->elems[i].topic,
															 live->elems[i].partition)->offset);
	checkpoint_count_messages(to - from);
	/* where every owned partition stands once this batch is in */
	merge_offsets(&owned, next);
	if ((checkpoint = checkpoint_due() || caught_up))
		checkpoint_write(owned);
	/* delivered at the commit, and only if it commits */
	incidents_notify();

	spi_xact_commit();
	fence_committed();
	gap_committed(worker_id);
	if (checkpoint)
		checkpoint_committed();
	pgstat_report_stat(false);
	batch_live = NULL;			/* the caller destroys it */
	return live;
}

typedef struct RecordDeadLetters
{
	const rd_kafka_message_t *msg;
	const uint8_t *payload;
	const OtlpBatch *batch;
	const char *reason;
	const char *detail;
} RecordDeadLetters;

/* Each record of a message a dead letter of its own (spi_subxact_try). */
static void
record_dead_letters(void *arg)
{
	RecordDeadLetters *r = arg;

	for (size_t i = 0; i < r->batch->count; i++)
	{
		MemoryContext old;

		record_cxt_enter(&old);
		record_dead_letter(r->msg, r->payload, &r->batch->records[i], r->reason, r->detail);
		record_cxt_leave(old);
	}
}

/*
 * A message that failed as a whole: one dead letter, or one per log record
 * of an OpenTelemetry batch, each then replayable on its own (none of its
 * records taught a detector: the replay skips them all).
 */
static void
dead_letter_whole(const rd_kafka_message_t *msg, const char *reason, const char *detail)
{
	const uint8_t *payload = msg->payload;
	size_t		len = payload ? msg->len : 0;
	MessageFormat fmt;
	OtlpBatch	b;

	message_format_current(&fmt);
	message_scored_payload(&payload, &len);
	if (fmt.format == KAFKA_FORMAT_RAW ||
		len > (size_t) driftlock_kafka_max_payload_bytes ||
		!decode_batch(msg, REPLAY_LEARN, &fmt, payload, len, &b) || b.count == 0)
	{
		dead_letter(msg, reason, detail);
		return;
	}

	/*
	 * This must not fail, or the partition is stuck: if the records cannot
	 * be set aside one by one (memory, a trigger on the table), the message
	 * is set aside whole.
	 */
	{
		RecordDeadLetters r = {msg, payload, &b, reason, detail};
		ErrorData  *edata = spi_subxact_try(record_dead_letters, &r);

		if (edata != NULL)
			dead_letter(msg, reason,
						psprintf("%s (Its log records could not be set aside one by one: %s)",
								 detail, edata->message ? edata->message : "unknown error"));
	}
}

/*
 * A message that fails even alone becomes a dead letter, with the error, in
 * a transaction of its own that also moves its partition's offset past it:
 * one poisonous message (a trigger that rejects its anomaly row, a damaged
 * saved state) must not hold up everything behind it.  If even that fails,
 * the error goes up and the batch is retried later.
 */
static rd_kafka_topic_partition_list_t *
dead_letter_failed(const rd_kafka_message_t *msg, const char *reason, ErrorData *edata)
{
	rd_kafka_topic_partition_list_t *next = rd_kafka_topic_partition_list_new(1);
	char	   *detail = psprintf("Processing this message failed even on its own: %s%s%s",
								  edata->message ? edata->message : "unknown error",
								  edata->detail ? " " : "", edata->detail ? edata->detail : "");

	spi_xact_begin();
	fence_begin();
	dead_letter_whole(msg, reason, detail);
	fence_save_offset(driftlock_kafka_group_id, rd_kafka_topic_name(msg->rkt),
					  msg->partition, msg->offset + 1, msg->offset);
	spi_xact_commit();
	fence_committed();
	set_partition_offset(next, rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset + 1);
	ereport(LOG,
			(errmsg("driftlock kafka worker %d set message %s[%d]@%lld aside as a dead letter (%s)",
					worker_id, rd_kafka_topic_name(msg->rkt), msg->partition,
					(long long) msg->offset, reason)));
	return next;
}

/*
 * Message i alone in a transaction; a dead letter if it fails.  Returns
 * false after a dead letter, or when the detectors were stale: the
 * detectors were dropped.
 */
static bool
process_alone(const int i)
{
	rd_kafka_topic_partition_list_t *volatile next = NULL;
	volatile bool ok = true;

	PG_TRY();
	{
		next = process_batch(i, i + 1, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *reason = failing_step;

		/*
		 * A replayed message committed its results before: retry later.  A
		 * fenced batch belongs to the partition's new owner now.
		 */
		if (failing_kind != REPLAY_LIVE || fence_tripped())
			PG_RE_THROW();
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		detector_cache_reset();
		stream_lookup_forget();
		next = dead_letter_failed(batch[i], reason, edata);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (next == NULL)
		return false;			/* stale detectors (process_batch) */
	kafka_offsets_committed(next, XactLastCommitEnd);
	rd_kafka_topic_partition_list_destroy(next);
	return ok;
}

/*
 * Retry the batch one message per transaction (see dead_letter_failed).
 * After a dead letter the rest of the batch is read again from the
 * checkpoint, the detectors having been dropped.
 */
static void
process_isolated(rd_kafka_t *rk)
{
	for (int i = 0; i < batch_len; i++)
	{
		if (!process_alone(i))
		{
			drop_batch();
			consumer_rewind(rk);
			return;
		}
	}
}

/*
 * Keep the detector cache within its budget.  What a checkpoint saved can
 * go; trimming to 90% leaves room for a few batches before the next
 * checkpoint has to make room again.
 */
static void
trim_cache(void)
{
	static uint64 released = 0;
	Size		budget = (Size) driftlock_detector_cache_memory * 1024;
	DetectorCacheStats cs;

	if (detector_cache_trim(driftlock_detector_cache_size, budget))
		(void) detector_cache_trim(driftlock_detector_cache_size - driftlock_detector_cache_size / 10,
								   budget - budget / 10);
	/* else the next batch checkpoints (checkpoint_due) */

	/*
	 * Dropped detectors leave their memory free inside malloc's heap, in
	 * pieces between live ones: without a trim the process keeps it, and
	 * with 100,000 streams churning through the cache it held 1.6 times the
	 * budget.  Give it back every eighth of the budget evicted.
	 */
	detector_cache_stats(&cs);
	if (cs.evicted_bytes - released > budget / 8)
	{
		released = cs.evicted_bytes;
#ifdef __GLIBC__
		malloc_trim(0);
#endif
	}
}

/* After a commit: duration, cache use and lag of the batch's partitions. */
static void
publish_batch_metrics(rd_kafka_t *rk)
{
	static DetectorCacheStats published;
	DetectorCacheStats cs;
	long		secs;
	int			usecs;

	TimestampDifference(batch_started, GetCurrentTimestamp(), &secs, &usecs);
	metrics_batch_done(secs + usecs / 1e6);
	detector_cache_stats(&cs);
	metrics_cache_stats(cs.hits - published.hits, cs.misses - published.misses,
						cs.evictions - published.evictions, replay_take_count());
	published = cs;
	metrics_detectors_active(worker_id, cs.entries, (uint64) cs.bytes);
	refresh_lag(rk, true);
}

/*
 * What the main loop keeps between turns: static, they must survive the
 * longjmp of a failed batch.
 */
static ConsumerSettings settings;
static bool consumer_broken = false;	/* its settings were refused */
static long backoff_ms = 0;
static int	failures = 0;			/* batches failed since failed_until was clear */

/* SIGHUP: new settings; the consumer is made again when they concern it. */
static void
handle_reload(void)
{
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	consumer_broken = false;	/* a fixed setting deserves a new try */
	if (rk != NULL && (!driftlock_kafka_enabled || settings_changed(&settings)))
	{
		ereport(LOG, (errmsg("driftlock kafka worker %d reconnecting: settings changed", worker_id)));
		/* positions too: nothing read so far is replayed under new settings */
		checkpoint_request();
		(void) checkpoint_now(owned, "reconnecting");
		kafka_offsets_flush(rk, true);
		consumer_close(rk);
		rk = NULL;
		detector_cache_reset();
		replay_forget();
		fence_forget();
	}
}

/*
 * Is the extension installed at this library's version?  If not, says so
 * (once per state), waits a little and returns false.
 */
static bool
schema_ready(void)
{
	static bool waiting_logged = false;
	static SchemaState logged_state = SCHEMA_CURRENT;
	char		installed[64];
	SchemaState state = schema_state(installed, sizeof(installed));

	if (state == SCHEMA_CURRENT)
	{
		waiting_logged = false;
		return true;
	}
	/* once per state: CREATE EXTENSION 0.1.0 still needs the update */
	if (waiting_logged && state != logged_state)
		waiting_logged = false;
	logged_state = state;
	if (!waiting_logged)
		ereport(LOG,
				(state == SCHEMA_MISSING
				 ? errmsg("driftlock kafka worker %d waiting for CREATE EXTENSION driftlock in database \"%s\"",
						  worker_id, driftlock_database)
				 : errmsg("driftlock kafka worker %d waiting for ALTER EXTENSION driftlock UPDATE in database \"%s\": its SQL objects are version %s, the library is version %s",
						  worker_id, driftlock_database, installed, DRIFTLOCK_VERSION)));
	waiting_logged = true;
	pgstat_report_activity(STATE_IDLE, state == SCHEMA_MISSING
						   ? "waiting for CREATE EXTENSION driftlock"
						   : "waiting for ALTER EXTENSION driftlock UPDATE");
	wait_ms(5000);
	return false;
}

/* A consumer, made when missing; false (after waiting) when there is none. */
static bool
consumer_ready(void)
{
	if (rk != NULL)
		return true;
	/* checked before connecting, not at every idle turn */
	if (!schema_ready())
		return false;
	if (consumer_broken)
	{
		wait_ms(60000);
		return false;
	}
	rk = consumer_create(worker_id, &settings);
	if (rk == NULL)
	{
		consumer_broken = true;
		return false;
	}
	return true;
}

/*
 * The batch was fenced (offset_fence.c): its partitions have a new owner.
 * Nothing learnt or held since the last commit may be saved or sent to
 * Kafka: drop it all and rejoin the group with a new consumer, which reads
 * the new owner's offsets at its next assignment.
 */
static void
rejoin_after_fence(void)
{
	ereport(LOG,
			(errmsg("driftlock kafka worker %d rejoining group \"%s\": its batch was fenced and rolled back",
					worker_id, driftlock_kafka_group_id)));
	kafka_offsets_forget();
	forget_partitions();
	/* closing revokes: with all forgotten, on_revoke saves and sends nothing */
	consumer_close(rk);
	rk = NULL;
}

/*
 * A batch failed and was rolled back: rejoin the group when it was fenced,
 * else read its partitions again from their checkpoints, after a backoff.
 */
static void
after_failed_batch(void)
{
	char		installed[64];

	if (fence_tripped())
	{
		rejoin_after_fence();
		failures = 0;
		backoff_ms = 0;
		return;
	}
	failures++;
	backoff_ms = backoff_ms == 0 ? BACKOFF_MIN_MS : Min(backoff_ms * 2, BACKOFF_MAX_MS);
	ereport(LOG,
			(errmsg("driftlock kafka worker %d will retry the batch in %ld ms from the last checkpoint",
					worker_id, backoff_ms)));
	if (schema_state(installed, sizeof(installed)) == SCHEMA_MISSING)
	{
		/* DROP EXTENSION: stop consuming until it is created again */
		consumer_close(rk);
		rk = NULL;
	}
	else
		consumer_rewind(rk);
	wait_ms(backoff_ms);
}

/*
 * Process the collected batch; after a failure roll back, forget what the
 * detectors learnt since the checkpoint and replay from it, with backoff.
 */
static void
run_batch(void)
{
	PG_TRY();
	{
		if (failures >= ISOLATE_AFTER_FAILURES)
		{
			ereport(LOG,
					(errmsg("driftlock kafka worker %d retrying a batch of %d messages one by one after %d failures",
							worker_id, batch_len, failures)));
			process_isolated(rk);
		}
		else
		{
			rd_kafka_topic_partition_list_t *next =
				process_batch(0, batch_len, batch_len < driftlock_kafka_max_in_flight ||
							  consumer_drained(rk));

			if (next == NULL)
				consumer_rewind(rk);	/* stale detectors (process_batch) */
			else
			{
				kafka_offsets_committed(next, XactLastCommitEnd);
				rd_kafka_topic_partition_list_destroy(next);
			}
		}
		drop_batch();
		trim_cache();
		publish_batch_metrics(rk);
		if (failed_batches_passed())
		{
			backoff_ms = 0;
			failures = 0;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(TopMemoryContext);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		failed_batch_remember();
		drop_batch();
		detector_cache_reset();
		stream_lookup_forget();
		after_failed_batch();
	}
	PG_END_TRY();
}

void
driftlock_kafka_worker_main(Datum main_arg)
{
	char		activity[300];
	char		label[256];

	worker_id = DatumGetInt32(main_arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	/* backs off after failed starts (kafka_worker_start.c) */
	worker_start_connect(worker_id);
	{
		char		name[64];

		/* tells the workers apart in pg_stat_activity.application_name */
		snprintf(name, sizeof(name), "driftlock kafka worker %d", worker_id);
		SetConfigOption("application_name", name, PGC_USERSET, PGC_S_SESSION);
	}

	detector_cache_init();
	metrics_worker_started(worker_id);
	consumer_on_revoke = on_revoke;
	consumer_on_assign = on_assign;
	/* see the file header: batches may commit without waiting for a flush */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	memset(&settings, 0, sizeof(settings));

	while (!ShutdownRequestPending)
	{
		CHECK_FOR_INTERRUPTS();
		/* the busy loop does not wait on the latch, so look for ourselves */
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (ConfigReloadPending)
			handle_reload();
		if (!driftlock_kafka_enabled)
		{
			pgstat_report_activity(STATE_IDLE, "disabled (driftlock.kafka_enabled is off)");
			wait_ms(1000);
			continue;
		}
		if (RecoveryInProgress())
		{
			/*
			 * Registered to start once recovery has finished, so only a
			 * worker started otherwise gets here; a standby must not consume
			 * (it cannot write), it waits for its promotion.
			 */
			pgstat_report_activity(STATE_IDLE, "waiting for the end of recovery");
			wait_ms(1000);
			continue;
		}
		if (!consumer_ready())
			continue;

		kafka_offsets_flush(rk, false);
		refresh_lag(rk, false);
		resolve_quiet_incidents();
		if (worker_id == 0)
			retention_turn();
		topic_list_label(settings.topic, label, sizeof(label));
		reachability_probe(rk);
		reachability_activity(activity, sizeof(activity), label);
		pgstat_report_activity(STATE_IDLE, activity);
		collect_batch(rk);
		if (consumer_rebalance_failed())
		{
			ereport(LOG,
					(errmsg("driftlock kafka worker %d restarting: the stored offsets of its partitions could not be read",
							worker_id)));
			drop_batch();
			consumer_close(rk);
			proc_exit(1);
		}
		if (rewind_needed)
		{
			rewind_needed = false;
			drop_batch();
			consumer_rewind(rk);
		}
		else if (batch_len > 0)
			run_batch();
		else if (checkpoint_due())
		{
			/* a quiet topic: save what learnt since the last checkpoint */
			if (!checkpoint_now(owned, "idle"))
				rewind_needed = true;	/* the cache was dropped */
		}
	}

	/* SIGTERM: the last batch has committed (the loop only ends between batches) */
	if (rk != NULL)
	{
		/* a clean stop replays nothing at the next start */
		(void) checkpoint_now(owned, "shutting down");
		kafka_offsets_flush(rk, true);
		consumer_close(rk);
	}
	drop_batch();
	proc_exit(1);
}
