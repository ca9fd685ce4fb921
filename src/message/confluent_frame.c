/*
 * confluent_frame.c -- the Confluent Schema Registry wire format
 */
#include "confluent_frame.h"

bool
confluent_frame_strip(const uint8_t **payload, size_t *len, uint32_t *schema_id)
{
	const uint8_t *p = *payload;

	if (p == NULL || *len < CONFLUENT_HEADER_BYTES || p[0] != CONFLUENT_MAGIC_BYTE)
		return false;
	if (schema_id != NULL)
		*schema_id = (uint32_t) p[1] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 8 | p[4];
	*payload = p + CONFLUENT_HEADER_BYTES;
	*len -= CONFLUENT_HEADER_BYTES;
	return true;
}
