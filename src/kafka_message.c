/*
 * kafka_message.c -- reading a Kafka message: the bytes that are scored
 * (driftlock.kafka_strip_schema_header), its stream id (header, key or
 * JSON field) and its headers as JSON for dead letters (the stream an id
 * names: stream_lookup.c); the same rules for a dead letter's stored
 * headers, key and payload, when it is replayed (dead_letter_replay.c)
 *
 * The sources of driftlock.kafka_stream_id_source are tried in order, and
 * the first one the message has decides, even when its id is invalid; a
 * header or field whose setting is empty is skipped.  The default, "header,
 * json", is 0.1.0's rule: the header wins, the field is used when the
 * header is absent.  A null or empty key counts as absent.  Nothing here
 * trusts the message: ids are length-checked and validated as UTF-8 before
 * they reach SQL (as query parameters, never as query text).
 *
 * A log record of an OpenTelemetry batch (driftlock.kafka_format otlp_*)
 * is named by its resource attribute driftlock.otlp_stream_attribute,
 * unless a header or key source names the message's stream first: the
 * JSON field is not a source then (a batch is not one JSON event).
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
#include "message/confluent_frame.h"
#include "message/json_path.h"
#include "spi_plans.h"
#include "stream_config.h"

/* Headers kept in a dead letter, in bytes of JSON. */
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

/* What a source said: the id (in key), a problem, or that it has none. */
typedef enum SourceResult
{
	SOURCE_FOUND,
	SOURCE_PROBLEM,
	SOURCE_ABSENT
} SourceResult;

/*
 * Where a message's stream id may be: the value of its last header named
 * driftlock.kafka_stream_id_header (header_found says whether there is
 * one; value NULL for a null value), its key, and its scored payload.
 */
typedef struct KeySource
{
	bool		header_found;
	const void *header_value;
	size_t		header_size;
	const void *key;
	size_t		key_len;
	const uint8_t *payload;
	size_t		len;
	/*
	 * A log record of an OpenTelemetry batch (NULL: a raw message): its
	 * resource attribute comes instead of the JSON field, which a batch
	 * does not have, after the header and the key.
	 */
	const OtlpRecord *record;
} KeySource;

static SourceResult
from_header(const KeySource *src, const char *header, char *key, MessageProblem *problem)
{
	char		source[300];

	if (!src->header_found)
		return SOURCE_ABSENT;
	snprintf(source, sizeof(source), "header \"%s\"", header);
	return accept_key(src->header_value, src->header_value ? src->header_size : 0, source, key, problem)
		? SOURCE_FOUND : SOURCE_PROBLEM;
}

/* A null or empty key is no key: producers that do not key send either. */
static SourceResult
from_key(const KeySource *src, char *key, MessageProblem *problem)
{
	if (src->key == NULL || src->key_len == 0)
		return SOURCE_ABSENT;
	return accept_key(src->key, src->key_len, "the message key", key, problem)
		? SOURCE_FOUND : SOURCE_PROBLEM;
}

static SourceResult
from_json(const uint8_t *payload, size_t len, const char *field, char *key,
		  MessageProblem *problem)
{
	char		value[STREAM_KEY_MAX + 1];
	size_t		value_len = 0;
	const char *type_name = NULL;
	char		err[256];
	char		source[300];

	err[0] = '\0';
	snprintf(source, sizeof(source), "JSON field \"%s\"", field);
	switch (json_path_lookup((const char *) payload, payload ? len : 0, field,
							 value, sizeof(value), &value_len, &type_name,
							 err, sizeof(err)))
	{
		case JSON_PATH_STRING:
			/* a value longer than the buffer is refused before it is read */
			return accept_key(value, value_len, source, key, problem) ? SOURCE_FOUND : SOURCE_PROBLEM;
		case JSON_PATH_NOT_STRING:
			set_problem(problem, "invalid_stream_id",
						"The JSON field \"%s\" is %s, not a string.", field,
						type_name ? type_name : "not a string");
			return SOURCE_PROBLEM;
		case JSON_PATH_MISSING:
			return SOURCE_ABSENT;
		case JSON_PATH_INVALID:
			set_problem(problem, "invalid_json",
						"The payload is not valid JSON, so the stream id field \"%s\" cannot be read: %s",
						field, err);
			return SOURCE_PROBLEM;
		case JSON_PATH_BAD_PATH:
			set_problem(problem, "missing_stream_id",
						"driftlock.kafka_stream_id_field \"%s\" is not a usable path.", field);
			return SOURCE_PROBLEM;
	}
	return SOURCE_ABSENT;
}

/*
 * The stream id of a log record: its resource attribute
 * driftlock.otlp_stream_attribute (tried: how many header and key sources
 * the message did not have).
 */
static bool
from_record(const OtlpRecord *record, int tried, char *key, MessageProblem *problem)
{
	const char *attribute = driftlock_otlp_stream_attribute;
	char		source[300];

	if (record->stream != NULL)
	{
		snprintf(source, sizeof(source), "resource attribute \"%s\"", attribute);
		return accept_key(record->stream, record->stream_len, source, key, problem);
	}
	set_problem(problem, "missing_stream_id",
				"The log record's resource has no attribute \"%s\" with a string, number or boolean value%s.",
				attribute,
				tried == 0 ? "" : ", and the message names no stream in a header or its key");
	return false;
}

