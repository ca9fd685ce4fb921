/*
 * kafka_consumer.c -- the librdkafka consumer of a Kafka worker
 *
 * librdkafka's high-level consumer, subscribed to the topics and patterns
 * of driftlock.kafka_topic in group driftlock.kafka_group_id.  Offsets are
 * PostgreSQL's business: auto-commit and auto offset store are off, and on assignment every
 * partition starts at the checkpoint offset stored in driftlock.kafka_offsets,
 * where its detectors' saved states stand, and replays from there to the
 * stored next offset (replay.c); or at the group's committed Kafka offset
 * when that is further, because another instance with the same group id
 * processed those messages; a partition with neither starts where
 * driftlock.kafka_start says (kafka_start.c).  After
 * each PostgreSQL commit the offsets are also committed to Kafka,
 * asynchronously, only so that standard lag tools see progress.
 *
 * librdkafka's threads never call into PostgreSQL: logs, errors and
 * rebalances are queued (log.queue) and served by rd_kafka_consumer_poll()
 * in the worker's own thread.  The callbacks only log, never raise errors.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "batch_writer.h"
#include "guc.h"
#include "kafka_consumer.h"
#include "kafka_reachability.h"
#include "kafka_start.h"
#include "message/kafka_properties.h"
#include "message/setting_lists.h"
#include "offset_fence.h"
#include "replay.h"
#include "spi_plans.h"

void		(*consumer_on_revoke) (void) = NULL;
void		(*consumer_on_assign) (const rd_kafka_topic_partition_list_t *parts) = NULL;

static int	log_worker_id = 0;

/* Repeated Kafka errors and warnings are logged at most every 30 s each. */
#define LOG_REPEAT_MS 30000
#define LOG_SLOTS 32

typedef struct LogSlot
{
	uint32		hash;
	TimestampTz last;
	int			suppressed;
} LogSlot;

static LogSlot log_slots[LOG_SLOTS];

/* Hash of a message with digits left out, so "broker 3" ~ "broker 4". */
static uint32
shape_hash(const char *a, const char *b)
{
	uint32		h = 2166136261u;

	for (const char *s = a; s && *s; s++)
		if (*s < '0' || *s > '9')
			h = (h ^ (uint8) *s) * 16777619u;
	for (const char *s = b; s && *s; s++)
		if (*s < '0' || *s > '9')
			h = (h ^ (uint8) *s) * 16777619u;
	return h;
}

/*
 * Whether to log now; *suppressed receives how many like it were held back
 * since the last time.
 */
static bool
rate_limit(uint32 hash, int *suppressed)
{
	TimestampTz now = GetCurrentTimestamp();
	LogSlot    *slot = &log_slots[hash % LOG_SLOTS];

	if (slot->hash == hash && !TimestampDifferenceExceeds(slot->last, now, LOG_REPEAT_MS))
	{
		slot->suppressed++;
		return false;
	}
	*suppressed = slot->hash == hash ? slot->suppressed : 0;
	slot->hash = hash;
	slot->last = now;
	slot->suppressed = 0;
	return true;
}

static bool repeats_property_value(const char *message, bool sensitive_only);

/* buf, or a placeholder when it repeats a secret property value */
static const char *
loggable(const char *buf)
{
	return repeats_property_value(buf, true) ?
		"(message withheld: it repeats a value of driftlock.kafka_properties)" : buf;
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	int			suppressed;

	/* syslog levels: 0-4 emergency .. warning, 5 notice, 6 info, 7 debug */
	if (level > 4)
	{
		if (message_level_is_interesting(level == 7 ? DEBUG2 : DEBUG1))
			ereport(level == 7 ? DEBUG2 : DEBUG1,
					(errmsg_internal("driftlock kafka worker %d: librdkafka %s: %s", log_worker_id, fac,
									 loggable(buf))));
		return;
	}
	if (!rate_limit(shape_hash(fac, buf), &suppressed))
		return;
	buf = loggable(buf);
	ereport(LOG,
			(errmsg("driftlock kafka worker %d: librdkafka %s: %s", log_worker_id, fac, buf),
			 suppressed > 0 ? errdetail("%d similar messages were suppressed in the last %d seconds.",
										suppressed, LOG_REPEAT_MS / 1000) : 0));
}

