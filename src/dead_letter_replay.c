/*
 * dead_letter_replay.c -- driftlock_replay_dead_letters(): dead letters fed
 * through the Kafka worker's path once their cause is fixed, while the
 * workers run; and how the workers learn that saved detectors changed
 *
 * A dead letter goes the way its message would have gone: its stream is
 * resolved from its stored headers and payload by the worker's rules
 * (kafka_message.c, stream_lookup.c), the stream's detector learns pending
 * feedback and observes it (learning only, for a learn-only stream), and an
 * anomaly is recorded with its incident (incidents.c) at the message's
 * Kafka position, so that the exactly-once uniqueness of anomalies holds.
 * Each stream's dead letters go in (topic, partition, offset) order; the
 * rows are locked with SKIP LOCKED, so concurrent calls never replay a row
 * twice, and deleted in the transaction that records their results and
 * saves the detector.
 *
 * Safe while the workers run.  A worker keeps its detectors in memory and
 * saves them at checkpoints (checkpoint.c) with, per partition, the offset
 * they stand at; after a failure it reads again from there (replay.c).
 * Three rules keep every message learnt exactly once:
 *
 * 1. Only dead letters behind their partition's checkpoint offset (of the
 *    group driftlock.kafka_group_id) are replayed.  A worker that reads a
 *    partition again starts at its checkpoint, which only moves forward, so
 *    it never meets a replayed message again -- had it met one, no longer
 *    a dead letter, it would have learnt it a second time.  Newer dead
 *    letters wait for the next checkpoint (within
 *    driftlock.checkpoint_interval, at once when the worker has caught up):
 *    the call reports them as waiting.
 *
 * 2. The new state is the latest saved one plus what the replay taught.
 *    The detector starts from the state saved when the stream's turn
 *    comes, and the state's row is locked only at the end, just before the
 *    save (the worker too records anomalies, locking incidents, before it
 *    saves states: the same order, so the two do not deadlock over a
 *    stream).  If the saved state changed meanwhile (a checkpoint, another
 *    call), the locked state learns again the feedback and the replayed
 *    events, and is saved.  Verdicts stay those computed against the
 *    earlier state.
 *
 * 3. The workers drop their detectors.  At commit the call sends a relcache
 *    invalidation of driftlock.stream_state_changes, a sequence that
 *    nothing else changes (VACUUM and ANALYZE of stream_state itself send
 *    relcache invalidations of it, which would make the workers start over
 *    after every autovacuum).  Invalidations are sent before the
 *    committing transaction's locks are released and are read by other
 *    backends at their next transaction start or lock.  A worker that sees
 *    one (detectors_invalidated()) at the start of a batch abandons that
 *    transaction, drops the batch, its detectors and its replay plans, and
 *    reads its partitions again from their checkpoints: its detectors load
 *    the new states and relearn the messages since the checkpoint.  The
 *    same check comes before a checkpoint taken between batches, and after
 *    every checkpoint's saves (detectors_check_unchanged()): a checkpoint
 *    that waited for the row lock of a state this call saved, or that
 *    loaded its detectors before this call committed, would write them over
 *    the replayed learning; it finds the invalidation (sent before the lock
 *    was released) and fails instead, and its batch is retried from the
 *    checkpoint.
 *
 * A dead letter is read the way its message was (its kafka_format, not the
 * setting now).  A dead letter of a log record of an OpenTelemetry batch
 * holds that record alone, as a batch of one: it is decoded and replayed
 * as the record, at its position (with its record index).  A whole batch
 * is replayed whole, each record at its index, when a header or key names
 * its stream (or it holds one record); one whose records are named by
 * their resource attributes (a batch over driftlock.kafka_max_payload_bytes
 * when it came, say) stays, reported: its records may belong to several
 * streams, and each stream's replay is a subtransaction of its own.  Such
 * batches are produced to Kafka again.
 *
 * Replayed events reach their detector after the events that came since
 * they were set aside, so their verdicts can differ from what they would
 * have been on time; their incidents take the time of the replay (a dead
 * letter keeps no Kafka timestamp).
 *
 * Every statement is parameterised; nothing is built from payloads.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "batch_writer.h"
#include "dead_letter_replay.h"
#include "detector_glue.h"
#include "driftlock.h"
#include "feedback.h"
#include "guc.h"
#include "incidents.h"
#include "kafka_message.h"
#include "message_metadata.h"
#include "message/otlp_logs.h"
#include "metrics.h"
#include "spi_plans.h"
#include "stream_autocreate.h"
#include "stream_lookup.h"
#include "stream_state.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_replay_dead_letters);

/* The relation whose relcache invalidation tells the workers (rule 3). */
#define CHANGES_CHANNEL "stream_state_changes"

/* Dead letters listed per statement (each with a payload of up to 64 KiB). */
#define LIST_PAGE 100

/* Tries of a stream's replay that meets concurrent writers (see below). */
#define REPLAY_ATTEMPTS 5

