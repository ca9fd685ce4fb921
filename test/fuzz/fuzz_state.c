/*
 * fuzz_state.c -- cbad_detector_deserialize (src/cbad/cbad_state.c) on
 * arbitrary bytes.
 *
 * The state is read back from a table, so whatever the bytes, restoring must
 * return CBAD_OK or an error, never crash, leak or read outside them.  The
 * input is tried as it is and, so that the fuzzer gets past the checksum,
 * with its last 8 bytes replaced by the FNV-1a hash of the rest (the format
 * is described at the top of cbad_state.c).  Checks:
 *  - the result is CBAD_OK, CBAD_ECORRUPT or CBAD_ENOMEM, and *out is set
 *    only on CBAD_OK;
 *  - a restored detector serialises back to the input's plain state (the
 *    format has one encoding per state; format 3 wraps it in a zstd frame,
 *    format 2 is read as it is) -- or, for a state of format 1 (0.1.0),
 *    which is converted, to a state of the current format that restores to
 *    the same bytes again -- has a valid configuration, and is usable:
 *    it scores and observes a few events with sane verdicts (p_value in
 *    (0, 1], the alpha rule, finite scores, counts within the settings)
 *    and printable explanations, and serialises again to a state that
 *    restores (forged counters over 2^62 and subnormal calibration scores
 *    are refused as corrupt);
 *  - everything allocated through the given allocator is freed.
 * Seeds: valid states written by gen_state_seeds.c (make fuzz-seeds), and
 * states of format 1 written by 0.1.0's (state-v1-*.bin).
 */
