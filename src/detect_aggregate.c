/*
 * detect_aggregate.c -- driftlock_detect(payload [, config]), an aggregate
 * that runs the streaming detector over rows in order
 *
 * Used as a window function, driftlock_detect(payload) OVER (ORDER BY ts),
 * each row gets the verdict the detector gave its event, exactly as the
 * Kafka worker would for the same events of one stream.  As a plain
 * aggregate it returns the verdict of the last event.  The frame must only
 * grow (the default frame does); with peers in the ORDER BY, peers share the
 * verdict of the last of them, so order by something unique.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "detector_glue.h"
#include "driftlock.h"
#include "stream_config.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_detect_transition);
DRIFTLOCK_SQL_FUNCTION(driftlock_detect_final);

typedef struct DetectState
{
	cbad_detector *det;
	cbad_verdict last;			/* verdict of the latest row */
	VerdictExtras last_extras;	/* and what its row shows beyond it */
	bool		last_null;		/* the latest row's payload was NULL */
	uint8_t    *event;			/* the latest anomalous event, for the
								 * explanation */
	size_t		event_len;
	size_t		event_cap;
	MemoryContext cxt;
} DetectState;

/*
 * driftlock_detect_transition(state internal, payload text|bytea|jsonb
 *							   [, config jsonb]) returns internal
 */
Datum
driftlock_detect_transition(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	DetectState *st;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("driftlock_detect_transition can only be called as part of driftlock_detect")));

	if (PG_ARGISNULL(0))
	{
		cbad_config cfg;
		cbad_allocator allocator;
		MemoryContext old;

		driftlock_config_from_jsonb(PG_NARGS() > 2 && !PG_ARGISNULL(2) ?
									PG_GETARG_JSONB_P(2) : NULL, &cfg);
		old = MemoryContextSwitchTo(aggcxt);
		st = palloc0(sizeof(DetectState));
		st->cxt = aggcxt;
		MemoryContextSwitchTo(old);
		allocator = driftlock_allocator(aggcxt);
		driftlock_report_status(cbad_detector_create(&cfg, &allocator, &st->det),
								"creating the detector");
	}
	else
		st = (DetectState *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1))
	{
		/* a NULL payload gets a NULL verdict and teaches the detector nothing */
		st->last_null = true;
		PG_RETURN_POINTER(st);
	}
	else
	{
		size_t		len;
		const uint8_t *bytes = driftlock_payload_bytes(PG_GETARG_DATUM(1),
													   get_fn_expr_argtype(fcinfo->flinfo, 1),
													   (size_t) cbad_detector_config(st->det)->max_event_bytes,
													   &len);

		driftlock_report_status(cbad_detector_observe(st->det, bytes, len, &st->last),
								"scoring an event");
		driftlock_verdict_extras(st->det, bytes, len, &st->last, &st->last_extras);
		st->last_null = false;
		st->event_len = 0;
		if (st->last.is_anomaly)
		{
			/* keep the event: the final function names what was new in it */
			const cbad_config *cfg = cbad_detector_config(st->det);
			size_t		keep = Min(len, (size_t) cfg->max_event_bytes);

			if (keep > st->event_cap)
			{
				if (st->event)
					pfree(st->event);
				st->event = MemoryContextAllocHuge(st->cxt, keep);
				st->event_cap = keep;
			}
			memcpy(st->event, bytes, keep);
			st->event_len = keep;
		}
	}
	PG_RETURN_POINTER(st);
}

/* driftlock_detect_final(state internal) returns driftlock.verdict */
Datum
driftlock_detect_final(PG_FUNCTION_ARGS)
{
	DetectState *st;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (DetectState *) PG_GETARG_POINTER(0);
	if (st->last_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(driftlock_verdict_datum(driftlock_result_tupdesc(fcinfo), &st->last,
											&st->last_extras,
											driftlock_explanation(st->det, st->event,
																  st->event_len, &st->last)));
}
