/*
 * stream_lookup.c -- the Kafka worker's stream lookups: the stream a
 * message's key names, with its settings
 *
 * A key (a stream UUID in any form uuid_in accepts, or a stream name) is
 * looked up in driftlock.streams once and remembered across batches: with
 * thousands of streams, a query per message and batch was a good part of
 * the worker's time.  Any change of driftlock.streams (a statement trigger
 * calling driftlock_streams_changed) sends a relcache invalidation of the
 * table, which every worker receives at its next transaction start and
 * answers by forgetting its lookups: a new, renamed, reconfigured or
 * dropped stream is seen from the next batch on.
 *
 * A stream a worker creates itself (stream_autocreate.c) is remembered at
 * once, and its insert sends no invalidation (stream_lookup_own_insert):
 * otherwise a stream created now and then would make every worker drop
 * and query again all its lookups each time.  A new name changes no other
 * lookup; another worker that remembers the name as unknown finds the
 * stream when it tries to create it (ON CONFLICT) and remembers it then.
 * Lookups that may not create streams must not trust an unknown name for
 * long: stream_lookup_forget() when kafka_auto_create_streams is turned off
 * (stream_autocreate.c).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "driftlock.h"
#include "kafka_message.h"
#include "spi_plans.h"
#include "stream_config.h"
#include "stream_lookup.h"

DRIFTLOCK_SQL_FUNCTION(driftlock_streams_changed);

/*
 * Lookups remembered at most; beyond, they are all forgotten (a flood of
 * distinct unknown keys must not grow the worker without bound).
 */
#define LOOKUPS_MAX 100000

/* A UUID as uuid_in reads it: optional braces, hyphens after groups of 4. */
static bool
parse_uuid(const char *s, pg_uuid_t *out)
{
	size_t		len = strlen(s);
	int			digits = 0;

	if (len >= 2 && s[0] == '{')
	{
		if (s[len - 1] != '}')
			return false;
		s++;
		len -= 2;
	}
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];
		int			v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else if (c == '-' && digits > 0 && digits % 4 == 0 && digits < 32 &&
				 i + 1 < len && s[i + 1] != '-')
			continue;
		else
			return false;
		if (digits == 32)
			return false;
		if (digits % 2 == 0)
			out->data[digits / 2] = (unsigned char) (v << 4);
		else
			out->data[digits / 2] |= (unsigned char) v;
		digits++;
	}
	return digits == 32;
}

typedef struct StreamLookup
{
	char		key[STREAM_KEY_MAX + 1];	/* hash key */
	bool		found;
	pg_uuid_t	id;
	cbad_config cfg;
	bool		learn_only;
} StreamLookup;

static HTAB *lookups = NULL;
static Oid	streams_relid = InvalidOid;
static bool callback_registered = false;
/* during the worker's own insert: no invalidation (see the file header) */
static bool own_insert = false;

void
stream_lookup_forget(void)
{
	if (lookups != NULL)
		hash_destroy(lookups);
	lookups = NULL;
}

/* Relcache invalidation: of driftlock.streams, or of everything (InvalidOid). */
static void
streams_invalidated(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == streams_relid)
	{
		stream_lookup_forget();
		/* DROP EXTENSION, CREATE EXTENSION: another table, look it up again */
		streams_relid = InvalidOid;
	}
}

static void
register_callbacks(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(streams_invalidated, (Datum) 0);
		callback_registered = true;
	}
}

void
stream_lookup_own_insert(bool on)
{
	own_insert = on;
}

bool
stream_key_is_uuid(const char *key)
{
	pg_uuid_t	u;

	return parse_uuid(key, &u);
}

static HTAB *
lookup_table(void)
{
	if (lookups != NULL && hash_get_num_entries(lookups) >= LOOKUPS_MAX)
		stream_lookup_forget();
	if (lookups == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = STREAM_KEY_MAX + 1;
		ctl.entrysize = sizeof(StreamLookup);
		ctl.hcxt = TopMemoryContext;
		lookups = hash_create("driftlock stream lookups", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return lookups;
}

void
stream_lookup_remember(const char *key, const pg_uuid_t *id, const cbad_config *cfg,
					   bool learn_only)
{
	StreamLookup *l = hash_search(lookup_table(), key, HASH_ENTER, NULL);

	l->found = true;
	l->id = *id;
	l->cfg = *cfg;
	l->learn_only = learn_only;
}

bool
stream_lookup_find(const char *key, pg_uuid_t *id, cbad_config *cfg, bool *learn_only)
{
	static CachedStatement find_stmt = {
		"SELECT id, config, learn_only FROM driftlock.streams WHERE id = $1 OR name = $2 "
		"ORDER BY id = $1 DESC NULLS LAST LIMIT 1",
		2, {UUIDOID, TEXTOID}, NULL
	};
	StreamLookup *l;
	bool		found;

	register_callbacks();
	if (streams_relid == InvalidOid)
	{
		streams_relid = get_relname_relid("streams", get_namespace_oid("driftlock", false));
		stream_lookup_forget();
	}
	l = hash_search(lookup_table(), key, HASH_ENTER, &found);
	if (!found)
	{
		Datum		args[2];
		char		nulls[2] = {' ', ' '};
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
		int			ret;

		if (parse_uuid(key, u))
			args[0] = UUIDPGetDatum(u);
		else
			nulls[0] = 'n';
		args[1] = CStringGetTextDatum(key);
		l->found = false;
		ret = spi_run(&find_stmt, args, nulls, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "looking up a stream failed: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			memcpy(&l->id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			driftlock_config_from_jsonb(isnull ? NULL : DatumGetJsonbP(d), &l->cfg);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
			l->learn_only = !isnull && DatumGetBool(d);
			l->found = true;
		}
	}
	if (!l->found)
		return false;
	*id = l->id;
	*cfg = l->cfg;
	*learn_only = l->learn_only;
	return true;
}

/*
 * driftlock_streams_changed() -- statement trigger of driftlock.streams
 *
 * Sends a relcache invalidation of the table at commit, so that the Kafka
 * workers forget their stream lookups (see the file header); not for a
 * worker's own creation of a stream.
 */
Datum
driftlock_streams_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("driftlock_streams_changed() must be called as a trigger")));
	if (!own_insert)
		CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