/* Why a dead letter stays. */
typedef enum LeftCause
{
	LEFT_NO_PAYLOAD,			/* payload NULL */
	LEFT_CUT,					/* 64 KiB or more: maybe cut when set aside */
	LEFT_TOO_LARGE,				/* over driftlock.kafka_max_payload_bytes */
	LEFT_NO_STREAM,				/* names no stream (yet) */
	LEFT_WAITING,				/* not behind its partition's checkpoint yet */
	LEFT_OTLP,					/* no batch, or not of one stream */
	LEFT_CAUSES
} LeftCause;

/* A dead letter to replay. */
typedef struct Candidate
{
	pg_uuid_t	stream;
	int64		id;
	const char *topic;			/* NULL: no Kafka position */
	int32		partition;
	int64		offset;
	int32		record_index;	/* its log record in the message; 0 for a raw one */
	bool		has_index;		/* a log record's dead letter (kafka_record_index set) */
	int			format;			/* how its message was read (kafka_format) */
} Candidate;

typedef struct ReplayRun
{
	MemoryContext cxt;			/* of the call: candidates, topics */
	Candidate  *cands;
	int			ncands;
	int			cap;
	int64		left[LEFT_CAUSES];
	char		no_stream_example[300];	/* a dead letter that names no stream */
	char		no_stream_detail[512];
	char		otlp_example[300];	/* a dead letter that is not one log record */
	char		otlp_detail[512];
	int64		replayed;
	int64		anomalies;
} ReplayRun;

/* One stream's replay: its detector and what it learnt. */
typedef struct StreamReplay
{
	pg_uuid_t	id;
	MemoryContext cxt;			/* all of the below */
	cbad_detector *det;
	bool		learn_only;
	bytea	   *state;			/* the saved state it started from, NULL: none */
	List	   *feedback;		/* payloads learnt as feedback (bytea *) */
	int64	   *done;			/* ids of the dead letters replayed */
	int			ndone;
	int64		anomalies;		/* recorded */
	int64		no_payload;		/* payload gone since the listing */
	int64		gone;			/* dead letters of a stream dropped meanwhile */
} StreamReplay;

/* A copy of a bytea datum (detoasted) in cxt. */
static bytea *
copy_bytea(Datum d, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bytea	   *copy = DatumGetByteaPCopy(d);

	MemoryContextSwitchTo(old);
	return copy;
}

/* ------------------------------------------------------------------------
 * Telling the workers (rule 3)
 * ------------------------------------------------------------------------ */

static bool invalidated = false;
static bool callback_registered = false;
static Oid	channel_relid = InvalidOid;

static Oid
channel(void)
{
	Oid			nsp = get_namespace_oid("driftlock", true);

	return OidIsValid(nsp) ? get_relname_relid(CHANGES_CHANNEL, nsp) : InvalidOid;
}

/* Relcache invalidation: of the channel, or of everything (InvalidOid). */
static void
channel_invalidated(Datum arg, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(channel_relid) && relid == channel_relid))
	{
		invalidated = true;
		/* DROP and CREATE EXTENSION: another relation, look it up again */
		channel_relid = InvalidOid;
	}
}

bool
detectors_invalidated(void)
{
	bool		was = invalidated;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(channel_invalidated, (Datum) 0);
		callback_registered = true;
	}
	if (!OidIsValid(channel_relid))
		channel_relid = channel();
	invalidated = false;
	if (was)
		ereport(LOG,
				(errmsg("driftlock kafka worker drops its detectors and reads its partitions again from their checkpoints: saved detector states changed under it"),
				 errdetail("driftlock_replay_dead_letters() saved states that include replayed dead letters.")));
	return was;
}

void
detectors_check_unchanged(void)
{
	/* what was sent before the row locks of the saves were granted */
	AcceptInvalidationMessages();
	if (invalidated)
	{
		invalidated = false;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("driftlock kafka worker could not save its detectors: driftlock_replay_dead_letters() changed saved states meanwhile"),
				 errdetail("Saving would have overwritten what the replayed dead letters taught the detectors."),
				 errhint("The batch is retried from the last checkpoint, with the new states.")));
	}
}

/* ------------------------------------------------------------------------
 * Listing the dead letters
 * ------------------------------------------------------------------------ */

/*
 * A page of dead letters of a reason (NULL: any), in id order, with the
 * checkpoint offset of their partition in group $2 (NULL when the group
 * has no offsets for it: no worker of the group will read it again).
 */
static CachedStatement list_stmt = {
	"SELECT d.id, d.kafka_topic, d.kafka_partition, d.kafka_offset, d.headers, d.payload, "
	"(SELECT coalesce(k.checkpoint_offset, k.next_offset) FROM driftlock.kafka_offsets k "
	"WHERE k.group_id = $2 AND k.topic = d.kafka_topic AND k.partition = d.kafka_partition), "
	"d.kafka_key, d.kafka_record_index, d.kafka_format FROM driftlock.dead_letters d WHERE d.id > $3 AND ($1::text IS NULL OR d.reason = $1) "
	"ORDER BY d.id LIMIT $4",
	4, {TEXTOID, TEXTOID, INT8OID, INT8OID}, NULL
};

