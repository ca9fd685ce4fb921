/*
 * kafka_message.c -- reading a Kafka message: its stream id (header or JSON
 * field) and its headers as JSON for dead letters (the stream an id names:
 * stream_lookup.c); the same rules for a dead letter's stored headers and
 * payload, when it is replayed (dead_letter_replay.c)
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

/*
 * Where a message's stream id may be: the value of its last header named
 * driftlock.kafka_stream_id_header (found says whether there is one; value
 * NULL for a null value), and its payload.
 */
typedef struct KeySource
{
	bool		found;
	const void *value;
	size_t		size;
	const char *payload;
	size_t		len;
} KeySource;

/* The stream id of a message by the rules of message_stream_key(). */
static bool
stream_key_from(const KeySource *src, char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	const char *field = driftlock_kafka_stream_id_field;
	bool		use_header = header != NULL && header[0] != '\0';
	bool		use_field = field != NULL && field[0] != '\0';

	problem->reason = NULL;
	if (use_header && src->found)
	{
		char		source[300];

		snprintf(source, sizeof(source), "header \"%s\"", header);
		return accept_key(src->value, src->value ? src->size : 0, source, key, problem);
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
		switch (json_path_lookup(src->payload, src->len, field,
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

bool
message_stream_key(const rd_kafka_message_t *msg, char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	KeySource	src = {false, NULL, 0, msg->payload, msg->payload ? msg->len : 0};

	if (header != NULL && header[0] != '\0')
	{
		rd_kafka_headers_t *hdrs = NULL;

		src.found = rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			rd_kafka_header_get_last(hdrs, header, &src.value, &src.size) == RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	return stream_key_from(&src, key, problem);
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

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A string of message_headers_json() read back: the text itself, or, for
 * bytes that are not text, "\x" and their hex digits.  Text that only
 * looks like that is told apart by decoding it: bytes that are valid UTF-8
 * without NUL were written as text.
 */
static void
header_bytes(const JsonbValue *v, const char **bytes, size_t *len)
{
	const char *s = v->val.string.val;
	size_t		n = (size_t) v->val.string.len;
	char	   *decoded;
	size_t		dlen;

	*bytes = s;
	*len = n;
	if (n < 2 || n % 2 != 0 || s[0] != '\\' || s[1] != 'x')
		return;
	dlen = (n - 2) / 2;
	decoded = palloc(dlen + 1);
	for (size_t i = 0; i < dlen; i++)
	{
		int			hi = hex_digit(s[2 + 2 * i]);
		int			lo = hex_digit(s[3 + 2 * i]);

		if (hi < 0 || lo < 0)
			return;
		decoded[i] = (char) (hi << 4 | lo);
	}
	if (memchr(decoded, '\0', dlen) != NULL || !pg_verify_mbstr(PG_UTF8, decoded, (int) dlen, true))
	{
		*bytes = decoded;
		*len = dlen;
	}
}

bool
dead_letter_stream_key(Jsonb *headers, const uint8_t *payload, size_t len, char *key,
					   MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	KeySource	src = {false, NULL, 0, (const char *) payload, len};
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	bool		cut = false;

	/* headers of another shape than message_headers_json()'s hold none */
	if (header == NULL || header[0] == '\0' || headers == NULL ||
		!JB_ROOT_IS_ARRAY(headers) || JB_ROOT_IS_SCALAR(headers))
		return stream_key_from(&src, key, problem);

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		JsonbValue	name;
		JsonbValue	value;
		const char *bytes;
		size_t		n;

		if (tok != WJB_ELEM || elem.type != jbvBinary)
			continue;
		if (getKeyJsonValueFromContainer(elem.val.binary.data, "truncated", 9, &value) != NULL)
		{
			cut = true;
			continue;
		}
		if (getKeyJsonValueFromContainer(elem.val.binary.data, "key", 3, &name) == NULL ||
			name.type != jbvString ||
			getKeyJsonValueFromContainer(elem.val.binary.data, "value", 5, &value) == NULL ||
			(value.type != jbvString && value.type != jbvNull))
			continue;
		header_bytes(&name, &bytes, &n);
		if (n != strlen(header) || memcmp(bytes, header, n) != 0)
			continue;
		/* the last one wins, as with rd_kafka_header_get_last() */
		src.found = true;
		src.value = NULL;
		src.size = 0;
		if (value.type == jbvString)
			header_bytes(&value, (const char **) &src.value, &src.size);
	}
	if (cut)
	{
		set_problem(problem, "missing_stream_id",
					"The message's headers were cut when it was set aside: its last header \"%s\" may be among those lost.",
					header);
		return false;
	}
	return stream_key_from(&src, key, problem);
}