const OtlpRecord message_batch_only = {0};

/* The stream id by the rules of message_stream_key(). */
static bool
stream_key_from(const KeySource *src, char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	const char *field = driftlock_kafka_stream_id_field;
	const StreamIdSources *sources = &driftlock_stream_id_sources;
	StringInfoData absent;
	int			tried = 0;

	problem->reason = NULL;
	for (int i = 0; i < sources->count; i++)
	{
		SourceResult r = SOURCE_ABSENT;

		switch (sources->source[i])
		{
			case STREAM_ID_HEADER:
				if (header == NULL || header[0] == '\0')
					continue;	/* unset: not a source */
				r = from_header(src, header, key, problem);
				break;
			case STREAM_ID_KEY:
				r = from_key(src, key, problem);
				break;
			case STREAM_ID_JSON:
				if (field == NULL || field[0] == '\0' || src->record != NULL)
					continue;
				r = from_json(src->payload, src->len, field, key, problem);
				break;
		}
		if (r != SOURCE_ABSENT)
			return r == SOURCE_FOUND;
		tried++;
	}
	if (src->record == &message_batch_only)
	{
		problem->reason = NULL;		/* neither names it: each record's attribute does */
		return false;
	}
	if (src->record != NULL)
		return from_record(src->record, tried, key, problem);

	if (tried == 0)
	{
		set_problem(problem, "missing_stream_id",
					"driftlock.kafka_stream_id_source is \"%s\", but the settings it relies on (driftlock.kafka_stream_id_header, driftlock.kafka_stream_id_field) are empty, so no message names its stream.",
					driftlock_kafka_stream_id_source);
		return false;
	}
	/* "The message has no header "X", no key and its JSON has no field "f"." */
	initStringInfo(&absent);
	for (int i = 0, n = 0; i < sources->count; i++)
	{
		StreamIdSource s = sources->source[i];

		if ((s == STREAM_ID_HEADER && (header == NULL || header[0] == '\0')) ||
			(s == STREAM_ID_JSON && (field == NULL || field[0] == '\0')))
			continue;
		n++;
		appendStringInfoString(&absent, n == 1 ? "" : n == tried ? " and " : ", ");
		if (s == STREAM_ID_HEADER)
			appendStringInfo(&absent, "%sno header \"%s\"", n == 1 ? "has " : "", header);
		else if (s == STREAM_ID_KEY)
			appendStringInfo(&absent, "%sno key", n == 1 ? "has " : "");
		else
			appendStringInfo(&absent, "%s has no field \"%s\"",
							 n == 1 ? "has a payload whose JSON" : "its JSON", field);
	}
	set_problem(problem, "missing_stream_id", "The message %s.", absent.data);
	pfree(absent.data);
	return false;
}

bool
message_stream_key(const rd_kafka_message_t *msg, const uint8_t *payload, size_t len,
				   const OtlpRecord *record, char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	KeySource	src = {false, NULL, 0, msg->key, msg->key ? msg->key_len : 0, payload, len, record};

	if (header != NULL && header[0] != '\0')
	{
		rd_kafka_headers_t *hdrs = NULL;

		src.header_found = rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			rd_kafka_header_get_last(hdrs, header, &src.header_value, &src.header_size) == RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	return stream_key_from(&src, key, problem);
}

OtlpEncoding
message_otlp_encoding(int format)
{
	return format == KAFKA_FORMAT_OTLP_JSON ? OTLP_JSON : OTLP_PROTO;
}

/* The decoder's memory: the caller's context, which an error resets. */
static void *
otlp_palloc(void *ctx, size_t size)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, size);
}

static const OtlpAllocator otlp_allocator = {otlp_palloc, NULL};

bool
message_decode_batch(const uint8_t *payload, size_t len, int format,
					 const char *stream_attribute, OtlpBatch *out, char *err, size_t errlen)
{
	return otlp_decode(payload, len, message_otlp_encoding(format), stream_attribute,
					   &otlp_allocator, out, err, errlen);
}

void
message_scored_payload(const uint8_t **payload, size_t *len)
{
	if (driftlock_kafka_strip_schema_header)
		(void) confluent_frame_strip(payload, len, NULL);
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
dead_letter_stream_key(Jsonb *headers, const uint8_t *mkey, size_t mkey_len,
					   const uint8_t *payload, size_t len, const OtlpRecord *record,
					   char *key, MessageProblem *problem)
{
	const char *header = driftlock_kafka_stream_id_header;
	KeySource	src = {false, NULL, 0, mkey, mkey ? mkey_len : 0, payload, len, record};
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
		src.header_found = true;
		src.header_value = NULL;
		src.header_size = 0;
		if (value.type == jbvString)
			header_bytes(&value, (const char **) &src.header_value, &src.header_size);
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