#include "cbad/cbad.h"
#include "fuzz_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
	uint64_t	h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
	{
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static const char *const events[] = {
	"2024-05-01T12:00:00Z GET /api/orders/1234 200 12ms",
	"2024-05-01T12:00:01Z GET /api/orders/1235 200 9ms",
	"kernel: panic: attempted to kill init! exitcode=0x0000000b",
	"",
	"2024-05-01T12:00:02Z POST /api/login 401 3ms user=alice",
};

static void
use(cbad_detector *det)
{
	const cbad_config *c = cbad_detector_config(det);
	char		err[256];
	char		text[1024];
	uint8_t    *state;
	size_t		state_len;
	cbad_detector *again = NULL;
	cbad_stats	st;

	CHECK(cbad_config_validate(c, err, sizeof(err)) == CBAD_OK);
	cbad_detector_stats(det, &st);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
	{
		const uint8_t *e = (const uint8_t *) events[i];
		size_t		len = strlen(events[i]);
		cbad_verdict s,
					v;
		size_t		n;

		CHECK(cbad_detector_score(det, e, len, &s) == CBAD_OK);
		CHECK(cbad_detector_observe(det, e, len, &v) == CBAD_OK);
		CHECK(s.p_value == v.p_value && s.ncd == v.ncd);
		CHECK(isfinite(v.p_value) && v.p_value > 0.0 && v.p_value <= 1.0);
		CHECK(isfinite(v.score) && v.score >= 0.0 && isfinite(v.ncd) && v.ncd >= 0.0);
		CHECK(v.is_anomaly == (v.warm && v.has_calibration && v.p_value <= c->alpha));
		CHECK(v.baseline_events <= c->baseline_size);
		CHECK(v.calibration_events <= c->calibration_size);
		n = cbad_explain(det, e, len, &v, text, sizeof(text));
		CHECK(n > 0 && strlen(text) == (n < sizeof(text) ? n : sizeof(text) - 1));
		for (size_t k = 0; text[k]; k++)
			CHECK(text[k] >= 0x20 && text[k] < 0x7f);
	}
	CHECK(cbad_detector_serialize(det, &state, &state_len) == CBAD_OK);
	/*
	 * States with more than 2^62 events are refused as corrupt (a forged
	 * counter near 2^64 would wrap around); one restored just below the
	 * limit may pass it with the events above.
	 */
	if (st.events <= (UINT64_C(1) << 62) - sizeof(events) / sizeof(events[0]))
		CHECK(cbad_detector_deserialize(state, state_len, NULL, &again) == CBAD_OK);
	cbad_detector_free(again);
	cbad_buffer_free(det, state);
}

/*
 * The plain state (format 2) of a state: the bytes themselves, or what a
 * format 3 envelope holds (malloc'd into *buf).  NULL when it cannot be
 * had.
 */
static const uint8_t *
plain_of(const uint8_t *data, size_t size, uint8_t **buf, size_t *len)
{
	size_t		n;

	*buf = NULL;
	if (size < 20 || data[7] != 0 || (data[6] != 2 && data[6] != 3))
		return NULL;
	if (data[6] == 2)
	{
		*len = size;
		return data;
	}
	*len = (size_t) data[8] | (size_t) data[9] << 8 | (size_t) data[10] << 16 |
		(size_t) data[11] << 24;
	*buf = malloc(*len ? *len : 1);
	n = ZSTD_decompress(*buf, *len, data + 12, size - 20);
	if (ZSTD_isError(n) || n != *len)
	{
		free(*buf);
		*buf = NULL;
		return NULL;
	}
	return *buf;
}

static void
restore(const uint8_t *data, size_t size)
{
	long		live = 0;
	cbad_allocator counting = {counting_alloc, counting_free, &live};
	cbad_detector *det = (cbad_detector *) &live;	/* must be overwritten */
	cbad_status st = cbad_detector_deserialize(data, size, &counting, &det);

	CHECK(st == CBAD_OK || st == CBAD_ECORRUPT || st == CBAD_ENOMEM);
	if (st == CBAD_OK)
	{
		uint8_t    *state;
		size_t		state_len;

		CHECK(det != NULL);
		CHECK(cbad_detector_serialize(det, &state, &state_len) == CBAD_OK);
		if (size >= 8 && data[6] == 1 && data[7] == 0)
		{
			/* format 1, converted: the new state is stable */
			cbad_detector *again = NULL;
			uint8_t    *state2;
			size_t		state2_len;

			CHECK(!(state_len == size && memcmp(state, data, size) == 0));
			CHECK(cbad_detector_deserialize(state, state_len, NULL, &again) == CBAD_OK);
			CHECK(cbad_detector_serialize(again, &state2, &state2_len) == CBAD_OK);
			CHECK(state2_len == state_len && memcmp(state2, state, state_len) == 0);
			cbad_buffer_free(again, state2);
			cbad_detector_free(again);
		}
		else
		{
			/*
			 * One encoding per state: the plain state written back is the
			 * one read (a format 3 envelope may hold it in another zstd
			 * frame than ours).
			 */
			uint8_t    *in_buf,
					   *out_buf;
			size_t		in_len,
						out_len;
			const uint8_t *in = plain_of(data, size, &in_buf, &in_len);
			const uint8_t *out = plain_of(state, state_len, &out_buf, &out_len);

			CHECK(state[6] == 3);
			CHECK(in != NULL && out != NULL && in_len == out_len && memcmp(in, out, in_len) == 0);
			free(in_buf);
			free(out_buf);
		}
		cbad_buffer_free(det, state);
		use(det);
		cbad_detector_free(det);
	}
	else
		CHECK(det == NULL);
	CHECK(live == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *copy;
	uint64_t	h;

	/* as it is, in an exactly-sized buffer */
	copy = malloc(size ? size : 1);
	CHECK(copy != NULL);
	if (size)
		memcpy(copy, data, size);
	restore(copy, size);

	/* with a checksum that matches */
	if (size >= 8)
	{
		h = fnv1a(copy, size - 8);
		for (int i = 0; i < 8; i++)
			copy[size - 8 + i] = (uint8_t) (h >> (8 * i));
		if (memcmp(copy, data, size) != 0)
			restore(copy, size);
	}
	free(copy);
	return 0;
}
