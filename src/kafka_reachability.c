/*
 * kafka_reachability.c -- whether any Kafka broker answers the worker, for
 * pg_stat_activity and the log
 *
 * librdkafka keeps reconnecting to brokers that do not answer, and its
 * errors are logged at most every 30 s each (kafka_consumer.c); a worker
 * pointed at the wrong brokers would otherwise look like one waiting on a
 * quiet topic.  So, while they are unreachable, the worker's activity in
 * pg_stat_activity says "brokers unreachable since <time>" instead of
 * "waiting for messages on topic \"<topic>\"", and the log says so once, with
 * a hint naming driftlock.kafka_brokers, and once more when they are back.
 *
 * Unreachable: librdkafka reported RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
 * (every known broker's connection is down or failed; __TRANSPORT alone
 * concerns one broker of maybe several).  librdkafka has no event for the
 * way back, so reachable again is any of:
 *
 * - a message arrives: a broker answered a fetch.  Messages and errors
 *   reach the worker through one queue, in order, so a message served
 *   after the error was fetched after it;
 * - partitions are assigned: the group coordinator answered;
 * - a metadata request succeeds: rd_kafka_metadata() needs an answer from
 *   a broker, so it tells even on a topic with no traffic.  The worker asks
 *   only while the brokers are unreachable, at most every
 *   REACHABILITY_PROBE_MS, and waits at most PROBE_TIMEOUT_MS: nothing else
 *   is waiting for it while no broker answers.
 *
 * A new consumer (a reload that changed the brokers, topic or group)
 * starts with nothing known.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "guc.h"
#include "kafka_reachability.h"

#define REACHABILITY_PROBE_MS 2000
#define PROBE_TIMEOUT_MS 250

static int	worker = 0;
static bool unreachable = false;
static TimestampTz unreachable_since = 0;
static TimestampTz last_probe = 0;

void
reachability_reset(int worker_id)
{
	worker = worker_id;
	unreachable = false;
}

void
reachability_kafka_error(int err)
{
	if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || unreachable)
		return;
	unreachable = true;
	unreachable_since = GetCurrentTimestamp();
	last_probe = unreachable_since;
	ereport(LOG,
			(errmsg("driftlock kafka worker %d cannot reach any Kafka broker of driftlock.kafka_brokers \"%s\"",
					worker, driftlock_kafka_brokers),
			 errhint("Check that driftlock.kafka_brokers lists the brokers as host:port and that they accept connections from this server; a reload applies a new value.  The worker keeps trying meanwhile.")));
}

void
reachability_confirmed(void)
{
	long		secs;
	int			usecs;

	if (!unreachable)
		return;
	unreachable = false;
	TimestampDifference(unreachable_since, GetCurrentTimestamp(), &secs, &usecs);
	ereport(LOG,
			(errmsg("driftlock kafka worker %d reaches the Kafka brokers again, after %ld s",
					worker, secs)));
}

void
reachability_probe(rd_kafka_t *rk)
{
	const struct rd_kafka_metadata *md = NULL;
	TimestampTz now;

	if (!unreachable || rk == NULL)
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(last_probe, now, REACHABILITY_PROBE_MS))
		return;
	last_probe = now;
	/* the topics librdkafka knows (ours): only brokers are asked about */
	if (rd_kafka_metadata(rk, 0, NULL, &md, PROBE_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	rd_kafka_metadata_destroy(md);
	reachability_confirmed();
}

void
reachability_activity(char *buf, size_t len, const char *topic)
{
	if (unreachable)
		snprintf(buf, len, "brokers unreachable since %s", timestamptz_to_str(unreachable_since));
	else
		snprintf(buf, len, "waiting for messages on %s", topic);
}
