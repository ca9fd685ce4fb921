/*
 * batch_writer.c -- dead letters, offsets and checkpoint offsets of a Kafka batch
 *
 * Called with SPI connected inside the batch's transaction, so that
 * anomalies, dead letters, detector states and the next offsets commit
 * together.  Every statement is parameterised.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "batch_writer.h"
#include "dead_letter_limit.h"
#include "guc.h"
#include "message_metadata.h"
#include "spi_plans.h"

static CachedStatement dead_letter_stmt = {
	"INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, "
	"kafka_record_index, kafka_format, reason, detail, payload, kafka_timestamp, "
	"kafka_timestamp_type, kafka_key, headers) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb) "
	"ON CONFLICT (kafka_topic, kafka_partition, kafka_offset, kafka_record_index) DO NOTHING",
	12, {TEXTOID, INT4OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID,
	TIMESTAMPTZOID, TEXTOID, BYTEAOID, TEXTOID}, NULL
};

static CachedStatement dead_range_stmt = {
	"INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, "
	"kafka_offset_end, reason, detail) VALUES ($1, $2, $3, $4, $5, $6) "
	"ON CONFLICT (kafka_topic, kafka_partition, kafka_offset, kafka_record_index) DO NOTHING",
	6, {TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID, TEXTOID}, NULL
};

/*
 * The offsets move only from where the worker last saw them (offset_fence.c):
 * a new row when it saw none, whose checkpoint offset is the first offset
 * it processed (nothing of the partition before it was learnt) ...
 */
static CachedStatement insert_offset_stmt = {
	"INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset, "
	"checkpoint_offset, updated_at, kafka_format, otlp_stream_attribute) "
	"VALUES ($1, $2, $3, $4, $5, now(), $6, $7) "
	"ON CONFLICT (group_id, topic, partition) DO NOTHING",
	7, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID, TEXTOID}, NULL
};

/* ... else the row it saw; a null checkpoint offset meant "at next_offset" */
static CachedStatement move_offset_stmt = {
	"UPDATE driftlock.kafka_offsets SET next_offset = $4, updated_at = now(), "
	"checkpoint_offset = coalesce(checkpoint_offset, next_offset), "
	"kafka_format = $6, otlp_stream_attribute = $7 "
	"WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
	7, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID, TEXTOID}, NULL
};

static CachedStatement save_checkpoint_stmt = {
	"UPDATE driftlock.kafka_offsets SET checkpoint_offset = $4 "
	"WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
	5, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID}, NULL
};

static CachedStatement load_offset_stmt = {
	"SELECT next_offset, checkpoint_offset, kafka_format, otlp_stream_attribute "
	"FROM driftlock.kafka_offsets "
	"WHERE group_id = $1 AND topic = $2 AND partition = $3",
	3, {TEXTOID, TEXTOID, INT4OID}, NULL
};

/* whole messages (record index -1) before the records of the same message */
static CachedStatement dead_letter_offsets_stmt = {
	"SELECT kafka_offset, coalesce(kafka_record_index, -1) FROM driftlock.dead_letters "
	"WHERE kafka_topic = $1 AND kafka_partition = $2 AND kafka_offset >= $3 "
	"AND kafka_offset < $4 ORDER BY 1, 2",
	4, {TEXTOID, INT4OID, INT8OID, INT8OID}, NULL
};

void
batch_dead_letter(const char *topic, int32 partition, int64 offset, int32 record_index,
				  const char *reason, const char *detail,
				  const struct rd_kafka_message_s *msg,
				  const uint8_t *payload, size_t len)
{
	Datum		args[8 + MESSAGE_METADATA_ARGS];
	char		nulls[8 + MESSAGE_METADATA_ARGS] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	size_t		keep;
	bytea	   *p;
	int			ret;

	dead_letter_limit_apply(topic, partition, &payload, &len, &detail);
	keep = Min(len, (size_t) DEAD_LETTER_PAYLOAD_MAX);
	p = palloc(VARHDRSZ + keep);
	SET_VARSIZE(p, VARHDRSZ + keep);
	if (keep)
		memcpy(VARDATA(p), payload, keep);
	args[0] = CStringGetTextDatum(topic);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(offset);
	args[3] = Int32GetDatum(record_index);
	if (record_index < 0)
		nulls[3] = 'n';
	/* how the message was read: how driftlock_replay_dead_letters() reads it */
	args[4] = CStringGetTextDatum(kafka_format_name(driftlock_kafka_format));
	args[5] = CStringGetTextDatum(reason);
	args[6] = CStringGetTextDatum(detail);
	args[7] = PointerGetDatum(p);
	if (payload == NULL)
		nulls[7] = 'n';
	message_metadata_args(msg, &args[8], &nulls[8]);
	ret = spi_run(&dead_letter_stmt, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "recording a dead letter failed: %s", SPI_result_code_string(ret));
}

