/*
 * kafka_start.c -- where a partition with no offsets starts
 * (driftlock.kafka_start)
 *
 * It decides only for a partition that has no row in
 * driftlock.kafka_offsets and no Kafka offset committed for the group by
 * another PostgreSQL system (another instance's progress always wins, and
 * stored offsets always do; an offset this system committed itself does not
 * count: its rows were deleted to start over, or lost in a failover):
 *
 * - earliest (the default): the log start, as driftlock always did;
 * - latest: the log end at assignment;
 * - a timestamp: the first message whose timestamp is at or after it
 *   (rd_kafka_offsets_for_times, the broker's ListOffsets by time), or the
 *   log end when all of the partition's messages are older.
 *
 * latest and timestamps are resolved to a real offset at assignment, and
 * that offset is stored at once as the partition's row (next and
 * checkpoint offset), so the choice is made once: a worker that restarts
 * before the partition's first message does not jump to a later end and
 * skip what arrived meanwhile.
 *
 * auto.offset.reset stays librdkafka's setting (earliest unless
 * driftlock.kafka_properties says otherwise), but it now only decides where
 * a stored offset that Kafka no longer has resumes (retention_gap.c).
 */
#include "postgres.h"

#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "batch_writer.h"
#include "guc.h"
#include "kafka_start.h"
#include "message/kafka_properties.h"

KafkaStart	kafka_start_setting = {KAFKA_START_EARLIEST, 0};

/* How long the broker may take to say where partitions start. */
#define LIST_OFFSETS_TIMEOUT_MS 10000

/* Whether the last kafka_start_offsets() could not read the group's offsets. */
static bool committed_unknown = false;

#define START_HINT "Use earliest, latest, or a time stamp such as 2026-03-01 12:00:00+00."

/* Whether value is word (any case), give or take surrounding blanks. */
static bool
is_word(const char *value, const char *word)
{
	size_t		n = strlen(word);

	value += strspn(value, " \t");
	if (pg_strncasecmp(value, word, n) != 0)
		return false;
	value += n;
	return value[strspn(value, " \t")] == '\0';
}

bool
kafka_start_parse(const char *value, KafkaStart *out, char *detail, size_t detaillen,
				  char *hint, size_t hintlen)
{
	static const char *const relative[] = {"now", "today", "tomorrow", "yesterday",
	"infinity", "-infinity"};
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt;
	fsec_t		fsec;
	int			tz;
	int			dterr;
	Timestamp	ts;

	detail[0] = '\0';
	snprintf(hint, hintlen, "%s", START_HINT);
	if (value == NULL)
	{
		snprintf(detail, detaillen, "It is neither earliest, latest nor a time stamp.");
		return false;
	}
	if (is_word(value, "earliest"))
	{
		out->mode = KAFKA_START_EARLIEST;
		out->unix_ms = 0;
		return true;
	}
	if (is_word(value, "latest"))
	{
		out->mode = KAFKA_START_LATEST;
		out->unix_ms = 0;
		return true;
	}

	dterr = ParseDateTime(value, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf);
	if (dterr != 0 || nf == 0)
	{
		snprintf(detail, detaillen, "It is neither earliest, latest nor a time stamp.");
		return false;
	}
	/* ParseDateTime has lowered the case of the fields */
	for (int i = 0; i < nf; i++)
		for (size_t w = 0; w < lengthof(relative); w++)
			if (strcmp(field[i], relative[w]) == 0)
			{
				snprintf(detail, detaillen, "\"%s\" does not name a fixed point in time.", relative[w]);
				snprintf(hint, hintlen, "Use earliest, latest, or a time stamp such as 2026-03-01 12:00:00+00; for the end of the partitions when the worker joins, use latest.");
				return false;
			}
	if (session_timezone == NULL)
	{
		snprintf(detail, detaillen, "The server's time zone is not known yet.");
		return false;
	}
#if PG_VERSION_NUM >= 160000
	{
		DateTimeErrorExtra extra;

		dterr = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz, &extra);
	}
#else
	dterr = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz);
#endif
	if (dterr != 0)
	{
		snprintf(detail, detaillen, "It is neither earliest, latest nor a valid time stamp.");
		return false;
	}
	if (dtype == DTK_EPOCH)
		ts = SetEpochTimestamp();
	else if (dtype != DTK_DATE || tm2timestamp(&tt, fsec, &tz, &ts) != 0)
	{
		snprintf(detail, detaillen, "The time stamp is out of range.");
		return false;
	}
	/* Kafka's time stamps are milliseconds since 1970; below 0 mean other things */
	ts += (Timestamp) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	if (ts < 0)
	{
		snprintf(detail, detaillen, "Kafka's time stamps begin in 1970.");
		snprintf(hint, hintlen, "To start at the beginning of the partitions, use earliest.");
		return false;
	}
	out->mode = KAFKA_START_TIMESTAMP;
	/* the first message at or after it: round up to a whole millisecond */
	out->unix_ms = (ts + 999) / 1000;
	return true;
}

