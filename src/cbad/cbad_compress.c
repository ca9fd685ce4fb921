/*
 * cbad_compress.c -- zstd plumbing: the per-thread scratch context and the
 * two compressed sizes every score is made of
 *
 * A compression context is reused for every event and every detector of a
 * thread, so its memory is paid once per process, not per stream.
 */
#include "cbad_internal.h"

#include <stdlib.h>

static _Thread_local cbad_scratch scratch;

static bool
grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t    *p;

	if (need <= *cap)
		return true;
	p = realloc(*buf, need);
	if (p == NULL)
		return false;
	*buf = p;
	*cap = need;
	return true;
}

/* A compression context that writes no frame overhead it can avoid. */
static ZSTD_CCtx *
new_cctx(void)
{
	ZSTD_CCtx  *cctx = ZSTD_createCCtx();

	/* frame overhead that carries no information about the event */
	if (cctx != NULL &&
		(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)) ||
		 ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)) ||
		 ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0))))
	{
		ZSTD_freeCCtx(cctx);
		return NULL;
	}
	return cctx;
}

/*
 * The scratch context with room for an event of event_len bytes, or NULL
 * when memory is short.
 */
cbad_scratch *
cbad_scratch_get(size_t event_len)
{
	if (scratch.alone == NULL)
	{
		if ((scratch.cctx = new_cctx()) == NULL)
			return NULL;
		if ((scratch.alone = new_cctx()) == NULL)
		{
			ZSTD_freeCCtx(scratch.cctx);
			scratch.cctx = NULL;
			return NULL;
		}
	}
	if (!grow(&scratch.masked, &scratch.masked_cap, event_len + 1) ||
		!grow(&scratch.out, &scratch.out_cap, ZSTD_compressBound(event_len)))
		return NULL;
	return &scratch;
}

/*
 * The contexts of the saved states' envelope (cbad_state.c): made once per
 * process and kept, like the scratch contexts, so that saving and loading
 * a state allocates only its buffers.
 */
static ZSTD_CCtx *envelope_cctx = NULL;
static ZSTD_DCtx *envelope_dctx = NULL;

ZSTD_CCtx *
cbad_envelope_cctx(void)
{
	if (envelope_cctx == NULL)
		envelope_cctx = ZSTD_createCCtx();
	return envelope_cctx;
}

ZSTD_DCtx *
cbad_envelope_dctx(void)
{
	if (envelope_dctx == NULL)
		envelope_dctx = ZSTD_createDCtx();
	return envelope_dctx;
}

const char *
cbad_pattern_text(uint64_t pattern_id)
{
	return pattern_id != 0 && scratch.pattern_id == pattern_id ? scratch.pattern : NULL;
}

size_t
cbad_compressed_size(cbad_scratch *s, const uint8_t *src, size_t len, int level)
{
	size_t		r;

	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->alone, ZSTD_c_compressionLevel, level)))
		return 0;
	r = ZSTD_compress2(s->alone, s->out, s->out_cap, src, len);
	return ZSTD_isError(r) ? 0 : r;
}

size_t
cbad_compressed_size_dict(cbad_scratch *s, const ZSTD_CDict *cdict,
						  const uint8_t *src, size_t len)
{
	size_t		r;

	if (ZSTD_isError(ZSTD_CCtx_refCDict(s->cctx, cdict)))
		return 0;
	r = ZSTD_compress2(s->cctx, s->out, s->out_cap, src, len);
	return ZSTD_isError(r) ? 0 : r;
}

size_t
cbad_compressed_size_prefix(cbad_scratch *s, const uint8_t *prefix, size_t prefix_len,
							const uint8_t *src, size_t len, int level)
{
	size_t		r;

	/* a prefix holds for one compression only: set it every time */
	if (ZSTD_isError(ZSTD_CCtx_refCDict(s->cctx, NULL)) ||
		ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level)) ||
		ZSTD_isError(ZSTD_CCtx_refPrefix(s->cctx, prefix, prefix_len)))
		return 0;
	r = ZSTD_compress2(s->cctx, s->out, s->out_cap, src, len);
	return ZSTD_isError(r) ? 0 : r;
}

/*
 * Parameters sized for the dictionary, not for the level's defaults: a
 * dictionary of a few dozen KiB needs hash tables of a few thousand entries,
 * which keeps a warm stream's memory small (see bench_memory).
 */
ZSTD_compressionParameters
cbad_dict_cparams(int level, size_t dict_len)
{
	ZSTD_compressionParameters cp = ZSTD_getCParams(level, 256, dict_len);
	unsigned	cap = 10;

	while ((1u << cap) < dict_len && cap < 17)
		cap++;
	/* at most one hash slot per 4 dictionary bytes */
	if (cp.hashLog > cap - 2)
		cp.hashLog = cap - 2;
	if (cp.chainLog > cap - 2)
		cp.chainLog = cap - 2;
	if (cp.hashLog < ZSTD_HASHLOG_MIN)
		cp.hashLog = ZSTD_HASHLOG_MIN;
	if (cp.chainLog < ZSTD_CHAINLOG_MIN)
		cp.chainLog = ZSTD_CHAINLOG_MIN;
	if (cp.windowLog < cap + 1)
		cp.windowLog = cap + 1;
	return cp;
}
