/*
 * kafka_message.c -- reading a Kafka message: its stream id (header or JSON
 * field) and its headers as JSON for dead letters (the stream an id names:
 * stream_lookup.c)
 *
 * When both driftlock.kafka_stream_id_header and
 * driftlock.kafka_stream_id_field are set, the header wins; the field is
 * used when the header is absent.  Nothing here trusts the message: ids are
 * length-checked and validated as UTF-8 before they reach SQL (as query
 * parameters, never as query text).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "guc.h"
#include "kafka_message.h"
#include "message/json_path.h"
#include "spi_plans.h"
#include "stream_config.h"

/* Headers kept in an anomaly or a dead letter, in bytes of JSON. */
#define HEADERS_JSON_MAX 65536

static void
set_problem(MessageProblem *problem, const char *reason, const char *fmt,...) pg_attribute_printf(3, 4);

static void
set_problem(MessageProblem *problem, const char *reason, const char *fmt,...)
{
	va_list		ap;

	problem->reason = reason;
	va_start(ap, fmt);
	vsnprintf(problem->detail, sizeof(problem->detail), fmt, ap);
	va_end(ap);
}

/* Copy a candidate id into key after checking it; false with a problem. */
static bool
accept_key(const char *value, size_t len, const char *source, char *key,
		   MessageProblem *problem)
{
	if (len == 0)
	{
		set_problem(problem, "invalid_stream_id", "The stream id in %s is empty.", source);
		return false;
	}
	if (len > STREAM_KEY_MAX)
	{
		set_problem(problem, "invalid_stream_id",
					"The stream id in %s is %zu bytes long; the longest accepted is %d bytes.",
					source, len, STREAM_KEY_MAX);
		return false;
	}
	if (memchr(value, '\0', len) != NULL ||
		!pg_verify_mbstr(PG_UTF8, value, (int) len, true))
	{
		set_problem(problem, "invalid_stream_id",
					"The stream id in %s is not valid UTF-8 text.", source);
		return false;
	}
	memcpy(key, value, len);
	key[len] = '\0';
	return true;
}

bool
message_stream_key(const rd_kafka_message_t *msg, char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	const char *field = driftlock_kafka_stream_id_field;
	bool		use_header = header != NULL && header[0] != '\0';
	bool		use_field = field != NULL && field[0] != '\0';

	problem->reason = NULL;
	if (use_header)
	{
		rd_kafka_headers_t *hdrs = NULL;
		const void *value;
		size_t		size;

		if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			rd_kafka_header_get_last(hdrs, header, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			char		source[300];

			snprintf(source, sizeof(source), "header \"%s\"", header);
			return accept_key(value, value ? size : 0, source, key, problem);
		}
	}
	if (use_field)
	{
		char		value[STREAM_KEY_MAX + 1];
		size_t		value_len = 0;
		const char *type_name = NULL;
		char		err[256];
		char		source[300];

		err[0] = '\0';
		snprintf(source, sizeof(source), "JSON field \"%s\"", field);
		switch (json_path_lookup(msg->payload, msg->payload ? msg->len : 0, field,
								 value, sizeof(value), &value_len, &type_name,
								 err, sizeof(err)))
		{
			case JSON_PATH_STRING:
				/* a value longer than the buffer is refused before it is read */
				return accept_key(value, value_len, source, key, problem);
			case JSON_PATH_NOT_STRING:
				set_problem(problem, "invalid_stream_id",
							"The JSON field \"%s\" is %s, not a string.", field,
							type_name ? type_name : "not a string");
				return false;
			case JSON_PATH_MISSING:
				break;
			case JSON_PATH_INVALID:
				set_problem(problem, "invalid_json",
							"The payload is not valid JSON, so the stream id field \"%s\" cannot be read: %s",
							field, err);
				return false;
			case JSON_PATH_BAD_PATH:
				set_problem(problem, "missing_stream_id",
							"driftlock.kafka_stream_id_field \"%s\" is not a usable path.", field);
				return false;
		}
	}
	if (!use_header && !use_field)
		set_problem(problem, "missing_stream_id",
					"Neither driftlock.kafka_stream_id_header nor driftlock.kafka_stream_id_field is set, so no message names its stream.");
	else if (use_header && use_field)
		set_problem(problem, "missing_stream_id",
					"The message has no header \"%s\" and its JSON has no field \"%s\".", header, field);
	else if (use_header)
		set_problem(problem, "missing_stream_id", "The message has no header \"%s\".", header);
	else
		set_problem(problem, "missing_stream_id", "The payload's JSON has no field \"%s\".", field);
	return false;
}

/* Append s (len bytes) as a JSON string: escaped text, or "\x<hex>". */
static void
append_json_bytes(StringInfo buf, const char *s, size_t len)
{
	if (memchr(s, '\0', len) == NULL && pg_verify_mbstr(PG_UTF8, s, (int) len, true))
	{
		char	   *copy = pnstrdup(s, len);

		escape_json(buf, copy);
		pfree(copy);
	}
	else
	{
		appendStringInfoString(buf, "\"\\\\x");
		for (size_t i = 0; i < len; i++)
			appendStringInfo(buf, "%02x", (unsigned char) s[i]);
		appendStringInfoChar(buf, '"');
	}
}

char *
message_headers_json(const rd_kafka_message_t *msg)
{
	rd_kafka_headers_t *hdrs = NULL;
	StringInfoData buf;
	const char *name;
	const void *value;
	size_t		size;

	if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (size_t i = 0;
		 rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
		 i++)
	{
		if (buf.len > HEADERS_JSON_MAX)
		{
			appendStringInfoString(&buf, ", {\"truncated\": true}");
			break;
		}
		appendStringInfoString(&buf, i ? ", {\"key\": " : "{\"key\": ");
		append_json_bytes(&buf, name, strlen(name));
		appendStringInfoString(&buf, ", \"value\": ");
		if (value == NULL)
			appendStringInfoString(&buf, "null");
		else
			append_json_bytes(&buf, value, size);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}
