/*
 * score_functions.c -- stateless SQL functions: driftlock_score() against a
 * baseline given inline, driftlock_compare() of two sets of events, and
 * driftlock_pattern() of an event
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "detector_glue.h"
#include "driftlock.h"
#include "stream_config.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_score_baseline);
DRIFTLOCK_SQL_FUNCTION(driftlock_compare);
DRIFTLOCK_SQL_FUNCTION(driftlock_pattern);

/* The most permutations driftlock_compare accepts (each costs 3 compressions). */
#define MAX_PERMUTATIONS 100000

/*
 * The elements of a text[] as byte strings.  NULL elements are an error:
 * a baseline or window with holes is almost certainly a mistake.
 */
static int
array_events(ArrayType *arr, const char *argname, const uint8_t ***events, size_t **lens)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	*events = palloc(sizeof(uint8_t *) * Max(n, 1));
	*lens = palloc(sizeof(size_t) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL elements", argname),
					 errdetail("Element %d is NULL.", i + 1)));
		(*events)[i] = driftlock_payload_bytes(elems[i], TEXTOID, 0, &(*lens)[i]);
	}
	return n;
}

/*
 * driftlock_score(baseline text[], payload text [, config jsonb])
 *		returns driftlock.verdict
 *
 * Scores payload against a baseline given inline, as if the baseline's
 * events had been the stream's warm-up: the calibration is bootstrapped from
 * them, and the verdict is warm when there are at least `warmup` of them.
 */
Datum
driftlock_score_baseline(PG_FUNCTION_ARGS)
{
	ArrayType  *baseline = PG_GETARG_ARRAYTYPE_P(0);
	cbad_config cfg;
	cbad_allocator allocator;
	cbad_detector *det;
	cbad_verdict verdict;
	VerdictExtras extras;
	const uint8_t **events;
	size_t	   *lens;
	const uint8_t *payload;
	size_t		len;
	int			n;

	driftlock_config_from_jsonb(PG_NARGS() > 2 && !PG_ARGISNULL(2) ?
								PG_GETARG_JSONB_P(2) : NULL, &cfg);
	n = array_events(baseline, "baseline", &events, &lens);
	payload = driftlock_payload_bytes(PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1),
									  (size_t) cfg.max_event_bytes, &len);

	allocator = driftlock_allocator(CurrentMemoryContext);
	driftlock_report_status(cbad_detector_create(&cfg, &allocator, &det), "creating the detector");
	driftlock_report_status(cbad_detector_fit(det, events, lens, (size_t) n), "learning the baseline");
	driftlock_report_status(cbad_detector_score(det, payload, len, &verdict), "scoring the payload");
	driftlock_verdict_extras(det, payload, len, &verdict, &extras);
	PG_RETURN_DATUM(driftlock_verdict_datum(driftlock_result_tupdesc(fcinfo), &verdict, &extras,
											driftlock_explanation(det, payload, len, &verdict)));
}

/*
 * driftlock_compare(baseline text[], window text[], permutations int,
 *					 seed bigint, OUT ncd, OUT novelty, OUT p_value, ...)
 *		returns record
 */
Datum
driftlock_compare(PG_FUNCTION_ARGS)
{
	const uint8_t **base,
			  **win;
	size_t	   *base_lens,
			   *win_lens;
	int			nbase,
				nwin;
	int			permutations = PG_GETARG_INT32(2);
	int64		seed = PG_GETARG_INT64(3);
	cbad_config defaults;
	cbad_compare_result r;
	cbad_allocator allocator = driftlock_allocator(CurrentMemoryContext);
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	Datum		values[8];
	bool		nulls[8] = {false};

	if (permutations < 0 || permutations > MAX_PERMUTATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("permutations must be between 0 and %d", MAX_PERMUTATIONS)));
	nbase = array_events(PG_GETARG_ARRAYTYPE_P(0), "baseline", &base, &base_lens);
	nwin = array_events(PG_GETARG_ARRAYTYPE_P(1), "window", &win, &win_lens);
	if (nbase == 0 || nwin == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must contain at least one event", nbase == 0 ? "baseline" : "window")));

	cbad_config_default(&defaults);
	driftlock_report_status(cbad_compare(base, base_lens, (size_t) nbase, win, win_lens, (size_t) nwin,
										 permutations, (uint64_t) seed, defaults.mask,
										 defaults.zstd_level, &allocator, &r),
							"comparing the window with the baseline");
	values[0] = Float8GetDatum(r.ncd);
	values[1] = Float8GetDatum(r.novelty);
	values[2] = Float8GetDatum(r.p_value);
	nulls[2] = permutations == 0;	/* no test without permutations */
	values[3] = Float8GetDatum(r.baseline_ratio);
	values[4] = Float8GetDatum(r.window_ratio);
	values[5] = Float8GetDatum(r.baseline_entropy);
	values[6] = Float8GetDatum(r.window_entropy);
	values[7] = Int32GetDatum(r.permutations);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * driftlock_pattern(payload text|bytea|jsonb, config jsonb,
 *					 OUT pattern_id bigint, OUT pattern text) returns record
 *
 * The pattern a stream with this configuration gives the event: the same
 * pattern_id as its verdicts and anomalies, to look them up or suppress.
 */
Datum
driftlock_pattern(PG_FUNCTION_ARGS)
{
	cbad_config cfg;
	TupleDesc	tupdesc = driftlock_result_tupdesc(fcinfo);
	const uint8_t *payload;
	size_t		len;
	uint64_t	id;
	char		text[CBAD_PATTERN_TEXT_MAX];
	Datum		values[2];
	bool		nulls[2] = {false, false};

	driftlock_config_from_jsonb(PG_GETARG_JSONB_P(1), &cfg);
	payload = driftlock_payload_bytes(PG_GETARG_DATUM(0), get_fn_expr_argtype(fcinfo->flinfo, 0),
									  (size_t) cfg.max_event_bytes, &len);
	driftlock_report_status(cbad_pattern_for(&cfg, payload, len, &id, text, sizeof(text)),
							"naming the event's pattern");
	values[0] = Int64GetDatum((int64) id);
	values[1] = CStringGetTextDatum(text);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
