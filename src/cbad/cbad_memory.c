/*
 * cbad_memory.c -- allocation accounting, growable buffers and event FIFOs
 */
#include "cbad_internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * Header in front of every block: its size, padded to sizeof(max_align_t) so
 * that a block keeps the alignment the allocator gave (malloc: 16 bytes,
 * palloc: 8).  A struct, not a union with max_align_t: the union would itself
 * require 16-byte alignment, which palloc'd memory does not have (undefined
 * behaviour, reported by UBSan).
 */
typedef struct mem_header
{
	size_t		size;
	unsigned char pad[sizeof(max_align_t) - sizeof(size_t)];
} mem_header;

static void *
default_alloc(void *opaque, size_t size)
{
	(void) opaque;
	return malloc(size);
}

static void
default_free(void *opaque, void *ptr)
{
	(void) opaque;
	free(ptr);
}

void
cbad_mem_init(cbad_mem *mem, const cbad_allocator *allocator)
{
	if (allocator != NULL && allocator->alloc != NULL && allocator->free != NULL)
		mem->allocator = *allocator;
	else
	{
		mem->allocator.alloc = default_alloc;
		mem->allocator.free = default_free;
		mem->allocator.opaque = NULL;
	}
	mem->used = 0;
}

void *
cbad_mem_alloc(cbad_mem *mem, size_t size)
{
	mem_header *h;

	if (size > SIZE_MAX - sizeof(mem_header))
		return NULL;
	h = mem->allocator.alloc(mem->allocator.opaque, size + sizeof(mem_header));
	if (h == NULL)
		return NULL;
	h->size = size;
	mem->used += size;
	return h + 1;
}

void
cbad_mem_free(cbad_mem *mem, void *ptr)
{
	mem_header *h;

	if (ptr == NULL)
		return;
	h = (mem_header *) ptr - 1;
	mem->used -= h->size;
	mem->allocator.free(mem->allocator.opaque, h);
}

static void *
zstd_alloc(void *opaque, size_t size)
{
	return cbad_mem_alloc((cbad_mem *) opaque, size);
}

static void
zstd_free(void *opaque, void *ptr)
{
	cbad_mem_free((cbad_mem *) opaque, ptr);
}

ZSTD_customMem
cbad_mem_zstd(cbad_mem *mem)
{
	ZSTD_customMem cm = {zstd_alloc, zstd_free, mem};

	return cm;
}

bool
cbad_buf_reserve(cbad_mem *mem, cbad_buf *buf, size_t cap)
{
	uint8_t    *data;
	size_t		newcap;

	if (cap <= buf->cap)
		return true;
	newcap = buf->cap ? buf->cap : 256;
	while (newcap < cap)
		newcap = newcap > SIZE_MAX / 2 ? cap : newcap * 2;
	data = cbad_mem_alloc(mem, newcap);
	if (data == NULL)
		return false;
	if (buf->len)
		memcpy(data, buf->data, buf->len);
	cbad_mem_free(mem, buf->data);
	buf->data = data;
	buf->cap = newcap;
	return true;
}

void
cbad_buf_release(cbad_mem *mem, cbad_buf *buf)
{
	cbad_mem_free(mem, buf->data);
	memset(buf, 0, sizeof(*buf));
}

bool
cbad_events_init(cbad_mem *mem, cbad_events *ev, int cap)
{
	memset(ev, 0, sizeof(*ev));
	ev->lens = cbad_mem_alloc(mem, sizeof(uint32_t) * (size_t) cap);
	/*
	 * The byte buffer exists from the start: were it allocated by the first
	 * non-empty event, a list of empty events would have a NULL buffer, and
	 * its users' pointer arithmetic and memmove on it would be undefined.
	 */
	if (ev->lens == NULL || !cbad_buf_reserve(mem, &ev->bytes, 1))
		return false;
	ev->cap = cap;
	return true;
}

void
cbad_events_release(cbad_mem *mem, cbad_events *ev)
{
	cbad_buf_release(mem, &ev->bytes);
	cbad_mem_free(mem, ev->lens);
	memset(ev, 0, sizeof(*ev));
}

void
cbad_events_clear(cbad_events *ev)
{
	ev->count = 0;
	ev->bytes.len = ev->start;
}

/* Drop the n oldest events (the lens array is kept oldest-first). */
void
cbad_events_drop_oldest(cbad_events *ev, int n)
{
	size_t		bytes = 0;
	uint8_t    *first = ev->bytes.data + ev->start;

	if (n <= 0)
		return;
	if (n >= ev->count)
	{
		cbad_events_clear(ev);
		return;
	}
	for (int i = 0; i < n; i++)
		bytes += ev->lens[i];
	memmove(first, first + bytes, ev->bytes.len - ev->start - bytes);
	ev->bytes.len -= bytes;
	memmove(ev->lens, ev->lens + n, sizeof(uint32_t) * (size_t) (ev->count - n));
	ev->count -= n;
}

/* Append an event; when full, the oldest is dropped first. */
bool
cbad_events_push(cbad_mem *mem, cbad_events *ev, const uint8_t *data, size_t len)
{
	if (len > UINT32_MAX)
		return false;
	if (ev->count == ev->cap)
		cbad_events_drop_oldest(ev, 1);
	if (!cbad_buf_reserve(mem, &ev->bytes, ev->bytes.len + len))
		return false;
	if (len)
		memcpy(ev->bytes.data + ev->bytes.len, data, len);
	ev->bytes.len += len;
	ev->lens[ev->count++] = (uint32_t) len;
	return true;
}