void
consumer_log_message_error(int worker, const rd_kafka_message_t *msg)
{
	int			suppressed;

	if (!rate_limit(shape_hash(rd_kafka_err2name(msg->err), "message"), &suppressed))
		return;
	ereport(LOG,
			(errmsg("driftlock kafka worker %d: consumer error %s: %s", worker,
					rd_kafka_err2name(msg->err), rd_kafka_message_errstr(msg)),
			 suppressed > 0 ? errdetail("%d similar errors were suppressed in the last %d seconds.",
										suppressed, LOG_REPEAT_MS / 1000) : 0));
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	int			suppressed;

	reachability_kafka_error(err);
	if (!rate_limit(shape_hash(rd_kafka_err2name(err), NULL), &suppressed))
		return;
	ereport(LOG,
			(errmsg("driftlock kafka worker %d: Kafka error %s: %s", log_worker_id,
					rd_kafka_err2name(err), loggable(reason)),
			 suppressed > 0 ? errdetail("%d similar errors were suppressed in the last %d seconds.",
										suppressed, LOG_REPEAT_MS / 1000) : 0,
			 err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ?
			 errhint("librdkafka keeps retrying; check driftlock.kafka_brokers and the brokers.") : 0));
}

/*
 * Kafka commits carry this PostgreSQL system's identifier as metadata.  A
 * promoted standby has its primary's identifier: a committed Kafka offset
 * beyond the stored one that bears it was committed by the former primary
 * for batches whose WAL never reached the standby, so those messages must
 * be processed again here, not skipped.  Another instance of the same group
 * has its own identifier: its commits mean its rows, and are skipped to.
 * So this system's own Kafka commits never decide where it starts:
 * driftlock.kafka_offsets does.
 */
#define COMMIT_METADATA_PREFIX "driftlock system "

static const char *
commit_metadata(void)
{
	static char metadata[64];

	if (metadata[0] == '\0')
		snprintf(metadata, sizeof(metadata), COMMIT_METADATA_PREFIX UINT64_FORMAT,
				 GetSystemIdentifier());
	return metadata;
}

static bool
committed_by_this_system(const rd_kafka_topic_partition_t *p)
{
	const char *mine = commit_metadata();

	return p->metadata != NULL && p->metadata_size == strlen(mine) &&
		memcmp(p->metadata, mine, p->metadata_size) == 0;
}

/*
 * Set each partition's start offset from driftlock.kafka_offsets (its own
 * transaction).  Returns false after logging when that failed.
 */
typedef struct StoredOffsets
{
	rd_kafka_topic_partition_list_t *parts;
	const rd_kafka_topic_partition_list_t *committed;
	rd_kafka_topic_partition_list_t *starts;	/* kafka_start_offsets() */
} StoredOffsets;

static void
set_stored_offsets_body(void *arg)
{
	StoredOffsets *so = arg;

	for (int i = 0; i < so->parts->cnt; i++)
	{
		rd_kafka_topic_partition_t *p = &so->parts->elems[i];
		const rd_kafka_topic_partition_t *kafka = &so->committed->elems[i];
		int64		next,
					checkpoint;
		int64		replay_until = -1;	/* nothing to replay */
		MessageFormat format;
		bool		stored;

		message_format_current(&format);	/* unless the row says otherwise */
		stored = batch_load_offset(driftlock_kafka_group_id, p->topic, p->partition,
											   &next, &checkpoint, &format);

		if (!stored)
		{
			/*
			 * Nothing stored here: the group's Kafka offset, else where
			 * driftlock.kafka_start says.  But an offset this system
			 * committed is ours, lost (a failover before the first batch
			 * replicated, or rows deleted to start over): it does not count.
			 */
			if (kafka->offset >= 0 && !committed_by_this_system(kafka))
				p->offset = RD_KAFKA_OFFSET_INVALID;
			else
				stored = kafka_start_partition(log_worker_id, &so->starts->elems[i], p, &next);
		}
		else if (kafka->offset > next && !committed_by_this_system(kafka))
			p->offset = kafka->offset;	/* another instance went further: its
										 * results, not ours */
		else
		{
			/* the detectors' states stand at the checkpoint: replay from there */
			p->offset = Min(checkpoint, next);
			replay_until = next;
			if (kafka->offset > next)
				ereport(LOG,
						(errmsg("driftlock will process %s[%d] again from offset %lld: the group's Kafka offset %lld was committed by this system before a failover, for batches this server does not have",
								p->topic, p->partition, (long long) next, (long long) kafka->offset)));
		}
		/* also drops the partition's earlier plan */
		replay_plan(p->topic, p->partition, p->offset, replay_until, &format);
		/* offsets move only from here (offset_fence.c) */
		fence_assigned(p->topic, p->partition, stored, stored ? next : 0);
	}
}