/* reason must be one of the CHECK constraint of driftlock.dead_letters */
static void
check_reason(const char *reason)
{
	StringInfoData all;

	for (int i = 0; i < METRICS_REASONS; i++)
		if (strcmp(reason, metrics_reasons[i]) == 0)
			return;
	initStringInfo(&all);
	for (int i = 0; i < METRICS_REASONS; i++)
		appendStringInfo(&all, "%s%s", i == 0 ? "" : i == METRICS_REASONS - 1 ? " and " : ", ",
						 metrics_reasons[i]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is not a reason of driftlock dead letters", reason),
			 errhint("The reasons are %s; NULL replays dead letters of any reason.", all.data)));
}

static void
check_stream_exists(pg_uuid_t *id)
{
	static CachedStatement exists_stmt = {
		"SELECT FROM driftlock.streams WHERE id = $1",
		1, {UUIDOID}, NULL
	};
	Datum		args[1] = {UUIDPGetDatum(id)};

	if (spi_run(&exists_stmt, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "looking up a stream failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("driftlock stream %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)))),
				 errhint("Streams are rows of driftlock.streams.")));
}

/*
 * The events of a dead letter, read the way its message was read (its
 * kafka_format): the payload itself, one event (raw: records NULL), or the
 * log records of the OpenTelemetry batch it holds (a record's dead letter
 * holds one).  In the current memory context.
 */
typedef struct DeadLetterEvents
{
	size_t		count;
	const OtlpRecord *records;
} DeadLetterEvents;

static bool
dead_letter_events(const uint8_t *payload, size_t len, bool has_index, int format,
				   DeadLetterEvents *ev, char *why, size_t whylen)
{
	OtlpBatch	b;
	char		err[256];

	ev->count = 1;
	ev->records = NULL;
	if (format == KAFKA_FORMAT_RAW)
	{
		if (!has_index)
			return true;
		snprintf(why, whylen, "It has a record index but was read as a raw message.");
		return false;
	}
	message_scored_payload(&payload, &len);
	if (!message_decode_batch(payload, len, format, driftlock_otlp_stream_attribute,
							  &b, err, sizeof(err)))
	{
		snprintf(why, whylen, "Its payload is not an OpenTelemetry logs batch in %s: %s",
				 kafka_format_name(format), err);
		return false;
	}
	if (has_index && b.count != 1)
	{
		snprintf(why, whylen, "It stands for one log record, but its payload holds %zu.", b.count);
		return false;
	}
	ev->count = b.count;
	ev->records = b.records;
	return true;
}

/* The bytes the detector scores of event i (message_scored_payload()). */
static void
event_bytes(const DeadLetterEvents *ev, size_t i, bytea *payload, const uint8_t **bytes,
			size_t *len)
{
	if (ev->records != NULL)
	{
		*bytes = (const uint8_t *) ev->records[i].text;
		*len = ev->records[i].text_len;
		return;
	}
	*bytes = (const uint8_t *) VARDATA_ANY(payload);
	*len = VARSIZE_ANY_EXHDR(payload);
	message_scored_payload(bytes, len);
}

/* A dead letter's kafka_format (NULL: 0.1.0's rows and rows by hand, raw). */
static int
row_format(HeapTuple t, TupleDesc d, int column)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, column, &isnull);

	return kafka_format_from_name(isnull ? NULL : TextDatumGetCString(v));
}

/* The stream a dead letter names now; false with why in problem. */
static bool
resolve(Jsonb *headers, bytea *mkey, const uint8_t *payload, size_t len,
		const OtlpRecord *record, pg_uuid_t *stream, bool *learn_only, MessageProblem *problem)
{
	char		key[STREAM_KEY_MAX + 1];
	cbad_config cfg;

	message_scored_payload(&payload, &len);
	if (!dead_letter_stream_key(headers,
								mkey ? (const uint8_t *) VARDATA_ANY(mkey) : NULL,
								mkey ? VARSIZE_ANY_EXHDR(mkey) : 0,
								payload, len, record, key, problem))
		return false;
	/* created on demand as by the worker (driftlock.kafka_auto_create_streams) */
	switch (stream_resolve(key, STREAM_CREATE, stream, &cfg, learn_only))
	{
		case STREAM_FOUND:
			return true;
		case STREAM_OVER_LIMIT:
			problem->reason = "stream_limit";
			stream_limit_detail(problem->detail, sizeof(problem->detail));
			return false;
		case STREAM_UNKNOWN:
			break;
	}
	problem->reason = "unknown_stream";
	snprintf(problem->detail, sizeof(problem->detail),
			 "No stream in driftlock.streams has the id or name \"%s\".", key);
	return false;
}

/* The same topic string, in cxt, for every dead letter of a topic. */
static const char *
intern_topic(MemoryContext cxt, text *topic, const char **last)
{
	size_t		len = VARSIZE_ANY_EXHDR(topic);

	if (*last == NULL || strlen(*last) != len || memcmp(*last, VARDATA_ANY(topic), len) != 0)
	{
		char	   *copy = MemoryContextAlloc(cxt, len + 1);

		memcpy(copy, VARDATA_ANY(topic), len);
		copy[len] = '\0';
		*last = copy;
	}
	return *last;
}

