/*
 * kafka_properties.h -- parse driftlock.kafka_properties ("key=value;...")
 *
 * Plain C, no PostgreSQL headers.  Error messages name the entry and its key
 * but never a value, since values may be passwords.
 */
#ifndef DRIFTLOCK_KAFKA_PROPERTIES_H
#define DRIFTLOCK_KAFKA_PROPERTIES_H

#include <stddef.h>

/*
 * Called for each entry with the key and value trimmed of surrounding
 * spaces; returns 0 to go on, or non-zero after writing a sentence to err.
 */
typedef int (*kafka_property_cb) (const char *key, const char *value, void *opaque,
								  char *err, size_t errlen);

/*
 * Split s into entries at ';' and each entry at its first '='.  Empty
 * entries are skipped; an entry without '=' or with an empty key is an
 * error.  Values cannot contain ';'.  Returns 0, or -1 with a sentence in err.
 */
int			kafka_properties_parse(const char *s, kafka_property_cb cb, void *opaque,
								   char *err, size_t errlen);

#endif
