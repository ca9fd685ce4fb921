/*
 * setting_lists.h -- the comma-separated settings of the Kafka worker:
 * driftlock.kafka_topic (topic names and patterns) and
 * driftlock.kafka_stream_id_source (where a message's stream id is read)
 *
 * Plain C, no PostgreSQL headers: the GUC check hooks (src/guc.c) and the
 * consumer call it, and it is unit-tested on its own.  Items are separated
 * by commas; spaces, tabs and line breaks around an item are trimmed.
 * Every check returns a canonical form of the setting: its items trimmed
 * and joined by ", ".
 */
#ifndef DRIFTLOCK_SETTING_LISTS_H
#define DRIFTLOCK_SETTING_LISTS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest Kafka topic name, in bytes (Kafka's own limit). */
#define TOPIC_NAME_MAX 249

/* Longest driftlock.kafka_topic, in bytes (its canonical form included). */
#define TOPIC_LIST_MAX 4095

/*
 * The next item of a comma-separated list: *cursor starts at the list and
 * is moved past the item and its comma (NULL after the last item).  Sets
 * *item and *len to the item without surrounding blanks (possibly empty).
 * Returns false when there is no item left.  A list of n commas has n + 1
 * items; an empty string has one, empty.
 */
extern bool list_next_item(const char **cursor, const char **item, size_t *len);

/*
 * Check driftlock.kafka_topic: one or more items, each a Kafka topic name
 * (1 to 249 bytes of ASCII letters, digits, '.', '_' and '-'; not "." or
 * "..") or, when it starts with '^', a POSIX extended regular expression
 * (librdkafka subscribes to every topic it matches).  No empty item, no
 * item twice.  Returns 0 with the canonical form in canon, or -1 with a
 * sentence in err and, when there is advice to give, one in hint (else
 * hint is empty).
 */
extern int	topic_list_check(const char *s, char *canon, size_t canonlen,
							 char *err, size_t errlen, char *hint, size_t hintlen);

/* Whether a (trimmed) item of driftlock.kafka_topic is a pattern. */
#define TOPIC_IS_PATTERN(item) ((item)[0] == '^')

/*
 * "topic \"a\"" for a list of one topic name, else "topics \"a\",
 * \"^b-.*\"" (for log lines and pg_stat_activity), truncated to buflen.
 */
extern void topic_list_label(const char *list, char *buf, size_t buflen);

/* Where a message's stream id may be read (driftlock.kafka_stream_id_source). */
typedef enum StreamIdSource
{
	STREAM_ID_HEADER,			/* the header driftlock.kafka_stream_id_header */
	STREAM_ID_KEY,				/* the message key */
	STREAM_ID_JSON				/* the JSON field driftlock.kafka_stream_id_field */
} StreamIdSource;

#define STREAM_ID_SOURCES_MAX 3

typedef struct StreamIdSources
{
	int			count;
	StreamIdSource source[STREAM_ID_SOURCES_MAX];	/* in the order to try */
} StreamIdSources;

/*
 * Check driftlock.kafka_stream_id_source: one to three of "header", "key"
 * and "json" (any case), each at most once, in the order to try them.
 * Returns 0 with *out and the canonical (lower case) form in canon, or -1
 * with sentences in err and hint.
 */
extern int	stream_id_sources_parse(const char *s, StreamIdSources *out,
									char *canon, size_t canonlen,
									char *err, size_t errlen, char *hint, size_t hintlen);

/* "header", "key" or "json" */
extern const char *stream_id_source_name(StreamIdSource source);

#endif
