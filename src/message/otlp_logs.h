/*
 * otlp_logs.h -- OpenTelemetry logs (OTLP) in a Kafka message: decode an
 * export batch into one event per log record
 *
 * Plain C, no PostgreSQL headers: unit-tested and fuzzed on its own.  The
 * OpenTelemetry Collector's Kafka exporter writes one message per export
 * batch, encoding otlp_proto (an ExportLogsServiceRequest, which is a
 * LogsData on the wire) or otlp_json (the same in OTLP/JSON): ResourceLogs
 * (one per service), each with ScopeLogs, each with LogRecords.
 *
 * Each log record becomes one event: its stream is the string value of a
 * resource attribute (service.name by default), and the text that is
 * scored is a stable rendering of what describes the event -- severity,
 * body and attributes -- leaving out what changes on every record
 * (timeUnixNano, observedTimeUnixNano, traceId, spanId, flags, dropped
 * counts):
 *
 *   {"severity":"ERROR","body":"disk full","attributes":{"a":"x","b":1}}
 *
 * severity is severityText, else the name of severityNumber's range
 * (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), else the key is left out;
 * attributes are sorted by key (bytewise), the last of duplicate keys
 * winning; "attributes" is left out when there are none, "body" when there
 * is none.  Values render as JSON: strings escaped (invalid UTF-8 replaced
 * by U+FFFD), ints as integers, doubles with %.17g (NaN and infinities as
 * strings), bools, bytes as base64 strings, arrays and kvlists (in their
 * order) as arrays and objects; an empty AnyValue is null.  Both encodings
 * of the same records render identically.
 *
 * Records are numbered from 0 in the order of the message (resource, then
 * scope, then record): the record index, the fourth part of an event's
 * position (topic, partition, offset, record index).
 *
 * Decoding is all or nothing: a message that is not a valid batch in its
 * encoding fails as a whole with a sentence saying what and where
 * (the worker makes it one dead letter, reason invalid_otlp).  Never reads
 * outside buf; nesting of AnyValues deeper than OTLP_MAX_DEPTH fails; no
 * recursion deeper than that.
 */
#ifndef DRIFTLOCK_OTLP_LOGS_H
#define DRIFTLOCK_OTLP_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_MAX_DEPTH 32

typedef enum OtlpEncoding
{
	OTLP_PROTO,
	OTLP_JSON
} OtlpEncoding;

/*
 * Where the decoder's memory comes from; NULL: malloc, freed by
 * otlp_batch_free.  alloc may also throw (a palloc that ereports): the
 * decoder then holds nothing else.
 */
typedef struct OtlpAllocator
{
	void	   *(*alloc) (void *ctx, size_t size);	/* never returns NULL */
	void	   *ctx;
} OtlpAllocator;

typedef struct OtlpRecord
{
	const char *stream;			/* the stream attribute's value, NUL-terminated; NULL when absent */
	size_t		stream_len;
	const char *text;			/* the rendering above, NUL-terminated, valid UTF-8 */
	size_t		text_len;
	uint64_t	time_unix_nano; /* 0 when absent */
	uint32_t	index;			/* record index in the message */
	/* where, in the decoded message, the record and what named its stream are */
	size_t		record_off;		/* the LogRecord (proto: its bytes; JSON: its value) */
	size_t		record_len;
	size_t		stream_kv_off;	/* the resource attribute's KeyValue; len 0: none */
	size_t		stream_kv_len;
} OtlpRecord;

typedef struct OtlpBatch
{
	OtlpRecord *records;
	size_t		count;
	/* private */
	const OtlpAllocator *allocator;
	void	   *blocks;
} OtlpBatch;

/*
 * Decode buf[0..len) (the payload after any Confluent framing).
 * stream_attribute: the resource attribute naming the stream.  A string
 * value is taken as it is (but invalid UTF-8 replaced by U+FFFD, as in the
 * text); an int, double or bool value by its rendering (NaN and the
 * infinities without quotes); other types, or no such attribute, leave
 * stream NULL.  Records of a
 * resource with no records are none; a batch with no records at all decodes
 * to count 0.  Returns true, or false with err set (NUL-terminated, at
 * most errlen bytes) and *out empty.
 */
extern bool otlp_decode(const uint8_t *buf, size_t len, OtlpEncoding encoding,
						const char *stream_attribute, const OtlpAllocator *allocator,
						OtlpBatch *out, char *err, size_t errlen);

/*
 * One record of a decoded message as a batch of its own, in the message's
 * encoding: the LogRecord as it came, under a resource holding only the
 * attribute that named its stream (none when it had none).  Decoded with
 * the same stream attribute, it gives one record with the same stream and
 * text.  This is what a record's dead letter keeps, so that it can be
 * replayed like a message.  Writes it to out when it fits in cap bytes;
 * returns its length either way.
 */
extern size_t otlp_single_record(const uint8_t *buf, OtlpEncoding encoding,
								 const OtlpRecord *record, uint8_t *out, size_t cap);

/* Free what a malloc-allocated batch holds; a no-op with an allocator. */
extern void otlp_batch_free(OtlpBatch *batch);

#endif
