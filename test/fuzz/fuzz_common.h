/*
 * fuzz_common.h -- helpers shared by the libFuzzer targets in test/fuzz
 *
 * CHECK aborts (a crash libFuzzer reports with its input) when an output
 * contract is broken; the counting allocator lets a target check that a
 * freed detector gave back every block it took; valid_utf8 checks text
 * outputs (json_path, otlp_logs).
 */
#ifndef DRIFTLOCK_FUZZ_COMMON_H
#define DRIFTLOCK_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* malloc that counts the live blocks in *(long *) opaque */
static inline void *
counting_alloc(void *opaque, size_t size)
{
	void	   *p = malloc(size);

	if (p)
		++*(long *) opaque;
	return p;
}

static inline void
counting_free(void *opaque, void *ptr)
{
	if (ptr)
		--*(long *) opaque;
	free(ptr);
}

/* Is s[0..n) well-formed UTF-8 (no overlongs, surrogates, or > U+10FFFF)? */
static inline bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		unsigned char c = s[i];
		size_t		k;
		uint32_t	cp;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++)
		{
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

#endif