void
batch_dead_range(const char *topic, int32 partition, int64 from, int64 until,
				 const char *reason, const char *detail)
{
	Datum		args[6];
	int			ret;

	args[0] = CStringGetTextDatum(topic);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(from);
	args[3] = Int64GetDatum(until);
	args[4] = CStringGetTextDatum(reason);
	args[5] = CStringGetTextDatum(detail);
	ret = spi_run(&dead_range_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "recording a dead letter failed: %s", SPI_result_code_string(ret));
}

/* The group, topic and partition arguments of the offset statements. */
static void
partition_args(Datum *args, const char *group, const char *topic, int32 partition)
{
	args[0] = CStringGetTextDatum(group);
	args[1] = CStringGetTextDatum(topic);
	args[2] = Int32GetDatum(partition);
}

bool
batch_move_offset(const char *group, const char *topic, int32 partition, bool stored,
				  int64 expected, int64 next_offset, int64 first_offset)
{
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	MessageFormat format;
	int			ret;

	partition_args(args, group, topic, partition);
	args[3] = Int64GetDatum(next_offset);
	args[4] = Int64GetDatum(stored ? expected : first_offset);
	/* the batch was read the way the settings say now (raw: no attribute) */
	message_format_current(&format);
	args[5] = CStringGetTextDatum(kafka_format_name(format.format));
	args[6] = CStringGetTextDatum(format.otlp_stream_attribute);
	if (format.otlp_stream_attribute[0] == '\0')
		nulls[6] = 'n';
	ret = spi_run(stored ? &move_offset_stmt : &insert_offset_stmt, args, nulls, false, 0);
	if (ret != (stored ? SPI_OK_UPDATE : SPI_OK_INSERT))
		elog(ERROR, "saving a Kafka offset failed: %s", SPI_result_code_string(ret));
	return SPI_processed == 1;
}

bool
batch_save_checkpoint(const char *group, const char *topic, int32 partition,
					  int64 expected, int64 offset)
{
	Datum		args[5];
	int			ret;

	partition_args(args, group, topic, partition);
	args[3] = Int64GetDatum(offset);
	args[4] = Int64GetDatum(expected);
	ret = spi_run(&save_checkpoint_stmt, args, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "saving a checkpoint offset failed: %s", SPI_result_code_string(ret));
	return SPI_processed == 1;
}

bool
batch_load_offset(const char *group, const char *topic, int32 partition,
				  int64 *next_offset, int64 *checkpoint_offset, MessageFormat *format)
{
	Datum		args[3];
	bool		isnull;
	int			ret;

	partition_args(args, group, topic, partition);
	ret = spi_run(&load_offset_stmt, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading a Kafka offset failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	*next_offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*checkpoint_offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		*checkpoint_offset = *next_offset;	/* 0.1.0's rows, rows written by hand */
	if (format != NULL)
	{
		Datum		d;
		bool		attr_null;

		memset(format, 0, sizeof(*format));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		format->format = kafka_format_from_name(isnull ? NULL : TextDatumGetCString(d));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &attr_null);
		if (!attr_null && format->format != KAFKA_FORMAT_RAW)
			text_to_cstring_buffer(DatumGetTextPP(d), format->otlp_stream_attribute,
								   sizeof(format->otlp_stream_attribute));
	}
	return true;
}

DeadLetterPosition *
batch_dead_letter_offsets(const char *topic, int32 partition, int64 from, int64 until,
						  int *count)
{
	Datum		args[4];
	DeadLetterPosition *offsets;
	bool		isnull;
	int			ret;

	args[0] = CStringGetTextDatum(topic);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(from);
	args[3] = Int64GetDatum(until);
	ret = spi_run(&dead_letter_offsets_stmt, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading dead letter offsets failed: %s", SPI_result_code_string(ret));
	*count = (int) SPI_processed;
	offsets = MemoryContextAlloc(TopMemoryContext, sizeof(*offsets) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		offsets[i].offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		offsets[i].record_index = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	return offsets;
}
