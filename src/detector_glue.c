/*
 * detector_glue.c -- memory, errors, payload bytes and the verdict row,
 * shared by the SQL functions around the detector core
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "access/detoast.h"

#include "detector_glue.h"

/* Explanations are short paragraphs; this bounds the rare long one. */
#define EXPLANATION_MAX 2048

/*
 * Out of memory raises the usual ERROR here rather than returning NULL to
 * the core: zstd 1.5.4 does not survive every failed allocation, and the
 * memory of whatever was half-built belongs to a context that the error
 * resets.  A detector whose update failed this way must not be used again.
 */
static void *
context_alloc(void *opaque, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) opaque, size, MCXT_ALLOC_HUGE);
}

static void
context_free(void *opaque, void *ptr)
{
	pfree(ptr);
}

cbad_allocator
driftlock_allocator(MemoryContext cxt)
{
	cbad_allocator a = {context_alloc, context_free, cxt};

	return a;
}

void
driftlock_report_status(cbad_status status, const char *what)
{
	switch (status)
	{
		case CBAD_OK:
			return;
		case CBAD_ENOMEM:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while %s", what)));
			break;
		case CBAD_ECORRUPT:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored detector state is damaged while %s", what),
					 errhint("Delete the stream's row in driftlock.stream_state to start it afresh.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("detector failed while %s: %s", what, cbad_status_message(status))));
	}
}

const uint8_t *
driftlock_payload_bytes(Datum value, Oid type, size_t prefix, size_t *len)
{
	switch (type)
	{
		case TEXTOID:
		case BYTEAOID:
			{
				struct varlena *v;
				size_t		total = toast_raw_datum_size(value) - VARHDRSZ;

				if (prefix > 0 && total > prefix)
					v = PG_DETOAST_DATUM_SLICE(value, 0, (int32) prefix);
				else
					v = PG_DETOAST_DATUM_PACKED(value);
				*len = total;
				return (const uint8_t *) VARDATA_ANY(v);
			}
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);
				char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

				*len = strlen(s);
				return (const uint8_t *) s;
			}
		default:
			elog(ERROR, "unexpected payload type %u", type);
	}
	return NULL;				/* keep compiler quiet */
}

TupleDesc
driftlock_result_tupdesc(FunctionCallInfo fcinfo)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning a record called in a context that cannot accept one")));
	return BlessTupleDesc(tupdesc);
}

char *
driftlock_explanation(const cbad_detector *det, const uint8_t *event, size_t len,
					  const cbad_verdict *v)
{
	char	   *buf = palloc(EXPLANATION_MAX);

	cbad_explain(det, event, len, v, buf, EXPLANATION_MAX);
	return buf;
}

void
driftlock_verdict_extras(const cbad_detector *det, const uint8_t *event, size_t len,
						 const cbad_verdict *v, VerdictExtras *x)
{
	size_t		scored = Min(len, (size_t) cbad_detector_config(det)->max_event_bytes);
	const char *text = cbad_pattern_text(v->pattern_id);
	uint64_t	id;

	x->entropy = cbad_entropy(event, scored);
	if (text != NULL)
		strlcpy(x->pattern, text, sizeof(x->pattern));
	else
		driftlock_report_status(cbad_pattern_for(cbad_detector_config(det), event, scored, &id, x->pattern,
													  sizeof(x->pattern)),
								"naming the event's pattern");
}

const char *
driftlock_drift_name(cbad_drift_kind drift)
{
	switch (drift)
	{
		case CBAD_DRIFT_SUSTAINED:
			return "sustained";
		case CBAD_DRIFT_STORM:
			return "storm";
		case CBAD_DRIFT_NONE:
			break;
	}
	return NULL;
}

/*
 * The number columns of a verdict, NULL where nothing was measured: no
 * baseline yet, no distance; no calibration yet, no p-value.
 */
void
driftlock_verdict_numbers(const cbad_verdict *v, Datum *values, bool *nulls)
{
	values[0] = Float8GetDatum(v->score);
	nulls[0] = !v->has_dictionary || !v->has_calibration;
	values[1] = Float8GetDatum(v->p_value);
	nulls[1] = !v->has_calibration;
	values[2] = Float8GetDatum(v->ncd);
	nulls[2] = !v->has_dictionary;
	values[3] = Float8GetDatum(v->compression_ratio);
	nulls[3] = !v->has_dictionary;
	values[4] = Float8GetDatum(v->confidence);
	nulls[4] = !v->has_calibration;
}

/*
 * driftlock.verdict: 9 attributes in 0.1.0, 17 since 0.2.0.  A library of
 * 0.2.0 whose SQL objects are still 0.1.0's (ALTER EXTENSION driftlock
 * UPDATE not run yet) fills the first 9.
 */
#define VERDICT_ATTRS_0_1 9
#define VERDICT_ATTRS 17

Datum
driftlock_verdict_datum(TupleDesc tupdesc, const cbad_verdict *v, const VerdictExtras *x,
						const char *explanation)
{
	Datum		values[VERDICT_ATTRS];
	bool		nulls[VERDICT_ATTRS];
	Datum		numbers[5];
	bool		number_nulls[5];
	const char *drift = driftlock_drift_name(v->drift);

	if (tupdesc->natts != VERDICT_ATTRS && tupdesc->natts != VERDICT_ATTRS_0_1)
		elog(ERROR, "driftlock.verdict has %d attributes, expected %d", tupdesc->natts, VERDICT_ATTRS);
	memset(nulls, 0, sizeof(nulls));
	driftlock_verdict_numbers(v, numbers, number_nulls);
	values[0] = BoolGetDatum(v->is_anomaly);
	values[1] = BoolGetDatum(v->warm);
	for (int i = 0; i < 4; i++)
	{
		/* score, p_value, ncd, compression_ratio */
		values[2 + i] = numbers[i];
		nulls[2 + i] = number_nulls[i];
	}
	values[6] = Float8GetDatum(x->entropy);
	values[7] = numbers[4];
	nulls[7] = number_nulls[4];
	values[8] = CStringGetTextDatum(explanation);
	values[9] = Int64GetDatum((int64) v->pattern_id);
	values[10] = CStringGetTextDatum(x->pattern);
	values[11] = CStringGetTextDatum(cbad_pattern_status_name(v->pattern_status));
	values[12] = Int64GetDatum((int64) v->pattern_count);
	values[13] = Int64GetDatum((int64) v->pattern_first_event);
	values[14] = Int64GetDatum((int64) v->event_number);
	values[15] = Int64GetDatum((int64) v->incident_key);
	nulls[15] = v->incident_key == 0;
	values[16] = drift ? CStringGetTextDatum(drift) : (Datum) 0;
	nulls[16] = drift == NULL;
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}
