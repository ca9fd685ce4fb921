/*
 * test_setting_lists.c -- unit tests of the comma-separated settings
 * (src/message/setting_lists.c): driftlock.kafka_topic and
 * driftlock.kafka_stream_id_source
 */
#include <stdlib.h>
#include <string.h>

#include "message/setting_lists.h"
#include "unit.h"

static char canon[TOPIC_LIST_MAX + 1];
static char err[512];
static char hint[512];

static int
topics(const char *s)
{
	return topic_list_check(s, canon, sizeof(canon), err, sizeof(err), hint, sizeof(hint));
}

#define CHECK_TOPICS_OK(s, expect) \
	do { \
		CHECK_INT(topics(s), ==, 0); \
		CHECK_STR(canon, (expect)); \
	} while (0)

#define CHECK_TOPICS_BAD(s, errpart) \
	do { \
		CHECK_INT(topics(s), ==, -1); \
		CHECK_MSG(strstr(err, (errpart)) != NULL, "err = \"%s\", expected to contain \"%s\"", err, (errpart)); \
	} while (0)

static void
test_items(void)
{
	const char *cursor = " a ,b,, c\t";
	const char *item;
	size_t		len;
	const char *want[] = {"a", "b", "", "c"};
	int			n = 0;

	while (list_next_item(&cursor, &item, &len))
	{
		CHECK(n < 4);
		if (n < 4)
			CHECK_MSG(len == strlen(want[n]) && memcmp(item, want[n], len) == 0,
					  "item %d = \"%.*s\"", n, (int) len, item);
		n++;
	}
	CHECK_INT(n, ==, 4);

	cursor = "";
	n = 0;
	while (list_next_item(&cursor, &item, &len))
	{
		CHECK_INT(len, ==, 0);
		n++;
	}
	CHECK_INT(n, ==, 1);
}

static void
test_topics(void)
{
	char		name249[TOPIC_NAME_MAX + 1];
	char		name250[TOPIC_NAME_MAX + 2];
	char	   *huge;

	CHECK_TOPICS_OK("events", "events");
	CHECK_TOPICS_OK("driftlock-events", "driftlock-events");
	CHECK_TOPICS_OK("a.b_c-D9", "a.b_c-D9");
	CHECK_TOPICS_OK("events,audit", "events, audit");
	CHECK_TOPICS_OK("  events ,\taudit\n, ^logs-.*  ", "events, audit, ^logs-.*");
	CHECK_TOPICS_OK("^logs-(app|web)[0-9]+$", "^logs-(app|web)[0-9]+$");
	/* a pattern may hold spaces inside; they are not trimmed there */
	CHECK_TOPICS_OK("^a b", "^a b");
	CHECK_TOPICS_OK("...", "...");

	memset(name249, 'n', TOPIC_NAME_MAX);
	name249[TOPIC_NAME_MAX] = '\0';
	CHECK_TOPICS_OK(name249, name249);
	memset(name250, 'n', TOPIC_NAME_MAX + 1);
	name250[TOPIC_NAME_MAX + 1] = '\0';
	CHECK_TOPICS_BAD(name250, "is 250 bytes long; Kafka allows at most 249 bytes");

	CHECK_TOPICS_BAD("", "No topic is named");
	CHECK_TOPICS_BAD("   ", "No topic is named");
	CHECK_STR(hint, "Name one topic, or several separated by commas, for example \"events, audit, ^logs-.*\".");
	CHECK_TOPICS_BAD("a,,b", "Item 2 of the list is empty");
	CHECK_TOPICS_BAD("a,", "Item 2 of the list is empty");
	CHECK_TOPICS_BAD(",a", "Item 1 of the list is empty");
	CHECK_TOPICS_BAD("a, ,b", "Item 2 of the list is empty");
	CHECK_TOPICS_BAD(".", "\".\" is not a valid Kafka topic name");
	CHECK_TOPICS_BAD("a, ..", "\"..\" is not a valid Kafka topic name");
	CHECK_TOPICS_BAD("my topic", "Topic name \"my topic\" contains \" \"");
	CHECK_TOPICS_BAD("logs-*", "contains \"*\"");
	CHECK_MSG(strstr(hint, "start the item with \"^\"") != NULL, "hint = \"%s\"", hint);
	CHECK_TOPICS_BAD("a/b", "contains \"/\"");
	CHECK_TOPICS_BAD("caf\xc3\xa9", "contains the byte 0xc3");
	CHECK_TOPICS_BAD("a\x01", "contains the byte 0x01");
	CHECK_TOPICS_BAD("a, b, a", "\"a\" is listed twice");
	CHECK_TOPICS_BAD("^x, ^x", "\"^x\" is listed twice");
	CHECK_TOPICS_BAD("^", "The pattern \"^\" is empty");
	CHECK_TOPICS_BAD("^logs-(", "The pattern \"^logs-(\" is not a valid regular expression");
	CHECK_MSG(strstr(hint, "cannot contain a comma") != NULL, "hint = \"%s\"", hint);
	CHECK_TOPICS_BAD("^[a", "is not a valid regular expression");
	/* a comma always separates: the quantifier is cut in two */
	CHECK_TOPICS_BAD("^a{1,3}", "is not a valid regular expression");
	CHECK_TOPICS_BAD(NULL, "longest accepted");

	huge = malloc(TOPIC_LIST_MAX + 2);
	memset(huge, 'a', TOPIC_LIST_MAX + 1);
	huge[TOPIC_LIST_MAX + 1] = '\0';
	CHECK_TOPICS_BAD(huge, "the longest accepted is 4095 bytes");
	free(huge);

	/* too small a buffer for the canonical form is an error, never an overflow */
	CHECK_INT(topic_list_check("a,b", canon, 4, err, sizeof(err), hint, sizeof(hint)), ==, -1);
	/* a tiny err buffer still gets a terminated (cut) sentence */
	CHECK_INT(topic_list_check("a,,b", canon, sizeof(canon), err, 8, hint, 1), ==, -1);
	CHECK_INT(strlen(err), ==, 7);
}