/* How a dead letter is named in a notice: its position, else its id. */
static void
dead_letter_label(char *buf, size_t cap, int64 id, bool no_position, Datum topic,
				  Datum partition, Datum offset, bool has_index, Datum record_index)
{
	if (no_position)
		snprintf(buf, cap, "id " INT64_FORMAT, id);
	else if (has_index)
		snprintf(buf, cap, "%s[%d]@" INT64_FORMAT " log record %d", TextDatumGetCString(topic),
				 DatumGetInt32(partition), DatumGetInt64(offset), DatumGetInt32(record_index));
	else
		snprintf(buf, cap, "%s[%d]@" INT64_FORMAT, TextDatumGetCString(topic),
				 DatumGetInt32(partition), DatumGetInt64(offset));
}

/*
 * Keep the first dead letter left for cause, which the NOTICE names with
 * why (LEFT_NO_STREAM and LEFT_OTLP); the caller counts it.
 */
static void
left_example(ReplayRun *run, LeftCause cause, const char *why, int64 id, bool no_position,
			 Datum topic, Datum partition, Datum offset, bool has_index, Datum record_index)
{
	bool		otlp = cause == LEFT_OTLP;

	if (run->left[cause] > 0)
		return;
	dead_letter_label(otlp ? run->otlp_example : run->no_stream_example,
					  otlp ? sizeof(run->otlp_example) : sizeof(run->no_stream_example),
					  id, no_position, topic, partition, offset, has_index, record_index);
	strlcpy(otlp ? run->otlp_detail : run->no_stream_detail, why,
			otlp ? sizeof(run->otlp_detail) : sizeof(run->no_stream_detail));
}

/*
 * One listed dead letter: a candidate, a left one counted by cause, or
 * (another stream's, with a stream filter) nothing.  The payload is
 * detoasted in the caller's per-row context; after the stream lookup SPI
 * has made its own context current, so nothing is allocated per row there.
 */
static void
classify(ReplayRun *run, HeapTuple t, TupleDesc d, const pg_uuid_t *only_stream,
		 const char **last_topic)
{
	bool		isnull;
	bool		topic_null,
				partition_null,
				offset_null,
				checkpoint_null;
	int64		id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
	Datum		topic = SPI_getbinval(t, d, 2, &topic_null);
	Datum		partition = SPI_getbinval(t, d, 3, &partition_null);
	Datum		offset = SPI_getbinval(t, d, 4, &offset_null);
	Datum		headers = SPI_getbinval(t, d, 5, &isnull);
	Jsonb	   *jheaders = isnull ? NULL : DatumGetJsonbP(headers);
	Datum		payload = SPI_getbinval(t, d, 6, &isnull);
	bytea	   *bpayload = isnull ? NULL : DatumGetByteaPP(payload);
	Datum		checkpoint = SPI_getbinval(t, d, 7, &checkpoint_null);
	Datum		mkey = SPI_getbinval(t, d, 8, &isnull);
	bytea	   *bkey = isnull ? NULL : DatumGetByteaPP(mkey);
	bool		index_null;
	Datum		record_index = SPI_getbinval(t, d, 9, &index_null);
	const uint8_t *bytes = bpayload ? (const uint8_t *) VARDATA_ANY(bpayload) : NULL;
	size_t		len = bpayload ? VARSIZE_ANY_EXHDR(bpayload) : 0;
	MessageProblem problem;
	pg_uuid_t	stream;
	bool		learn_only;
	LeftCause	cause = LEFT_CAUSES;
	Candidate  *c;
	const OtlpRecord *record = NULL;
	int			format = row_format(t, d, 10);
	DeadLetterEvents ev;
	char		why[512];

	if (format != KAFKA_FORMAT_RAW && (bpayload == NULL || len >= DEAD_LETTER_PAYLOAD_MAX))
	{
		/* not all there: its records, and so its stream, are unknown */
		if (only_stream == NULL)
			run->left[bpayload == NULL ? LEFT_NO_PAYLOAD : LEFT_CUT]++;
		return;
	}
	if (bpayload != NULL && len < DEAD_LETTER_PAYLOAD_MAX)
	{
		if (!dead_letter_events(bytes, len, !index_null, format, &ev, why, sizeof(why)))
		{
			if (only_stream != NULL)
				return;			/* names no stream */
			left_example(run, LEFT_OTLP, why, id, topic_null || partition_null || offset_null,
						 topic, partition, offset, !index_null, record_index);
			run->left[LEFT_OTLP]++;
			return;
		}
		if (format != KAFKA_FORMAT_RAW && ev.count == 1)
			record = &ev.records[0];
		else if (format != KAFKA_FORMAT_RAW)
		{
			/* a whole batch: replayed whole when a header or key names its stream */
			snprintf(why, sizeof(why), "Its %zu log records are named by their resource attribute, not by a header or key: a whole batch is replayed only into one stream.",
					 ev.count);
			record = &message_batch_only;
		}
	}
	if (!resolve(jheaders, bkey, bytes, len, record, &stream, &learn_only, &problem))
	{
		/* neither header nor key names the batch's stream: why says so */
		bool		whole = record == &message_batch_only && problem.reason == NULL;

		if (only_stream != NULL)
			return;				/* not the stream asked for */
		cause = whole ? LEFT_OTLP : LEFT_NO_STREAM;
		left_example(run, cause, whole ? why : problem.detail, id,
					 topic_null || partition_null || offset_null,
					 topic, partition, offset, !index_null, record_index);
		if (whole)
		{
			run->left[LEFT_OTLP]++;
			return;
		}
	}
	else if (only_stream != NULL && memcmp(&stream, only_stream, sizeof(stream)) != 0)
		return;

	/* a payload that is not all there names the first cause */
	if (bpayload == NULL)
		cause = LEFT_NO_PAYLOAD;
	else if (len >= DEAD_LETTER_PAYLOAD_MAX)
		cause = LEFT_CUT;
	else if (cause == LEFT_CAUSES && len > (size_t) driftlock_kafka_max_payload_bytes)
		cause = LEFT_TOO_LARGE;
	else if (cause == LEFT_CAUSES && !checkpoint_null && !offset_null &&
			 DatumGetInt64(offset) >= DatumGetInt64(checkpoint))
		cause = LEFT_WAITING;
	if (cause != LEFT_CAUSES)
	{
		run->left[cause]++;
		return;
	}

	if (run->ncands == run->cap)
	{
		run->cap = Max(256, run->cap * 2);
		run->cands = run->cands == NULL
			? MemoryContextAllocHuge(run->cxt, sizeof(Candidate) * run->cap)
			: repalloc_huge(run->cands, sizeof(Candidate) * run->cap);
	}
	c = &run->cands[run->ncands++];
	c->stream = stream;
	c->id = id;
	c->topic = topic_null || partition_null || offset_null
		? NULL : intern_topic(run->cxt, DatumGetTextPP(topic), last_topic);
	c->partition = c->topic ? DatumGetInt32(partition) : 0;
	c->offset = c->topic ? DatumGetInt64(offset) : 0;
	c->record_index = index_null ? 0 : DatumGetInt32(record_index);
	c->has_index = !index_null;
	c->format = format;
}

