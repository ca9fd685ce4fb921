/*
 * test_confluent_frame.c -- unit tests of confluent_frame_strip()
 * (src/message/confluent_frame.c)
 */
#include <stdlib.h>
#include <string.h>

#include "message/confluent_frame.h"
#include "unit.h"

/* Strip a heap copy of exactly len bytes, so ASan catches a read past it. */
static bool
strip(const char *bytes, size_t len, size_t *left_off, size_t *left_len, uint32_t *id)
{
	uint8_t    *copy = malloc(len ? len : 1);
	const uint8_t *p = copy;
	size_t		n = len;
	bool		framed;

	memcpy(copy, bytes, len);
	framed = confluent_frame_strip(&p, &n, id);
	*left_off = (size_t) (p - copy);
	*left_len = n;
	free(copy);
	return framed;
}

int
main(void)
{
	size_t		off,
				len;
	uint32_t	id = 0;
	const uint8_t *none = NULL;
	size_t		zero = 0;

	/* JSON behind a header with schema id 0x01020304 */
	CHECK(strip("\x00\x01\x02\x03\x04{\"a\":1}", 12, &off, &len, &id));
	CHECK_INT(off, ==, 5);
	CHECK_INT(len, ==, 7);
	CHECK_INT(id, ==, 0x01020304);

	/* schema id bytes above 0x7f */
	CHECK(strip("\x00\xff\xfe\x80\x01x", 6, &off, &len, &id));
	CHECK_INT(id, ==, 0xfffe8001u);
	CHECK_INT(len, ==, 1);

	/* exactly the header: an empty value */
	CHECK(strip("\x00\x00\x00\x00\x07", 5, &off, &len, NULL));
	CHECK_INT(off, ==, 5);
	CHECK_INT(len, ==, 0);

	/* shorter than a header, even starting with 0: left as it is */
	for (size_t n = 0; n < 5; n++)
	{
		CHECK(!strip("\x00\x00\x00\x00", n, &off, &len, &id));
		CHECK_INT(off, ==, 0);
		CHECK_INT(len, ==, n);
	}

	/* no magic byte: plain JSON, text, other binary */
	CHECK(!strip("{\"a\":1}", 7, &off, &len, NULL));
	CHECK_INT(len, ==, 7);
	CHECK(!strip("\x01\x00\x00\x00\x01{}", 7, &off, &len, NULL));
	CHECK_INT(off, ==, 0);

	/* a null payload (a tombstone) */
	CHECK(!confluent_frame_strip(&none, &zero, NULL));
	CHECK(none == NULL);

	return UNIT_REPORT();
}
