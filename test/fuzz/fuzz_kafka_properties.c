/*
 * fuzz_kafka_properties.c -- kafka_properties_parse
 * (src/message/kafka_properties.c) on arbitrary strings.
 *
 * The input, up to its first NUL byte, is the setting.  Checks:
 *  - every entry handed to the callback has a non-empty key without '=' or
 *    ';', a value without ';', neither with surrounding spaces, tabs or line
 *    breaks, both shorter than 4096 bytes, and both found in the input, in
 *    order;
 *  - the callbacks stop at the first one that fails (a key starting with
 *    "fail." here), and the parse then returns -1 with that callback's message;
 *  - the parse returns 0 or -1; on -1 err is a non-empty, NUL-terminated
 *    sentence (also when err is tiny), and the parse's own messages never
 *    quote a value;
 *  - an input without '=' and with non-blank text is an error; one made only
 *    of ';' and blanks is accepted with no entry.
 */
#include "message/kafka_properties.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen
{
	const char *cursor;			/* where the next entry's key must start */
	int			calls;
	bool		failed;			/* a callback returned non-zero */
} seen;

static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
entry(const char *key, const char *value, void *opaque, char *err, size_t errlen)
{
	seen	   *s = opaque;
	size_t		klen = strlen(key),
				vlen = strlen(value);
	const char *k;

	CHECK(!s->failed);			/* no callback after a failing one */
	s->calls++;
	CHECK(klen > 0 && klen < 4096 && vlen < 4096);
	CHECK(strchr(key, '=') == NULL && strchr(key, ';') == NULL && strchr(value, ';') == NULL);
	CHECK(!blank(key[0]) && !blank(key[klen - 1]));
	CHECK(vlen == 0 || (!blank(value[0]) && !blank(value[vlen - 1])));
	k = strstr(s->cursor, key);
	CHECK(k != NULL);
	CHECK(strstr(k + klen, value) != NULL);
	s->cursor = k + klen;
	if (strncmp(key, "fail.", 5) == 0)
	{
		s->failed = true;
		snprintf(err, errlen, "callback refused %s", key);
		return 1;
	}
	return 0;
}

/*
 * Is msg one of the parser's three sentences?  They are fixed but for the
 * entry number, so they cannot quote a value (which may be a password).
 */
static bool
own_message(const char *msg)
{
	static const char *const ends[] = {
		" has no \"=\"; write key=value pairs separated by \";\".",
		" has an empty key.",
		" is longer than 4095 bytes.",
	};
	const char *p = msg;
	const char *prefix = "Entry ";
	const char *middle = " of driftlock.kafka_properties";

	if (strncmp(p, prefix, strlen(prefix)) != 0)
		return false;
	p += strlen(prefix);
	if (*p < '1' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (strncmp(p, middle, strlen(middle)) != 0)
		return false;
	p += strlen(middle);
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (strcmp(p, ends[i]) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *in = malloc(size + 1);
	char		err[512];
	char		tiny[8];
	seen		s = {0};
	seen		s2 = {0};
	int			r,
				r2;
	bool		has_eq,
				has_text = false;

	CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	s.cursor = in;
	s2.cursor = in;
	memset(err, 0x55, sizeof(err));

	r = kafka_properties_parse(in, entry, &s, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r == 0)
		CHECK(!s.failed);
	else
	{
		CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		if (s.failed)
			CHECK(strncmp(err, "callback refused ", 17) == 0);
		else
			CHECK(own_message(err));
	}

	/* the same with a tiny err buffer */
	r2 = kafka_properties_parse(in, entry, &s2, tiny, sizeof(tiny));
	CHECK(r2 == r && s2.calls == s.calls);
	if (r2 == -1)
		CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);

	has_eq = strchr(in, '=') != NULL;
	for (const char *p = in; *p; p++)
		if (!blank(*p) && *p != ';')
			has_text = true;
	if (!has_eq && has_text)
		CHECK(r == -1 && s.calls == 0);
	if (!has_text)
		CHECK(r == 0 && s.calls == 0);

	free(in);
	return 0;
}
