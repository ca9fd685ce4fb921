/*
 * detector_glue.h -- what the SQL functions (and the worker) share around
 * the detector core: memory, errors, payload bytes, the verdict row
 */
#ifndef DRIFTLOCK_DETECTOR_GLUE_H
#define DRIFTLOCK_DETECTOR_GLUE_H

#include "fmgr.h"
#include "access/tupdesc.h"
#include "utils/memutils.h"

#include "cbad/cbad.h"

/* An allocator that takes memory from cxt (NULL on out-of-memory, no error). */
extern cbad_allocator driftlock_allocator(MemoryContext cxt);

/* Raise a clear error for a failed detector call; what names the action. */
extern void driftlock_report_status(cbad_status status, const char *what);

/*
 * The bytes of a payload of type text, bytea or jsonb (jsonb is scored in its
 * canonical text form, so equal documents score equally).  *len is the full
 * length; when prefix > 0, only the first prefix bytes of a text or bytea are
 * fetched (a large value is not detoasted whole just to score its start).
 */
extern const uint8_t *driftlock_payload_bytes(Datum value, Oid type, size_t prefix,
											  size_t *len);

/* The plain-English explanation of a verdict, palloc'd. */
extern char *driftlock_explanation(const cbad_detector *det, const uint8_t *event,
								   size_t len, const cbad_verdict *verdict);

/* What a verdict row says beyond the verdict: computed for the events shown. */
typedef struct VerdictExtras
{
	double		entropy;		/* of the scored bytes */
	char		pattern[CBAD_PATTERN_TEXT_MAX]; /* the pattern's text */
} VerdictExtras;

/* For the event of the verdict, just given by det. */
extern void driftlock_verdict_extras(const cbad_detector *det, const uint8_t *event,
									 size_t len, const cbad_verdict *verdict,
									 VerdictExtras *extras);

/* "sustained", "storm", or NULL for no drift. */
extern const char *driftlock_drift_name(cbad_drift_kind drift);

/*
 * score, p_value, ncd, compression_ratio and confidence, with nulls set
 * where the verdict measured nothing.
 */
extern void driftlock_verdict_numbers(const cbad_verdict *v, Datum *values, bool *nulls);

/* The driftlock.verdict row for a verdict and its explanation. */
extern Datum driftlock_verdict_datum(TupleDesc tupdesc, const cbad_verdict *verdict,
									 const VerdictExtras *extras, const char *explanation);

/* Tuple descriptor of the calling function's composite result. */
extern TupleDesc driftlock_result_tupdesc(FunctionCallInfo fcinfo);

#endif
