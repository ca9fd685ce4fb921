/*
 * cbad_compare.c -- window versus baseline: NCD, novelty and a permutation
 * test
 *
 * Over the events of each set joined by newlines:
 *   NCD(B, W) = (C(BW) - min(C(B), C(W))) / max(C(B), C(W))
 *   novelty   = (C(BW) - C(B)) / C(W), how much of W the baseline leaves
 *               unexplained (about 0: W repeats B; about 1: nothing shared).
 * NCD is reported because users of the original know it, but for sets of
 * different sizes it is far from 0 even when both come from one source, and
 * it is not even monotone in how different W is, so it is never the test.
 * The p-value is the share of random re-splits of the pooled events into
 * sets of the same sizes whose novelty is at least the observed one,
 * (1 + #{novelty' >= novelty}) / (1 + permutations).  The shuffles come from
 * a seeded splitmix64, so a call is deterministic.
 */
#include "cbad_internal.h"

#include <string.h>

uint64_t
cbad_rand_next(uint64_t *state)
{
	uint64_t	z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

typedef struct pool
{
	cbad_mem   *mem;
	const uint8_t **ev;			/* masked (or original) events */
	size_t	   *lens;
	size_t		n;
	cbad_buf	joined;			/* B, then W, joined by newlines */
	cbad_buf	out;
	ZSTD_CCtx  *cctx;
	int			level;
} pool;

static size_t
csize(pool *p, const uint8_t *src, size_t len)
{
	size_t		r = ZSTD_compressCCtx(p->cctx, p->out.data, p->out.cap, src, len, p->level);

	return ZSTD_isError(r) ? 0 : r;
}

/* Join the events order[0..n) with newlines into p->joined; returns the split. */
static size_t
join(pool *p, const size_t *order, size_t nbase)
{
	size_t		split = 0;

	p->joined.len = 0;
	for (size_t i = 0; i < p->n; i++)
	{
		const size_t k = order[i];

		memcpy(p->joined.data + p->joined.len, p->ev[k], p->lens[k]);
		p->joined.len += p->lens[k];
		p->joined.data[p->joined.len++] = '\n';
		if (i + 1 == nbase)
			split = p->joined.len;
	}
	return split;
}

static bool
measure(pool *p, const size_t *order, size_t nbase, double *ncd, double *novelty)
{
	size_t		split = join(p, order, nbase);
	size_t		cb = csize(p, p->joined.data, split);
	size_t		cw = csize(p, p->joined.data + split, p->joined.len - split);
	size_t		cbw = csize(p, p->joined.data, p->joined.len);
	size_t		lo = cb < cw ? cb : cw;
	size_t		hi = cb < cw ? cw : cb;

	if (cb == 0 || cw == 0 || cbw == 0)
		return false;
	*ncd = ((double) cbw - (double) lo) / (double) hi;
	if (*ncd < 0)
		*ncd = 0;
	*novelty = cbw > cb ? ((double) cbw - (double) cb) / (double) cw : 0.0;
	return true;
}

cbad_status
cbad_compare(const uint8_t *const *base, const size_t *base_lens, size_t nbase,
			 const uint8_t *const *win, const size_t *win_lens, size_t nwin,
			 int permutations, uint64_t seed, bool mask, int zstd_level,
			 const cbad_allocator *allocator, cbad_compare_result *res)
{
	cbad_mem	mem;
	pool		p;
	size_t	   *order = NULL;
	uint8_t    *masked = NULL;
	size_t		total = 0;
	cbad_status status = CBAD_OK;
	double		observed,
				ncd;
	int			at_least = 0;

	memset(res, 0, sizeof(*res));
	if (nbase == 0 || nwin == 0 || permutations < 0 || zstd_level < 1 ||
		zstd_level > ZSTD_maxCLevel())
		return CBAD_EINVAL;
	cbad_mem_init(&mem, allocator);
	memset(&p, 0, sizeof(p));
	p.mem = &mem;
	p.n = nbase + nwin;
	p.level = zstd_level;
	for (size_t i = 0; i < nbase; i++)
		total += base_lens[i] + 1;
	for (size_t i = 0; i < nwin; i++)
		total += win_lens[i] + 1;

	p.ev = cbad_mem_alloc(&mem, sizeof(*p.ev) * p.n);
	p.lens = cbad_mem_alloc(&mem, sizeof(size_t) * p.n);
	order = cbad_mem_alloc(&mem, sizeof(size_t) * p.n);
	masked = cbad_mem_alloc(&mem, total ? total : 1);
	p.cctx = ZSTD_createCCtx_advanced(cbad_mem_zstd(&mem));
	if (p.ev == NULL || p.lens == NULL || order == NULL || masked == NULL ||
		p.cctx == NULL || !cbad_buf_reserve(&mem, &p.joined, total) ||
		!cbad_buf_reserve(&mem, &p.out, ZSTD_compressBound(total)))
	{
		status = CBAD_ENOMEM;
		goto done;
	}

	/* the pooled events, masked once */
	{
		size_t		off = 0;

		for (size_t i = 0; i < p.n; i++)
		{
			const uint8_t *src = i < nbase ? base[i] : win[i - nbase];
			size_t		len = i < nbase ? base_lens[i] : win_lens[i - nbase];

			if (src == NULL && len > 0)
			{
				status = CBAD_EINVAL;
				goto done;
			}
			if (mask)
				cbad_mask(src, len, masked + off);
			else if (len)
				memcpy(masked + off, src, len);
			p.ev[i] = masked + off;
			p.lens[i] = len;
			order[i] = i;
			off += len;
		}
	}

	if (!measure(&p, order, nbase, &ncd, &observed))
	{
		status = CBAD_EZSTD;
		goto done;
	}
	res->ncd = ncd;
	res->novelty = observed;
	{
		size_t		split = join(&p, order, nbase);
		size_t		cb = csize(&p, p.joined.data, split);
		size_t		cw = csize(&p, p.joined.data + split, p.joined.len - split);

		res->baseline_ratio = (double) split / (double) cb;
		res->window_ratio = (double) (p.joined.len - split) / (double) cw;
		res->baseline_entropy = cbad_entropy(p.joined.data, split);
		res->window_entropy = cbad_entropy(p.joined.data + split, p.joined.len - split);
	}

	for (int k = 0; k < permutations; k++)
	{
		double		novelty;

		/* Fisher-Yates over the pool */
		for (size_t i = p.n - 1; i > 0; i--)
		{
			size_t		j = (size_t) (cbad_rand_next(&seed) % (i + 1));
			size_t		t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		if (!measure(&p, order, nbase, &ncd, &novelty))
		{
			status = CBAD_EZSTD;
			goto done;
		}
		if (novelty >= observed)
			at_least++;
	}
	res->permutations = permutations;
	res->p_value = (1.0 + at_least) / (1.0 + permutations);

done:
	ZSTD_freeCCtx(p.cctx);
	cbad_buf_release(&mem, &p.joined);
	cbad_buf_release(&mem, &p.out);
	cbad_mem_free(&mem, masked);
	cbad_mem_free(&mem, order);
	cbad_mem_free(&mem, p.lens);
	cbad_mem_free(&mem, (void *) p.ev);
	return status;
}