static bool
set_stored_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
	StoredOffsets so = {parts, committed, NULL};
	bool		known = true;
	bool		ok;

	/* the group's Kafka offsets, where known (another instance's progress) */
	if (rd_kafka_committed(rk, committed, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		known = false;
		for (int i = 0; i < committed->cnt; i++)
			committed->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
	}
	so.starts = kafka_start_offsets(rk, parts, known);
	ok = spi_xact_try(set_stored_offsets_body, &so);
	rd_kafka_topic_partition_list_destroy(so.starts);
	rd_kafka_topic_partition_list_destroy(committed);
	return ok;
}

static bool
cooperative(rd_kafka_t *rk)
{
	return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

static void
log_partitions(const char *what, rd_kafka_topic_partition_list_t *parts)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < parts->cnt; i++)
		appendStringInfo(&buf, "%s%s[%d]@%lld", i ? ", " : "", parts->elems[i].topic,
						 parts->elems[i].partition, (long long) parts->elems[i].offset);
	ereport(LOG, (errmsg("driftlock kafka worker %d %s partitions: %s", log_worker_id, what,
						 parts->cnt ? buf.data : "none")));
	pfree(buf.data);
}

/* If the offsets cannot be read, the worker must not consume: it restarts. */
static bool rebalance_failed = false;

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		if (!set_stored_offsets(rk, parts))
		{
			rebalance_failed = true;
			return;
		}
		/* the group coordinator answered */
		reachability_confirmed();
		log_partitions("assigned", parts);
		if (cooperative(rk))
			rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
		if (consumer_on_assign)
			consumer_on_assign(parts);
	}
	else
	{
		/* revoked (or lost): what is held for them was never committed */
		if (consumer_on_revoke)
			consumer_on_revoke();
		log_partitions("revoked", parts);
		if (cooperative(rk))
			rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	}
}

bool
consumer_rebalance_failed(void)
{
	return rebalance_failed;
}

/* Settings driftlock manages itself; kafka_properties must not override them. */
static const char *const managed[] = {
	"bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit",
	"enable.auto.offset.store", "enable.partition.eof", "log.queue", NULL
};

typedef struct PropertyContext
{
	rd_kafka_conf_t *conf;
} PropertyContext;

/*
 * Values of driftlock.kafka_properties may be passwords, so a message from
 * librdkafka goes to the server log only when it repeats none of them.
 * librdkafka quotes a rejected value whole, or only the bad item of a list
 * ("debug=broker,sasl.password=..." after a mistyped ";"), or names a value
 * it cannot use; so the check looks for each value and for each of its
 * items (separated by commas, semicolons or spaces) of at least
 * MIN_SECRET_BYTES bytes.
 */
#define MIN_SECRET_BYTES 4

typedef struct ValueSearch
{
	const char *message;
	bool		sensitive_only; /* only values of keys that look secret */
	bool		found;
} ValueSearch;

/* Whether a librdkafka property name looks like it holds a secret. */
static bool
sensitive_key(const char *key)
{
	static const char *const words[] = {"password", "secret", "token", "jaas",
	"credential", "ssl.key", "private", "oauthbearer.config"};

	for (size_t i = 0; i < lengthof(words); i++)
		if (strstr(key, words[i]) != NULL)
			return true;
	return false;
}

static bool
repeats_text(const char *message, const char *start, size_t len)
{
	char	   *text;
	bool		found;

	if (len < MIN_SECRET_BYTES)
		return false;
	text = pnstrdup(start, len);
	found = strstr(message, text) != NULL;
	pfree(text);
	return found;
}

static int
search_value(const char *key, const char *value, void *opaque, char *err, size_t errlen)
{
	ValueSearch *vs = opaque;
	const char *p = value;

	if (vs->sensitive_only && key != NULL && !sensitive_key(key))
		return 0;
	if (repeats_text(vs->message, value, strlen(value)))
		vs->found = true;
	while (*p && !vs->found)
	{
		size_t		len = strcspn(p, ",; \t");

		if (repeats_text(vs->message, p, len))
			vs->found = true;
		p += len;
		p += strspn(p, ",; \t");
	}
	return 0;
}

