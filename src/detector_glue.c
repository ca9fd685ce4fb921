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

Datum
driftlock_verdict_datum(TupleDesc tupdesc, const cbad_verdict *v, const char *explanation)
{
	Datum		values[9];
	bool		nulls[9] = {false};

	if (tupdesc->natts != 9)
		elog(ERROR, "driftlock.verdict has %d attributes, expected 9", tupdesc->natts);
	values[0] = BoolGetDatum(v->is_anomaly);
	values[1] = BoolGetDatum(v->warm);
	values[2] = Float8GetDatum(v->score);
	values[3] = Float8GetDatum(v->p_value);
	values[4] = Float8GetDatum(v->ncd);
	values[5] = Float8GetDatum(v->compression_ratio);
	values[6] = Float8GetDatum(v->entropy);
	values[7] = Float8GetDatum(v->confidence);
	values[8] = CStringGetTextDatum(explanation);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}
