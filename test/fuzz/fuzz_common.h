/*
 * fuzz_common.h -- helpers shared by the libFuzzer targets in test/fuzz
 *
 * CHECK aborts (a crash libFuzzer reports with its input) when an output
 * contract is broken; the counting allocator lets a target check that a
 * freed detector gave back every block it took.
 */
#ifndef DRIFTLOCK_FUZZ_COMMON_H
#define DRIFTLOCK_FUZZ_COMMON_H

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

#endif
