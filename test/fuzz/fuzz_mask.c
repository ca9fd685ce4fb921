/*
 * fuzz_mask.c -- cbad_mask and cbad_entropy (src/cbad/cbad_mask.c) on
 * arbitrary bytes.
 *
 * Checks the contract cbad.h and docs/detector.md state, on exactly-sized
 * buffers:
 *  - shape and length are kept: out has len bytes, each either the input
 *    byte, '0' in place of a digit or 'x' in place of a hex digit (so
 *    punctuation, spaces and non-ASCII bytes never change);
 *  - every digit of a run of 3 or more digits is masked;
 *  - short numbers survive: a token of 1-2 digits standing alone (not joined
 *    to a neighbour by a letter, digit or one of - : . /) is kept;
 *  - masking is deterministic.  It is not idempotent, and need not be (each
 *    event is masked once): "2024-050d024-050ddddd-ddddl" gives
 *    "0000-000d000-xxxxxxxx-ddddl" (the dash-joined groups run into a word,
 *    so they are no id; the third is a hex id of its own), and masking that
 *    again turns "0000-000d000", now followed by a non-hex group, into an id.
 *  - the entropy is finite, within [0, 8] bits per byte, and 0 when empty.
 */
#include "cbad/cbad.h"
#include "fuzz_common.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_alnum(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Could the byte at in[i] join a number token to its neighbour? */
static bool
joins(const uint8_t *in, size_t len, size_t i)
{
	return i < len && (is_alnum(in[i]) || strchr("-:./", in[i]) != NULL) && in[i] != '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *in = malloc(size ? size : 1);
	uint8_t    *out = malloc(size ? size : 1);
	uint8_t    *again = malloc(size ? size : 1);
	double		h;
	size_t		i = 0;

	CHECK(in && out && again);
	if (size)
		memcpy(in, data, size);
	cbad_mask(in, size, out);
	CHECK(size == 0 || memcmp(in, data, size) == 0);	/* input untouched */

	/* each byte kept, or a digit become '0', or a hex digit become 'x' */
	for (i = 0; i < size; i++)
		CHECK(out[i] == in[i] || (out[i] == '0' && is_digit(in[i])) ||
			  (out[i] == 'x' && is_hex(in[i])));

	/* digit runs: 3+ digits are all masked; a lone 1-2 digit token is kept */
	i = 0;
	while (i < size)
	{
		size_t		end = i;

		if (!is_digit(in[i]))
		{
			i++;
			continue;
		}
		while (end < size && is_digit(in[end]))
			end++;
		if (end - i >= 3)
		{
			for (size_t k = i; k < end; k++)
				CHECK(out[k] != in[k] || in[k] == '0');
		}
		else if ((i == 0 || !joins(in, size, i - 1)) && !joins(in, size, end))
			CHECK(memcmp(out + i, in + i, end - i) == 0);
		i = end;
	}

	/* deterministic */
	cbad_mask(in, size, again);
	CHECK(size == 0 || memcmp(out, again, size) == 0);

	h = cbad_entropy(in, size);
	CHECK(isfinite(h) && h >= 0.0 && h <= 8.0 + 1e-9);
	if (size == 0)
		CHECK(h == 0.0);

	free(in);
	free(out);
	free(again);
	return 0;
}