/* Every dead letter of the reason, classified (pages in id order). */
static void
list_dead_letters(ReplayRun *run, const char *reason, const pg_uuid_t *only_stream)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		last_id = 0;
	const char *last_topic = NULL;
	/* what a dead letter's classification reads (payloads detoasted) */
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "driftlock dead letter",
												 ALLOCSET_DEFAULT_SIZES);

	args[0] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[0] = reason ? ' ' : 'n';
	args[1] = CStringGetTextDatum(driftlock_kafka_group_id ? driftlock_kafka_group_id : "");
	args[3] = Int64GetDatum(LIST_PAGE);
	for (;;)
	{
		SPITupleTable *page;
		uint64		n;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		args[2] = Int64GetDatum(last_id);
		/* read-only: the snapshot of the call, one listing */
		if (spi_run(&list_stmt, args, nulls, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "listing dead letters failed");
		page = SPI_tuptable;
		n = SPI_processed;
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			classify(run, page->vals[i], page->tupdesc, only_stream, &last_topic);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		if (n > 0)
			last_id = DatumGetInt64(SPI_getbinval(page->vals[n - 1], page->tupdesc, 1, &isnull));
		SPI_freetuptable(page);
		if (n < LIST_PAGE)
			break;
	}
	MemoryContextDelete(rowcxt);
}

/* By stream, then Kafka position with the record index (no position last), then id. */
static int
candidate_cmp(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;
	int			c = memcmp(&x->stream, &y->stream, sizeof(pg_uuid_t));

	if (c != 0)
		return c;
	if ((x->topic == NULL) != (y->topic == NULL))
		return x->topic == NULL ? 1 : -1;
	if (x->topic != NULL && (c = strcmp(x->topic, y->topic)) != 0)
		return c;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->record_index != y->record_index)
		return x->record_index < y->record_index ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* ------------------------------------------------------------------------
 * Replaying a stream
 * ------------------------------------------------------------------------ */

/*
 * The stream's settings and saved state, as committed now (not read-only:
 * a new snapshot).
 */
static CachedStatement load_stmt = {
	"SELECT s.config, s.learn_only, st.state FROM driftlock.streams s "
	"LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id WHERE s.id = $1",
	1, {UUIDOID}, NULL
};

/* The saved state, locked until the end of the transaction. */
static CachedStatement lock_state_stmt = {
	"SELECT state FROM driftlock.stream_state WHERE stream_id = $1 FOR UPDATE",
	1, {UUIDOID}, NULL
};

/* A dead letter, unless a concurrent call has it (or replayed it). */
static CachedStatement take_stmt = {
	"SELECT payload, kafka_timestamp, kafka_timestamp_type, kafka_key, headers::text "
	"FROM driftlock.dead_letters WHERE id = $1 FOR UPDATE SKIP LOCKED",
	1, {INT8OID}, NULL
};

/* A dead letter this call holds. */
static CachedStatement payload_stmt = {
	"SELECT payload, kafka_record_index IS NOT NULL, kafka_format FROM driftlock.dead_letters "
	"WHERE id = $1",
	1, {INT8OID}, NULL
};

static CachedStatement delete_stmt = {
	"DELETE FROM driftlock.dead_letters WHERE id = ANY ($1)",
	1, {INT8ARRAYOID}, NULL
};