/*
 * Whether message repeats (part of) a value of driftlock.kafka_properties:
 * any value when sensitive_only is false (errors about the setting itself,
 * which name the property instead), else only values of keys that look
 * secret (librdkafka's logs at run time, where "SASL_SSL" or a mechanism
 * name must stay readable).
 */
static bool
repeats_property_value(const char *message, bool sensitive_only)
{
	ValueSearch vs = {message, sensitive_only, false};
	char		err[256];

	/* a setting that does not parse is searched as one value */
	if (kafka_properties_parse(driftlock_kafka_properties, search_value, &vs, err, sizeof(err)) != 0 &&
		driftlock_kafka_properties != NULL)
		search_value(NULL, driftlock_kafka_properties, &vs, err, sizeof(err));
	return vs.found;
}

static int
apply_property(const char *key, const char *value, void *opaque, char *err, size_t errlen)
{
	PropertyContext *pc = opaque;
	char		errstr[512];

	for (int i = 0; managed[i]; i++)
		if (strcmp(key, managed[i]) == 0)
		{
			snprintf(err, errlen, "\"%s\" is set by driftlock itself (driftlock.kafka_brokers, driftlock.kafka_group_id, offsets kept in PostgreSQL).", key);
			return -1;
		}
	/*
	 * Incremental (cooperative) rebalancing keeps some partitions while
	 * others go; the worker drops its whole uncommitted batch on revocation,
	 * which is only safe when every partition is revoked at once.
	 */
	if (strcmp(key, "partition.assignment.strategy") == 0 && strstr(value, "cooperative") != NULL)
	{
		snprintf(err, errlen, "\"%s\" must not be cooperative: driftlock needs eager rebalancing (range or roundrobin).", key);
		return -1;
	}
	errstr[0] = '\0';
	switch (rd_kafka_conf_set(pc->conf, key, value, errstr, sizeof(errstr)))
	{
		case RD_KAFKA_CONF_OK:
			return 0;
		case RD_KAFKA_CONF_UNKNOWN:
			snprintf(err, errlen, "\"%s\" is not a librdkafka setting.", key);
			return -1;
		default:
			/* librdkafka's message, unless it repeats a (maybe secret) value */
			if ((value[0] != '\0' && strstr(errstr, value) != NULL) || repeats_property_value(errstr, false))
				snprintf(err, errlen, "The value of \"%s\" is not valid.", key);
			else
				snprintf(err, errlen, "The value of \"%s\" is not valid: %s", key, errstr);
			return -1;
	}
}

static bool
conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return true;
	ereport(LOG,
			(errmsg("driftlock kafka worker %d cannot set librdkafka setting \"%s\": %s",
					log_worker_id, key, errstr)));
	return false;
}