/* Ask the broker for the offsets of the time stamps in list (in place). */
static void
list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list)
{
	rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, LIST_OFFSETS_TIMEOUT_MS);

	for (int i = 0; i < list->cnt; i++)
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			list->elems[i].err = err;
}

rd_kafka_topic_partition_list_t *
kafka_start_offsets(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
					bool committed_known)
{
	rd_kafka_topic_partition_list_t *starts = rd_kafka_topic_partition_list_copy(parts);
	KafkaStart	start = kafka_start_setting;
	rd_kafka_topic_partition_list_t *past_end;

	committed_unknown = !committed_known;
	for (int i = 0; i < starts->cnt; i++)
	{
		starts->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
		starts->elems[i].offset = start.mode == KAFKA_START_TIMESTAMP ? start.unix_ms
			: start.mode == KAFKA_START_LATEST ? RD_KAFKA_OFFSET_END
			: committed_known ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_INVALID;
	}
	/* earliest needs no broker; nothing is decided without the group's offsets */
	if (start.mode == KAFKA_START_EARLIEST || !committed_known || starts->cnt == 0)
		return starts;
	list_offsets(rk, starts);
	if (start.mode == KAFKA_START_LATEST)
		return starts;

	/* partitions with no message at or after the time start at their end */
	past_end = rd_kafka_topic_partition_list_new(starts->cnt);
	for (int i = 0; i < starts->cnt; i++)
		if (starts->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && starts->elems[i].offset < 0)
			rd_kafka_topic_partition_list_add(past_end, starts->elems[i].topic,
											  starts->elems[i].partition)->offset = RD_KAFKA_OFFSET_END;
	if (past_end->cnt > 0)
	{
		list_offsets(rk, past_end);
		for (int i = 0; i < past_end->cnt; i++)
		{
			rd_kafka_topic_partition_t *s =
				rd_kafka_topic_partition_list_find(starts, past_end->elems[i].topic,
												   past_end->elems[i].partition);

			s->offset = past_end->elems[i].offset;
			s->err = past_end->elems[i].err;
		}
	}
	rd_kafka_topic_partition_list_destroy(past_end);
	return starts;
}

bool
kafka_start_partition(int worker_id, const rd_kafka_topic_partition_t *start,
					  rd_kafka_topic_partition_t *p, int64 *next)
{
	if (kafka_start_setting.mode != KAFKA_START_EARLIEST &&
		(committed_unknown || start->err != RD_KAFKA_RESP_ERR_NO_ERROR || start->offset < 0))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("driftlock kafka worker %d cannot tell where %s[%d] starts",
						worker_id, p->topic, p->partition),
				 committed_unknown
				 ? errdetail("The partition has no stored offsets and driftlock.kafka_start is \"%s\", but the group's committed Kafka offsets could not be read.",
							 driftlock_kafka_start)
				 : errdetail("The partition has no stored offsets and driftlock.kafka_start is \"%s\", but the broker did not say which offset that is: %s.",
							 driftlock_kafka_start,
							 start->err ? rd_kafka_err2str(start->err) : "no offset"),
				 errhint("The worker tries again when it restarts.")));
	p->offset = start->offset;
	if (p->offset < 0)
		return false;			/* earliest: nothing to store */
	/* no row, none expected: an insert (a row that appeared fails it) */
	if (!batch_move_offset(driftlock_kafka_group_id, p->topic, p->partition, false, 0,
						   p->offset, p->offset))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("driftlock kafka worker %d found stored offsets of %s[%d] it had not seen",
						worker_id, p->topic, p->partition),
				 errhint("The worker reads them when it restarts.")));
	ereport(LOG,
			(errmsg("driftlock kafka worker %d starts %s[%d] at offset %lld (driftlock.kafka_start = '%s'): the partition had no offsets",
					worker_id, p->topic, p->partition, (long long) p->offset,
					driftlock_kafka_start)));
	*next = p->offset;
	return true;
}

static int
find_offset_reset(const char *key, const char *value, void *opaque, char *err, size_t errlen)
{
	if (strcmp(key, "auto.offset.reset") == 0)
		*(bool *) opaque = true;
	return 0;
}

void
kafka_start_note_properties(int worker_id)
{
	bool		found = false;
	char		err[256];

	(void) kafka_properties_parse(driftlock_kafka_properties, find_offset_reset, &found,
								  err, sizeof(err));
	if (found)
		ereport(LOG,
				(errmsg("driftlock kafka worker %d: auto.offset.reset in driftlock.kafka_properties applies only to stored offsets Kafka no longer has",
						worker_id),
				 errdetail("Partitions without offsets start where driftlock.kafka_start says (\"%s\").",
						   driftlock_kafka_start)));
}