/*
 * (Re)make the stream's detector in sr->cxt from its settings and a saved
 * state: the one saved now when from_now, else state (NULL: none).  False
 * when the stream is gone.
 */
static bool
load_detector(StreamReplay *sr, bool from_now, bytea *state)
{
	Datum		args[1] = {UUIDPGetDatum(&sr->id)};
	HeapTuple	t;
	TupleDesc	d;
	bool		isnull;
	bool		config_null;
	Datum		config;

	if (spi_run(&load_stmt, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "loading a stream's state failed");
	if (SPI_processed == 0)
		return false;
	t = SPI_tuptable->vals[0];
	d = SPI_tuptable->tupdesc;
	config = SPI_getbinval(t, d, 1, &config_null);
	sr->learn_only = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
	if (from_now)
	{
		Datum		saved = SPI_getbinval(t, d, 3, &isnull);

		state = isnull ? NULL : copy_bytea(saved, sr->cxt);
	}
	sr->state = state;
	sr->det = driftlock_stream_detector(config_null ? NULL : DatumGetJsonbP(config), state,
										sr->cxt, NULL);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * The events of a dead letter (dead_letter_events()), as classify() found
 * them: a change of the row since fails.
 */
static void
replayed_events(StreamReplay *sr, bytea *payload, bool has_index, int format,
				DeadLetterEvents *ev)
{
	char		why[512];

	if (!dead_letter_events((const uint8_t *) VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload),
							has_index, format, ev, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a dead letter of driftlock stream %s changed while it was replayed",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&sr->id)))),
				 errdetail_internal("%s", why)));
}

/* The detector observes an event, as the worker's does. */
static void
observe(StreamReplay *sr, const uint8_t *bytes, size_t len, cbad_verdict *verdict)
{
	driftlock_report_status(sr->learn_only
							? cbad_detector_observe_learning(sr->det, bytes, len, verdict)
							: cbad_detector_observe(sr->det, bytes, len, verdict),
							"scoring a replayed dead letter");
}

/*
 * Replay one dead letter into the stream's detector and record its
 * anomaly; false when a concurrent call has it.  In an SPI connection of
 * its own, so that nothing it reads stays behind.
 */
static bool
replay_one(StreamReplay *sr, const Candidate *c)
{
	Datum		args[1] = {Int64GetDatum(c->id)};
	AnomalySource src = {0};
	DeadLetterEvents ev;
	Datum		metadata[MESSAGE_METADATA_ARGS];
	char		metadata_nulls[MESSAGE_METADATA_ARGS];
	cbad_verdict verdict;
	bytea	   *payload;
	bool		isnull;

	SPI_connect();
	if (spi_run(&take_stmt, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "locking a dead letter failed");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return false;
	}
	payload = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
	{
		/* changed since it was listed: leave it */
		SPI_finish();
		sr->no_payload++;
		return false;
	}
	src.topic = c->topic;
	src.partition = c->partition;
	src.offset = c->offset;
	/* the message's metadata as the dead letter kept them (message_metadata.h) */
	for (int i = 0; i < MESSAGE_METADATA_ARGS; i++)
	{
		metadata[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2, &isnull);
		metadata_nulls[i] = isnull ? 'n' : ' ';
	}
	src.has_timestamp = metadata_nulls[0] == ' ';
	src.timestamp = src.has_timestamp ? DatumGetTimestampTz(metadata[0]) : 0;
	src.metadata_args = metadata;
	src.metadata_nulls = metadata_nulls;
	/* pending feedback, before the stream's next event, as the worker does */
	if (sr->ndone == 0)
		(void) feedback_apply_keep(&sr->id, sr->det, &src, &sr->feedback, sr->cxt);
	replayed_events(sr, payload, c->has_index, c->format, &ev);
	for (size_t i = 0; i < ev.count; i++)
	{
		const uint8_t *scored;
		size_t		scored_len;

		/* a record's dead letter is at its index; a whole batch's records at theirs */
		src.record_index = ev.records == NULL ? 0
			: c->has_index ? c->record_index : (int32) ev.records[i].index;
		event_bytes(&ev, i, payload, &scored, &scored_len);
		observe(sr, scored, scored_len, &verdict);
		if (driftlock_stream_record(&sr->id, sr->det, scored, scored_len, &verdict, &src, NULL, NULL))
			sr->anomalies++;
	}
	sr->done[sr->ndone++] = c->id;
	SPI_finish();
	return true;
}

/* Teach the detector of the state saved meanwhile what this call taught. */
static void
relearn(StreamReplay *sr)
{
	ListCell   *lc;

	foreach(lc, sr->feedback)
	{
		bytea	   *p = lfirst(lc);

		driftlock_report_status(cbad_detector_learn(sr->det, (const uint8_t *) VARDATA_ANY(p),
													VARSIZE_ANY_EXHDR(p)),
								"learning an event marked normal");
	}
	for (int i = 0; i < sr->ndone; i++)
	{
		Datum		args[1] = {Int64GetDatum(sr->done[i])};
		cbad_verdict verdict;
		bool		isnull;
		HeapTuple	t;
		TupleDesc	d;
		bytea	   *payload;
		DeadLetterEvents ev;

		SPI_connect();
		if (spi_run(&payload_stmt, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading a replayed dead letter failed");
		t = SPI_tuptable->vals[0];
		d = SPI_tuptable->tupdesc;
		payload = DatumGetByteaPP(SPI_getbinval(t, d, 1, &isnull));
		replayed_events(sr, payload, DatumGetBool(SPI_getbinval(t, d, 2, &isnull)),
						row_format(t, d, 3), &ev);
		for (size_t j = 0; j < ev.count; j++)
		{
			const uint8_t *bytes;
			size_t		len;

			event_bytes(&ev, j, payload, &bytes, &len);
			observe(sr, bytes, len, &verdict);
		}
		SPI_finish();
	}
}

static bool
same_state(bytea *a, bytea *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * Save the stream's detector over the latest saved state, locked (rule 2):
 * if that is not the state the detector started from, it starts from it
 * again and relearns.
 */
static void
save_stream(StreamReplay *sr)
{
	bool		saved = false;

	while (!saved)
	{
		Datum		args[1] = {UUIDPGetDatum(&sr->id)};
		bytea	   *now = NULL;
		bool		has_now;

		CHECK_FOR_INTERRUPTS();
		SPI_connect();
		if (spi_run(&lock_state_stmt, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "locking a stream's state failed");
		has_now = SPI_processed == 1;
		if (has_now)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			now = isnull ? NULL : copy_bytea(d, sr->cxt);
		}
		if (!same_state(sr->state, now))
		{
			/* saved meanwhile: start from it and learn again */
			cbad_detector_free(sr->det);
			if (!load_detector(sr, false, now))
				ereport(ERROR,
						(errcode(ERRCODE_NO_DATA_FOUND),
						 errmsg("driftlock stream %s was deleted while its dead letters were replayed",
								DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&sr->id))))));
			relearn(sr);
		}
		if (has_now)
		{
			driftlock_stream_save(&sr->id, sr->det);
			saved = true;
		}
		else
			/* false: a worker saved the stream's first state meanwhile */
			saved = driftlock_stream_save_new(&sr->id, sr->det);
		SPI_finish();
	}
}

static void
delete_replayed(StreamReplay *sr)
{
	Datum	   *ids = palloc(sizeof(Datum) * sr->ndone);
	Datum		args[1];

	for (int i = 0; i < sr->ndone; i++)
		ids[i] = Int64GetDatum(sr->done[i]);
	args[0] = PointerGetDatum(construct_array(ids, sr->ndone, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (spi_run(&delete_stmt, args, NULL, false, 0) != SPI_OK_DELETE || SPI_processed != (uint64) sr->ndone)
		elog(ERROR, "deleting replayed dead letters failed");
}

/*
 * The dead letters cands[0..n) of one stream, with the notification of the
 * incidents they opened or escalated; what happened in *sr.
 */
static void
replay_stream(StreamReplay *sr, const Candidate *cands, int n)
{
	memset(sr, 0, sizeof(*sr));
	sr->id = cands[0].stream;
	sr->cxt = AllocSetContextCreate(CurrentMemoryContext, "driftlock dead letter replay",
									ALLOCSET_DEFAULT_SIZES);
	sr->done = MemoryContextAllocHuge(sr->cxt, sizeof(int64) * n);
	if (!load_detector(sr, true, NULL))
	{
		/* dropped since the listing */
		sr->gone = n;
		return;
	}
	incidents_begin();
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(void) replay_one(sr, &cands[i]);
	}
	if (sr->ndone > 0)
	{
		save_stream(sr);
		delete_replayed(sr);
	}
	incidents_notify();
}

/* Errors of writers of the same rows meeting: worth another try. */
static bool
transient(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		/* two writers opening an incident of the same key */
		sqlerrcode == ERRCODE_UNIQUE_VIOLATION;
}

/*
 * One stream's replay in a subtransaction, tried again when it met a
 * concurrent writer of its rows (the Kafka worker recording the same
 * stream's anomalies, another call): a deadlock, a serialization failure,
 * an incident opened twice.  Whatever it did is rolled back first, its row
 * locks included.
 */
typedef struct StreamAttempt
{
	StreamReplay sr;
	const Candidate *cands;
	int			n;
} StreamAttempt;

static void
replay_stream_body(void *arg)
{
	StreamAttempt *a = arg;

	replay_stream(&a->sr, a->cands, a->n);
}

static void
replay_stream_retrying(ReplayRun *run, const Candidate *cands, int n)
{
	for (int attempt = 1;; attempt++)
	{
		StreamAttempt a;
		StreamReplay *sr = &a.sr;
		ErrorData  *edata;

		memset(&a, 0, sizeof(a));
		a.cands = cands;
		a.n = n;
		edata = spi_subxact_try(replay_stream_body, &a);

		if (sr->cxt != NULL)
			MemoryContextDelete(sr->cxt);
		if (edata != NULL)
		{
			if (!transient(edata->sqlerrcode) || attempt >= REPLAY_ATTEMPTS)
				ReThrowError(edata);
			ereport(DEBUG1,
					(errmsg("replaying the dead letters of a driftlock stream again after: %s",
							edata->message)));
			FreeErrorData(edata);
			continue;
		}
		run->replayed += sr->ndone;
		run->anomalies += sr->anomalies;
		run->left[LEFT_NO_PAYLOAD] += sr->no_payload;
		run->left[LEFT_NO_STREAM] += sr->gone;
		return;
	}
}

/* ------------------------------------------------------------------------
 * The SQL function
 * ------------------------------------------------------------------------ */

/* A NOTICE saying which dead letters stay, and why. */
static void
report_left(const ReplayRun *run)
{
	/* each cause, for one dead letter and for several */
	static const char *const what[LEFT_CAUSES][2] = {
		{"%lld has no payload", "%lld have no payload"},
		{"%lld has a payload of 64 KiB or more (perhaps cut when it was set aside)",
		"%lld have a payload of 64 KiB or more (perhaps cut when they were set aside)"},
		{"%lld is larger than driftlock.kafka_max_payload_bytes",
		"%lld are larger than driftlock.kafka_max_payload_bytes"},
		{"%lld names no stream", "%lld name no stream"},
		{"%lld is newer than its partition's last checkpoint",
		"%lld are newer than their partition's last checkpoint"},
		{"%lld cannot be replayed as the OpenTelemetry log records of one stream",
		"%lld cannot be replayed as the OpenTelemetry log records of one stream"}
	};
	StringInfoData detail;
	int64		total = 0;

	initStringInfo(&detail);
	for (int i = 0; i < LEFT_CAUSES; i++)
	{
		if (run->left[i] == 0)
			continue;
		if (total > 0)
			appendStringInfoString(&detail, ", ");
		appendStringInfo(&detail, what[i][run->left[i] > 1], (long long) run->left[i]);
		total += run->left[i];
	}
	if (total == 0)
		return;
	appendStringInfoChar(&detail, '.');
	if (run->left[LEFT_NO_STREAM] > 0)
		appendStringInfo(&detail, " The first naming no stream, %s: %s", run->no_stream_example,
						 run->no_stream_detail);
	if (run->left[LEFT_OTLP] > 0)
		appendStringInfo(&detail, " The first that is not one log record, %s: %s",
						 run->otlp_example, run->otlp_detail);
	ereport(NOTICE,
			(errmsg_plural("%lld dead letter stays in driftlock.dead_letters",
						   "%lld dead letters stay in driftlock.dead_letters",
						   total, (long long) total),
			 errdetail_internal("%s", detail.data),
			 run->left[LEFT_WAITING] > 0
			 ? errhint("Dead letters newer than their partition's last checkpoint are replayed by a later call, once the Kafka worker has checkpointed (within driftlock.checkpoint_interval, or as soon as it has caught up).")
			 : 0));
}

/*
 * driftlock_replay_dead_letters(reason text DEFAULT NULL, stream_id uuid
 *		DEFAULT NULL, OUT replayed bigint, OUT anomalies bigint,
 *		OUT remaining bigint, OUT waiting bigint) returns record
 *
 * Replays the dead letters of the reason (NULL: any) that resolve to the
 * stream (NULL: any) now; see the file header.  remaining counts the dead
 * letters of the filters that stay, waiting those of them that only wait
 * for a checkpoint.
 */
Datum
driftlock_replay_dead_letters(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	char	   *reason = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	pg_uuid_t  *only_stream = PG_ARGISNULL(1) ? NULL : PG_GETARG_UUID_P(1);
	ReplayRun	run;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int64		remaining = 0;

	memset(&run, 0, sizeof(run));
	run.cxt = cxt;
	if (reason != NULL)
		check_reason(reason);

	SPI_connect();
	driftlock_check_schema();
	if (only_stream != NULL)
		check_stream_exists(only_stream);
	list_dead_letters(&run, reason, only_stream);
	/* the worker's lookups, remembered across its batches: not here */
	stream_lookup_forget();

	if (run.ncands > 0)
		qsort(run.cands, run.ncands, sizeof(Candidate), candidate_cmp);
	for (int i = 0, j; i < run.ncands; i = j)
	{
		for (j = i + 1; j < run.ncands &&
			 memcmp(&run.cands[j].stream, &run.cands[i].stream, sizeof(pg_uuid_t)) == 0; j++)
			;
		replay_stream_retrying(&run, &run.cands[i], j - i);
	}
	if (run.replayed > 0)
	{
		Oid			relid = channel();

		if (!OidIsValid(relid))
			elog(ERROR, "driftlock.%s is missing", CHANGES_CHANNEL);
		/* sent at commit: the workers drop their detectors (rule 3) */
		CacheInvalidateRelcacheByRelid(relid);
	}
	SPI_finish();

	MemoryContextSwitchTo(cxt);
	report_left(&run);
	for (int i = 0; i < LEFT_CAUSES; i++)
		remaining += run.left[i];
	values[0] = Int64GetDatum(run.replayed);
	values[1] = Int64GetDatum(run.anomalies);
	values[2] = Int64GetDatum(remaining);
	values[3] = Int64GetDatum(run.left[LEFT_WAITING]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
