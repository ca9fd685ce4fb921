/*
 * kafka_properties.c -- parse driftlock.kafka_properties ("key=value;...")
 */
#include "kafka_properties.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRY 4096

static void
trim(const char **start, const char **end)
{
	while (*start < *end && (**start == ' ' || **start == '\t' || **start == '\n' || **start == '\r'))
		(*start)++;
	while (*end > *start && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\n' || (*end)[-1] == '\r'))
		(*end)--;
}

int
kafka_properties_parse(const char *s, kafka_property_cb cb, void *opaque,
					   char *err, size_t errlen)
{
	const char *p = s;
	int			entry = 0;
	char		key[MAX_ENTRY];
	char		value[MAX_ENTRY];

	if (s == NULL)
		return 0;
	while (*p)
	{
		const char *end = strchr(p, ';');
		const char *eq;
		const char *ks,
				   *ke,
				   *vs,
				   *ve;

		if (end == NULL)
			end = p + strlen(p);
		entry++;
		ks = p;
		ke = end;
		trim(&ks, &ke);
		if (ks == ke)
		{
			p = *end ? end + 1 : end;
			continue;
		}
		eq = memchr(ks, '=', (size_t) (ke - ks));
		if (eq == NULL)
		{
			snprintf(err, errlen, "Entry %d of driftlock.kafka_properties has no \"=\"; write key=value pairs separated by \";\".", entry);
			return -1;
		}
		vs = eq + 1;
		ve = ke;
		ke = eq;
		trim(&ks, &ke);
		trim(&vs, &ve);
		if (ks == ke)
		{
			snprintf(err, errlen, "Entry %d of driftlock.kafka_properties has an empty key.", entry);
			return -1;
		}
		if ((size_t) (ke - ks) >= sizeof(key) || (size_t) (ve - vs) >= sizeof(value))
		{
			snprintf(err, errlen, "Entry %d of driftlock.kafka_properties is longer than %d bytes.", entry, MAX_ENTRY - 1);
			return -1;
		}
		memcpy(key, ks, (size_t) (ke - ks));
		key[ke - ks] = '\0';
		memcpy(value, vs, (size_t) (ve - vs));
		value[ve - vs] = '\0';
		if (cb(key, value, opaque, err, errlen) != 0)
			return -1;
		p = *end ? end + 1 : end;
	}
	return 0;
}
