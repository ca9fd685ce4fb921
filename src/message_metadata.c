/*
 * message_metadata.c -- a Kafka message's timestamp (with its type), key
 * and headers, as columns of driftlock.anomalies and driftlock.dead_letters
 *
 * What Kafka consumers show next to a message's position, for the rows the
 * worker writes: the anomalies (incidents.c) and the dead letters
 * (batch_writer.c).  Nothing here runs for a message that leaves no row:
 * the worker hands the message over and the row's writer reads it.
 *
 * Nothing is trusted: timestamps outside PostgreSQL's range count as none,
 * keys are bytes (bytea, capped at MESSAGE_KEY_MAX), and headers are JSON
 * built with escaping (kafka_message.c).
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"				/* in postgres.h before 16 */
#endif

#include "kafka_message.h"
#include "message_metadata.h"

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define UNIX_TO_POSTGRES_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

bool
message_timestamp(const rd_kafka_message_t *msg, TimestampTz *ts, const char **type_name)
{
	rd_kafka_timestamp_type_t type;
	/* milliseconds since the Unix epoch */
	int64_t		ms = rd_kafka_message_timestamp(msg, &type);
	int64		usecs;

	*ts = 0;
	if (type_name != NULL)
		*type_name = NULL;
	if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ms < 0 ||
		pg_mul_s64_overflow((int64) ms, 1000, &usecs) ||
		!IS_VALID_TIMESTAMP(usecs - UNIX_TO_POSTGRES_USECS))
		return false;
	*ts = (TimestampTz) (usecs - UNIX_TO_POSTGRES_USECS);
	if (type_name != NULL)
		*type_name = type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "log_append_time" : "create_time";
	return true;
}

void
message_metadata_args(const rd_kafka_message_t *msg, Datum *args, char *nulls)
{
	TimestampTz ts;
	const char *type_name;
	char	   *headers;

	memset(nulls, 'n', MESSAGE_METADATA_ARGS);
	if (msg == NULL)
		return;
	if (message_timestamp(msg, &ts, &type_name))
	{
		args[0] = TimestampTzGetDatum(ts);
		args[1] = CStringGetTextDatum(type_name);
		nulls[0] = nulls[1] = ' ';
	}
	if (msg->key != NULL)
	{
		size_t		keep = Min(msg->key_len, (size_t) MESSAGE_KEY_MAX);
		bytea	   *key = palloc(VARHDRSZ + keep);

		SET_VARSIZE(key, VARHDRSZ + keep);
		memcpy(VARDATA(key), msg->key, keep);
		args[2] = PointerGetDatum(key);
		nulls[2] = ' ';
	}
	if ((headers = message_headers_json(msg)) != NULL)
	{
		args[3] = CStringGetTextDatum(headers);
		nulls[3] = ' ';
	}
}