static void
test_label(void)
{
	char		buf[64];

	topic_list_label("events", buf, sizeof(buf));
	CHECK_STR(buf, "topic \"events\"");
	topic_list_label("events, audit", buf, sizeof(buf));
	CHECK_STR(buf, "topics \"events\", \"audit\"");
	topic_list_label("^logs-.*", buf, sizeof(buf));
	CHECK_STR(buf, "topics \"^logs-.*\"");
	topic_list_label("a, ^b", buf, 12);
	CHECK_STR(buf, "topics \"a\",");
}

static void
test_sources(void)
{
	StreamIdSources s;
	char		c[64];

#define SOURCES(str) stream_id_sources_parse((str), &s, c, sizeof(c), err, sizeof(err), hint, sizeof(hint))

	CHECK_INT(SOURCES("header, json"), ==, 0);
	CHECK_STR(c, "header, json");
	CHECK_INT(s.count, ==, 2);
	CHECK_INT(s.source[0], ==, STREAM_ID_HEADER);
	CHECK_INT(s.source[1], ==, STREAM_ID_JSON);
	CHECK_STR(hint, "");

	CHECK_INT(SOURCES(" KEY "), ==, 0);
	CHECK_STR(c, "key");
	CHECK_INT(s.count, ==, 1);
	CHECK_INT(s.source[0], ==, STREAM_ID_KEY);

	CHECK_INT(SOURCES("json,key,Header"), ==, 0);
	CHECK_STR(c, "json, key, header");
	CHECK_INT(s.count, ==, 3);
	CHECK_INT(s.source[2], ==, STREAM_ID_HEADER);
	CHECK_STR(stream_id_source_name(s.source[1]), "key");

	CHECK_INT(SOURCES(""), ==, -1);
	CHECK_STR(err, "No source is named.");
	CHECK_MSG(strstr(hint, "header, key or json") != NULL, "hint = \"%s\"", hint);
	CHECK_INT(SOURCES("key,"), ==, -1);
	CHECK_STR(err, "Item 2 of the list is empty.");
	CHECK_INT(SOURCES("key, body"), ==, -1);
	CHECK_STR(err, "\"body\" is not a stream id source.");
	CHECK_INT(SOURCES("keys"), ==, -1);
	CHECK_INT(SOURCES("key, json, KEY"), ==, -1);
	CHECK_STR(err, "\"key\" is listed twice.");
	CHECK_INT(SOURCES(NULL), ==, -1);
#undef SOURCES
}

int
main(void)
{
	test_items();
	test_topics();
	test_label();
	test_sources();
	return UNIT_REPORT();
}
