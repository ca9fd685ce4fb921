/*
 * setting_lists.c -- the comma-separated settings of the Kafka worker:
 * driftlock.kafka_topic and driftlock.kafka_stream_id_source
 *
 * Patterns are checked with the C library's POSIX regcomp(), which is what
 * librdkafka uses to match them where the C library has it (glibc does).
 * A comma always separates items, so a pattern cannot hold one: "{1,3}"
 * must be written another way.
 */
#include "setting_lists.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool
list_next_item(const char **cursor, const char **item, size_t *len)
{
	const char *start = *cursor;
	const char *end;

	if (start == NULL)
		return false;
	end = strchr(start, ',');
	*cursor = end ? end + 1 : NULL;
	if (end == NULL)
		end = start + strlen(start);
	while (start < end && blank(*start))
		start++;
	while (end > start && blank(end[-1]))
		end--;
	*item = start;
	*len = (size_t) (end - start);
	return true;
}

/* Append an item to the canonical form; false when it does not fit. */
static bool
append_item(char *canon, size_t canonlen, size_t *used, const char *item, size_t len)
{
	size_t		sep = *used ? 2 : 0;

	if (*used + sep + len + 1 > canonlen)
		return false;
	if (sep)
		memcpy(canon + *used, ", ", 2);
	memcpy(canon + *used + sep, item, len);
	*used += sep + len;
	canon[*used] = '\0';
	return true;
}

/* Whether item (len bytes) appears among the first n items of list. */
static bool
listed_before(const char *list, int n, const char *item, size_t len)
{
	const char *cursor = list;
	const char *other;
	size_t		olen;

	for (int i = 0; i < n && list_next_item(&cursor, &other, &olen); i++)
		if (olen == len && memcmp(other, item, len) == 0)
			return true;
	return false;
}

static void
set_hint(char *hint, size_t hintlen, const char *text)
{
	if (hintlen > 0)
		snprintf(hint, hintlen, "%s", text);
}

/* Check one topic name; -1 with err and hint when it is not one. */
static int
check_topic_name(const char *item, size_t len, char *err, size_t errlen,
				 char *hint, size_t hintlen)
{
	if (len > TOPIC_NAME_MAX)
	{
		snprintf(err, errlen, "Topic name \"%.*s...\" is %zu bytes long; Kafka allows at most %d bytes.",
				 40, item, len, TOPIC_NAME_MAX);
		return -1;
	}
	if ((len == 1 && item[0] == '.') || (len == 2 && item[0] == '.' && item[1] == '.'))
	{
		snprintf(err, errlen, "\"%.*s\" is not a valid Kafka topic name.", (int) len, item);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) item[i];

		if (isascii(c) && (isalnum(c) || c == '.' || c == '_' || c == '-'))
			continue;
		if (isascii(c) && isprint(c))
			snprintf(err, errlen, "Topic name \"%.*s\" contains \"%c\": Kafka topic names consist of ASCII letters, digits, \".\", \"_\" and \"-\".",
					 (int) len, item, c);
		else
			snprintf(err, errlen, "Topic name \"%.*s\" contains the byte 0x%02x: Kafka topic names consist of ASCII letters, digits, \".\", \"_\" and \"-\".",
					 (int) len, item, c);
		set_hint(hint, hintlen, "To subscribe to every topic a regular expression matches, start the item with \"^\", for example \"^logs-.*\".");
		return -1;
	}
	return 0;
}

/* Check one pattern (it starts with '^'); -1 with err and hint when bad. */
static int
check_topic_pattern(const char *item, size_t len, char *err, size_t errlen,
					char *hint, size_t hintlen)
{
	char		pattern[TOPIC_LIST_MAX + 1];
	char		why[256];
	regex_t		re;
	int			rc;

	if (len == 1)
	{
		snprintf(err, errlen, "The pattern \"^\" is empty.");
		set_hint(hint, hintlen, "Write a regular expression after \"^\", for example \"^logs-.*\".");
		return -1;
	}
	memcpy(pattern, item, len);
	pattern[len] = '\0';
	rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0)
	{
		regerror(rc, &re, why, sizeof(why));
		snprintf(err, errlen, "The pattern \"%s\" is not a valid regular expression: %s.", pattern, why);
		set_hint(hint, hintlen, "An item starting with \"^\" is a POSIX extended regular expression, for example \"^logs-.*\"; it cannot contain a comma.");
		return -1;
	}
	regfree(&re);
	return 0;
}