rd_kafka_t *
consumer_create(int worker_id, ConsumerSettings *settings)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_t *rk;
	PropertyContext pc = {conf};
	char		client_id[64];
	char		err[512];
	char		label[512];
	rd_kafka_resp_err_t rerr;
	const char *cursor;
	const char *item;
	size_t		len;

	log_worker_id = worker_id;
	rebalance_failed = false;
	reachability_reset(worker_id);
	snprintf(client_id, sizeof(client_id), "driftlock-worker-%d", worker_id);

	/*
	 * Defaults first, so that driftlock.kafka_properties may override them:
	 * at most 16 MiB of prefetched messages per worker (librdkafka's default
	 * is 64 MiB per consumer), and a stored offset Kafka no longer has
	 * resumes at the log start (retention_gap.c).  Partitions with no
	 * offsets start where driftlock.kafka_start says (kafka_start.c).
	 */
	if (!conf_set(conf, "client.id", client_id) ||
		!conf_set(conf, "auto.offset.reset", "earliest") ||
		!conf_set(conf, "queued.max.messages.kbytes", "16384"))
		goto fail;
	if (kafka_properties_parse(driftlock_kafka_properties, apply_property, &pc,
							   err, sizeof(err)) != 0)
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("driftlock kafka worker %d cannot start: invalid driftlock.kafka_properties", worker_id),
				 errdetail("%s", err),
				 errhint("Fix the setting and restart the server; the worker waits until then.")));
		goto fail;
	}
	if (!conf_set(conf, "bootstrap.servers", driftlock_kafka_brokers) ||
		!conf_set(conf, "group.id", driftlock_kafka_group_id) ||
		!conf_set(conf, "enable.auto.commit", "false") ||
		!conf_set(conf, "enable.auto.offset.store", "false") ||
		!conf_set(conf, "enable.partition.eof", "false") ||
		!conf_set(conf, "log.queue", "true"))
		goto fail;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
	{
		if (repeats_property_value(err, false))
			ereport(LOG,
					(errmsg("driftlock kafka worker %d cannot create a Kafka consumer: librdkafka rejects a value of driftlock.kafka_properties",
							worker_id),
					 errdetail("librdkafka's message is not shown because it repeats the value, which may be secret."),
					 errhint("Fix the setting and restart the server; the worker waits until then.")));
		else
			ereport(LOG,
					(errmsg("driftlock kafka worker %d cannot create a Kafka consumer: %s", worker_id, err)));
		goto fail;
	}
	/* conf belongs to rk from here on */
	rd_kafka_set_log_queue(rk, NULL);
	rd_kafka_poll_set_consumer(rk);

	/* names and ^patterns, checked by the setting's check hook */
	topics = rd_kafka_topic_partition_list_new(1);
	cursor = driftlock_kafka_topic;
	while (list_next_item(&cursor, &item, &len))
	{
		char	   *name = pnstrdup(item, len);

		rd_kafka_topic_partition_list_add(topics, name, RD_KAFKA_PARTITION_UA);
		pfree(name);
	}
	topic_list_label(driftlock_kafka_topic, label, sizeof(label));
	rerr = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		ereport(LOG,
				(errmsg("driftlock kafka worker %d cannot subscribe to %s: %s",
						worker_id, label, rd_kafka_err2str(rerr))));
		rd_kafka_destroy(rk);
		return NULL;
	}
	strlcpy(settings->brokers, driftlock_kafka_brokers, sizeof(settings->brokers));
	strlcpy(settings->topic, driftlock_kafka_topic, sizeof(settings->topic));
	strlcpy(settings->group, driftlock_kafka_group_id, sizeof(settings->group));
	settings->format = driftlock_kafka_format;
	strlcpy(settings->otlp_stream_attribute, driftlock_otlp_stream_attribute,
			sizeof(settings->otlp_stream_attribute));
	ereport(LOG,
			(errmsg("driftlock kafka worker %d consuming %s from \"%s\" as group \"%s\"",
					worker_id, label, driftlock_kafka_brokers, driftlock_kafka_group_id)));
	kafka_start_note_properties(worker_id);
	return rk;

fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

void
consumer_close(rd_kafka_t *rk)
{
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

void
consumer_rewind(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	if (parts->cnt > 0 && set_stored_offsets(rk, parts))
	{
		if (cooperative(rk))
		{
			rd_kafka_incremental_unassign(rk, parts);
			rd_kafka_incremental_assign(rk, parts);
		}
		else
			rd_kafka_assign(rk, parts);
		/* the positions go back to the checkpoint */
		if (consumer_on_assign)
			consumer_on_assign(parts);
	}
	else if (parts->cnt > 0)
		rebalance_failed = true;
	rd_kafka_topic_partition_list_destroy(parts);
}

void
consumer_commit(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *offsets, bool wait)
{
	const char *metadata = commit_metadata();
	rd_kafka_resp_err_t err;
	int			suppressed;

	for (int i = 0; i < offsets->cnt; i++)
	{
		rd_kafka_topic_partition_t *p = &offsets->elems[i];

		/* freed by librdkafka with the list (rd_free, that is free) */
		if (p->metadata != NULL)
			free(p->metadata);
		p->metadata = strdup(metadata);
		p->metadata_size = p->metadata ? strlen(metadata) : 0;
	}
	/* PostgreSQL holds the offsets that count: a failure is only logged */
	err = rd_kafka_commit(rk, offsets, wait ? 0 : 1);
	if (wait && err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET &&
		rate_limit(shape_hash("commit", rd_kafka_err2name(err)), &suppressed))
		ereport(LOG,
				(errmsg("driftlock kafka worker %d could not commit its offsets to Kafka: %s",
						log_worker_id, rd_kafka_err2str(err)),
				 errdetail("Another instance of group \"%s\" taking over these partitions may process again what this one processed last.",
						   driftlock_kafka_group_id)));
}

bool
consumer_drained(rd_kafka_t *rk)
{
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
	size_t		n;

	if (q == NULL)
		return true;
	n = rd_kafka_queue_length(q);
	rd_kafka_queue_destroy(q);
	return n == 0;
}
