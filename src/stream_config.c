/*
 * stream_config.c -- detector settings from jsonb
 *
 * driftlock.streams.config and the optional config argument of the SQL
 * functions are jsonb objects whose keys are the detector settings listed in
 * src/cbad/cbad_config.c.  An unknown key, a wrong type or a value out of
 * range is an error naming the key, never silently ignored.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "driftlock.h"
#include "stream_config.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_config_check);

static const char *
jsonb_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "not a scalar";
	}
}

static char *
known_keys_list(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const cbad_key_info *k = cbad_config_keys(); k->name; k++)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", k->name);
	return buf.data;
}

void
driftlock_config_apply_jsonb(Jsonb *jb, cbad_config *cfg)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char		err[256];

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("driftlock config must be a JSON object"),
				 errhint("Use an object such as '{\"alpha\": 0.01}', or '{}' for the defaults.")));

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		const cbad_key_info *key;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		key = cbad_config_key(name);
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);

		if (key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown driftlock config key \"%s\"", name),
					 errhint("Valid keys are: %s.", known_keys_list())));

		if (key->type == CBAD_KEY_BOOL)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("driftlock config key \"%s\" must be a boolean", name),
						 errdetail("The value given is %s.", jsonb_type_name(&v))));
			cbad_config_set_bool(cfg, key, v.val.boolean, err, sizeof(err));
		}
		else
		{
			double		num;

			if (v.type != jbvNumeric)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("driftlock config key \"%s\" must be a number", name),
						 errdetail("The value given is %s.", jsonb_type_name(&v))));
			/* out-of-range numerics become +-Infinity and fail the range check */
			num = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
													 NumericGetDatum(v.val.numeric)));
			if (cbad_config_set_number(cfg, key, num, err, sizeof(err)) != CBAD_OK)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("driftlock config key \"%s\" is out of range", name),
						 errdetail("%s", err),
						 errhint("\"%s\" is the %s.", name, key->description)));
		}
		pfree(name);
	}

	if (cbad_config_validate(cfg, err, sizeof(err)) != CBAD_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("inconsistent driftlock config"),
				 errdetail("%s", err)));
}

void
driftlock_config_from_jsonb(Jsonb *jb, cbad_config *cfg)
{
	cbad_config_default(cfg);
	if (jb != NULL)
		driftlock_config_apply_jsonb(jb, cfg);
}

/*
 * driftlock_config_check(config jsonb) returns boolean
 *
 * True for a valid detector config; raises an error naming the problem
 * otherwise.  Used by the CHECK constraint on driftlock.streams.config.
 */
Datum
driftlock_config_check(PG_FUNCTION_ARGS)
{
	cbad_config cfg;

	driftlock_config_from_jsonb(PG_GETARG_JSONB_P(0), &cfg);
	PG_RETURN_BOOL(true);
}