int
topic_list_check(const char *s, char *canon, size_t canonlen,
				 char *err, size_t errlen, char *hint, size_t hintlen)
{
	const char *cursor = s;
	const char *item;
	size_t		len;
	size_t		used = 0;
	int			n = 0;

	set_hint(hint, hintlen, "");
	if (canonlen > 0)
		canon[0] = '\0';
	if (s == NULL || strlen(s) > TOPIC_LIST_MAX)
	{
		snprintf(err, errlen, "The list is %zu bytes long; the longest accepted is %d bytes.",
				 s ? strlen(s) : (size_t) 0, TOPIC_LIST_MAX);
		return -1;
	}
	while (list_next_item(&cursor, &item, &len))
	{
		n++;
		if (len == 0)
		{
			if (n == 1 && cursor == NULL)
				snprintf(err, errlen, "No topic is named.");
			else
				snprintf(err, errlen, "Item %d of the list is empty.", n);
			set_hint(hint, hintlen, "Name one topic, or several separated by commas, for example \"events, audit, ^logs-.*\".");
			return -1;
		}
		if (TOPIC_IS_PATTERN(item)
			? check_topic_pattern(item, len, err, errlen, hint, hintlen) != 0
			: check_topic_name(item, len, err, errlen, hint, hintlen) != 0)
			return -1;
		if (listed_before(s, n - 1, item, len))
		{
			snprintf(err, errlen, "\"%.*s\" is listed twice.", (int) len, item);
			return -1;
		}
		if (!append_item(canon, canonlen, &used, item, len))
		{
			snprintf(err, errlen, "The list is longer than %d bytes.", TOPIC_LIST_MAX);
			return -1;
		}
	}
	return 0;
}

void
topic_list_label(const char *list, char *buf, size_t buflen)
{
	const char *cursor = list;
	const char *item;
	size_t		len;
	size_t		used;
	int			n = 0;
	bool		one_name;

	if (buflen == 0)
		return;
	while (list_next_item(&cursor, &item, &len))
		n++;
	cursor = list;
	one_name = n == 1 && list_next_item(&cursor, &item, &len) && !TOPIC_IS_PATTERN(item);
	snprintf(buf, buflen, "%s", one_name ? "topic " : "topics ");
	cursor = list;
	for (int i = 0; list_next_item(&cursor, &item, &len); i++)
	{
		used = strlen(buf);
		if (used + 1 >= buflen)
			break;
		snprintf(buf + used, buflen - used, "%s\"%.*s\"", i ? ", " : "", (int) len, item);
	}
}

static const char *const source_names[] = {"header", "key", "json"};

const char *
stream_id_source_name(StreamIdSource source)
{
	return source_names[source];
}

int
stream_id_sources_parse(const char *s, StreamIdSources *out, char *canon, size_t canonlen,
						char *err, size_t errlen, char *hint, size_t hintlen)
{
	const char *cursor = s;
	const char *item;
	size_t		len;
	size_t		used = 0;
	bool		seen[STREAM_ID_SOURCES_MAX] = {false, false, false};

	out->count = 0;
	if (canonlen > 0)
		canon[0] = '\0';
	set_hint(hint, hintlen, "Write header, key or json, or several in the order to try them, for example \"header, json\".");
	if (s == NULL)
	{
		snprintf(err, errlen, "No source is named.");
		return -1;
	}
	while (list_next_item(&cursor, &item, &len))
	{
		int			found = -1;

		for (int i = 0; i < STREAM_ID_SOURCES_MAX; i++)
			if (len == strlen(source_names[i]) && strncasecmp(item, source_names[i], len) == 0)
				found = i;
		if (len == 0)
		{
			if (out->count == 0 && cursor == NULL)
				snprintf(err, errlen, "No source is named.");
			else
				snprintf(err, errlen, "Item %d of the list is empty.", out->count + 1);
			return -1;
		}
		if (found < 0)
		{
			snprintf(err, errlen, "\"%.*s\" is not a stream id source.", (int) (len > 64 ? 64 : len), item);
			return -1;
		}
		if (seen[found])
		{
			snprintf(err, errlen, "\"%s\" is listed twice.", source_names[found]);
			return -1;
		}
		seen[found] = true;
		out->source[out->count++] = (StreamIdSource) found;
		if (!append_item(canon, canonlen, &used, source_names[found], strlen(source_names[found])))
		{
			snprintf(err, errlen, "The list does not fit in %zu bytes.", canonlen);
			return -1;
		}
	}
	set_hint(hint, hintlen, "");
	return 0;
}
