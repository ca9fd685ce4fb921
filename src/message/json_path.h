/*
 * json_path.h -- find the value at a dotted path in a JSON document
 *
 * Plain C, no PostgreSQL headers: the Kafka worker uses it to read a
 * message's stream id (driftlock.kafka_stream_id_field, e.g.
 * "metadata.stream_id"), and it is unit-tested and fuzzed on its own.
 *
 * The whole document is validated (RFC 8259: one value, optional
 * surrounding whitespace, no trailing garbage, strings with valid escapes and
 * valid UTF-8, no control characters in strings), iteratively, so nesting
 * depth costs no stack.  A document nested deeper than JSON_PATH_MAX_DEPTH
 * (10,000) levels is refused as invalid ("nested deeper than 10000 levels
 * at byte N") as soon as the scan gets there, without reading the rest: a
 * 100,000-level document costs a 10,000-level scan and about 1.3 kB of bit
 * stack.  When an object has the same key twice, the last one wins, as in
 * PostgreSQL's jsonb.
 */
#ifndef DRIFTLOCK_JSON_PATH_H
#define DRIFTLOCK_JSON_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_PATH_MAX_DEPTH 10000

typedef enum json_path_result
{
	JSON_PATH_STRING = 0,		/* found, a string: *value holds it unescaped */
	JSON_PATH_NOT_STRING,		/* found, but a number, boolean, null, object or array */
	JSON_PATH_MISSING,			/* valid JSON, but nothing at that path */
	JSON_PATH_INVALID,			/* not valid JSON (or nested too deeply) */
	JSON_PATH_BAD_PATH			/* the path itself is empty or has an empty segment */
} json_path_result;

/*
 * Look up path (segments separated by '.', each an object key; no escaping,
 * no array indexes) in doc[0..len).  On JSON_PATH_STRING the unescaped string
 * is written to out (at most outcap - 1 bytes, then NUL-terminated) and its
 * full unescaped length is returned in *outlen (which may exceed outcap - 1:
 * the caller decides whether a truncated value is acceptable).  On
 * JSON_PATH_NOT_STRING, *type_name is set to "number", "boolean", "null",
 * "object" or "array".  On JSON_PATH_INVALID, err receives a short sentence
 * saying what is wrong and at which byte offset.  Never reads outside doc,
 * never allocates more than O(depth / 8) bytes.
 */
json_path_result json_path_lookup(const char *doc, size_t len, const char *path,
								  char *out, size_t outcap, size_t *outlen,
								  const char **type_name, char *err, size_t errlen);

/* What json_number_scan found. */
typedef enum json_number_result
{
	JSON_NUMBER_OK = 0,
	JSON_NUMBER_LEADING_ZERO,	/* "01": a digit after a leading 0 */
	JSON_NUMBER_INVALID
} json_number_result;

/*
 * Scan the JSON number (RFC 8259 grammar) starting at d[*pp] within
 * d[0..len).  On JSON_NUMBER_OK *pp is moved past it, and *is_int (when not
 * NULL) tells whether it has neither fraction nor exponent; otherwise *pp
 * is unchanged.  Shared by json_path.c and otlp_logs.c.
 */
json_number_result json_number_scan(const unsigned char *d, size_t len, size_t *pp, bool *is_int);

#endif
