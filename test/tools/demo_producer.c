/*
 * demo_producer.c
 *		The event generator of the driftlock demo (demo/run.sh).
 *
 * Usage:
 *   demo_producer --brokers B [--topic T] [--events N] [--rate R]
 *                 [--seed S] [--header H] [--status-file F] [--dry-run]
 *
 * Produces about N (default 6000) JSON log events of four services
 * (checkout, payments, search, auth) to topic T (default driftlock-demo),
 * each with the header H (default X-Stream-Id) naming its service's stream
 * and keyed by that name, so that Kafka's partitioner keeps a stream on one
 * partition.  The traffic is deterministic for a given seed (default 42):
 * normal events of each service with varying timestamps, request ids, user
 * ids, latencies and status codes, and a few injected incidents:
 *
 *   at 50%  payments: an error burst, 30 "charge failed: database timeout"
 *   at 65%  auth: a message never seen before, "account locked after
 *           repeated failures", with a client IP (3 events)
 *   at 80%  search: a query string that looks like SQL injection
 *   at 88%  search: a huge payload with a deeply nested filter and a blob
 *   dead letters: at 30% and 90% a message without the stream header
 *           (one of them not even JSON), at 40% one naming an unknown
 *           stream ("billing")
 *
 * R (default 200) is the rate in events per second, 0 for as fast as
 * possible.  The status file (written atomically every 250 ms and at the
 * end) holds lines "produced N", "delivered N", "failed N", "total N",
 * "done 0|1" and, once done, one line "end P O" per partition: the offset
 * after the last message delivered to partition P.  --dry-run prints
 * "stream<TAB>payload" lines on stdout instead of producing (no Kafka).
 *
 * Exits 0 when every message was delivered, 1 otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_PARTITIONS 1024
#define EVENT_BUF 16384

/* ---- options and state ---- */
static const char *brokers = NULL;
static const char *topic = "driftlock-demo";
static const char *header_name = "X-Stream-Id";
static const char *status_file = NULL;
static long	n_events = 6000;
static double rate = 200.0;
static uint64_t seed = 42;
static int	dry_run = 0;

static long produced = 0;
static long delivered = 0;
static long failed = 0;
static long total = 0;
static int64_t end_offset[MAX_PARTITIONS];	/* -1: nothing delivered */
static int	max_partition = -1;
static volatile sig_atomic_t stop_requested = 0;

/* ---- deterministic pseudo-random numbers (xorshift64*) ---- */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* uniform in [0, n) */
static long
rnd(long n)
{
	return (long) (rng_next() % (uint64_t) n);
}

/* uniform in [lo, hi] */
static long
rnd_range(long lo, long hi)
{
	return lo + rnd(hi - lo + 1);
}

static const char *
pick(const char *const *list, size_t n)
{
	return list[rnd((long) n)];
}

#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

/* a latency in ms: mostly around typical, with a long tail */
static long
latency(long typical)
{
	long		l = typical / 2 + rnd(typical);

	if (rnd(100) < 3)
		l += rnd(typical * 8);
	return l;
}

/* ---- event text ---- */
typedef struct buf
{
	char		data[EVENT_BUF];
	size_t		len;
} buf;

#if defined(__GNUC__)
static void put(buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
#endif

static void
put(buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (b->len >= sizeof(b->data) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, sizeof(b->data) - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len = b->len + (size_t) n < sizeof(b->data) ? b->len + (size_t) n : sizeof(b->data) - 1;
}

/* Simulated clock: 2026-03-14 09:00:00 UTC plus a few ms per event */
static int64_t clock_ms = 1773478800000LL;

static void
put_head(buf *b, const char *service, const char *level)
{
	time_t		secs;
	struct tm	tm;
	char		ts[32];

	clock_ms += rnd_range(2, 40);
	secs = (time_t) (clock_ms / 1000);
	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	put(b, "{\"ts\":\"%s.%03dZ\",\"service\":\"%s\",\"level\":\"%s\",\"request_id\":\"%08lx-%04lx-4%03lx-%04lx-%012llx\"",
		ts, (int) (clock_ms % 1000), service, level,
		(unsigned long) (rng_next() >> 32), (unsigned long) rnd(0x10000), (unsigned long) rnd(0x1000),
		(unsigned long) (0x8000 + rnd(0x4000)), (unsigned long long) (rng_next() >> 16));
}

static const char *const currencies[] = {"EUR", "EUR", "EUR", "USD", "GBP"};
static const char *const card_brands[] = {"visa", "visa", "mastercard", "amex"};
static const char *const search_terms[] = {
	"running shoes", "wireless headphones", "coffee grinder", "usb-c cable",
	"rain jacket", "yoga mat", "desk lamp", "gift card", "phone case",
	"water bottle", "backpack", "mechanical keyboard"
};
static const char *const login_methods[] = {"password", "password", "sso", "totp"};
static const char *const regions[] = {"eu-west-1", "eu-west-1", "eu-central-1"};

static void
normal_checkout(buf *b)
{
	long		r = rnd(100);

	put_head(b, "checkout", r < 92 ? "info" : "warn");
	if (r < 40)
		put(b, ",\"msg\":\"order placed\",\"order_id\":\"ord-%06ld\",\"items\":%ld,\"total_cents\":%ld,\"currency\":\"%s\"",
			rnd(1000000), rnd_range(1, 6), rnd_range(499, 25999), PICK(currencies));
	else if (r < 75)
		put(b, ",\"msg\":\"cart updated\",\"cart_id\":\"c-%05ld\",\"items\":%ld",
			rnd(100000), rnd_range(1, 9));
	else if (r < 92)
		put(b, ",\"msg\":\"order confirmation email queued\",\"order_id\":\"ord-%06ld\"",
			rnd(1000000));
	else
		put(b, ",\"msg\":\"inventory reservation slow\",\"sku\":\"SKU-%05ld\"", rnd(100000));
	put(b, ",\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":%d,\"host\":\"checkout-%ld.%s\"}",
		rnd(50000), latency(r < 92 ? 60 : 900), 200, rnd_range(1, 4), PICK(regions));
}

static void
normal_payments(buf *b)
{
	long		r = rnd(100);

	put_head(b, "payments", "info");
	if (r < 55)
		put(b, ",\"msg\":\"charge authorized\",\"amount_cents\":%ld,\"currency\":\"%s\",\"card_brand\":\"%s\",\"psp\":\"acquirer-a\"",
			rnd_range(499, 25999), PICK(currencies), PICK(card_brands));
	else if (r < 90)
		put(b, ",\"msg\":\"charge captured\",\"amount_cents\":%ld,\"currency\":\"%s\"",
			rnd_range(499, 25999), PICK(currencies));
	else if (r < 97)
		put(b, ",\"msg\":\"3ds challenge completed\",\"card_brand\":\"%s\"", PICK(card_brands));
	else
		put(b, ",\"msg\":\"refund issued\",\"amount_cents\":%ld,\"currency\":\"%s\"",
			rnd_range(499, 9999), PICK(currencies));
	put(b, ",\"payment_id\":\"pay_%010lx\",\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":200}",
		(unsigned long) (rng_next() >> 24), rnd(50000), latency(120));
}

static void
normal_search(buf *b)
{
	long		r = rnd(100);

	put_head(b, "search", "info");
	if (r < 70)
		put(b, ",\"msg\":\"query served\",\"q\":\"%s\",\"results\":%ld,\"page\":%ld",
			PICK(search_terms), rnd_range(0, 480), rnd_range(1, 3));
	else if (r < 92)
		put(b, ",\"msg\":\"autocomplete served\",\"prefix\":\"%.*s\",\"suggestions\":%ld",
			(int) rnd_range(2, 5), PICK(search_terms), rnd_range(1, 10));
	else
		put(b, ",\"msg\":\"cache miss, index queried\",\"shard\":%ld", rnd(16));
	put(b, ",\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":200}", rnd(50000), latency(35));
}

static void
normal_auth(buf *b)
{
	long		r = rnd(100);
	int			status = 200;

	put_head(b, "auth", r < 92 ? "info" : "warn");
	if (r < 45)
		put(b, ",\"msg\":\"login succeeded\",\"method\":\"%s\"", PICK(login_methods));
	else if (r < 80)
		put(b, ",\"msg\":\"token refreshed\",\"ttl_s\":3600");
	else if (r < 92)
		put(b, ",\"msg\":\"logout\"");
	else
	{
		put(b, ",\"msg\":\"login failed: wrong password\",\"method\":\"password\"");
		status = 401;
	}
	put(b, ",\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":%d}", rnd(50000), latency(25), status);
}

/* ---- incidents ---- */
static void
incident_db_timeout(buf *b, int i)
{
	put_head(b, "payments", "error");
	put(b, ",\"msg\":\"charge failed: database timeout\",\"error\":\"pq: canceling statement due to statement timeout\","
		"\"db_host\":\"payments-db-2.internal\",\"timeout_ms\":5000,\"attempt\":%d,"
		"\"payment_id\":\"pay_%010lx\",\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":503}",
		i % 3 + 1, (unsigned long) (rng_next() >> 24), rnd(50000), 5000 + rnd(40));
}

static void
incident_account_locked(buf *b, int i)
{
	put_head(b, "auth", "warn");
	put(b, ",\"msg\":\"account locked after repeated failures\",\"user_id\":\"u31337\","
		"\"client_ip\":\"203.0.113.%d\",\"failed_attempts\":%d,\"lock_minutes\":30,\"status\":423}",
		77 + i, 12 + 4 * i);
}

static void
incident_sql_injection(buf *b)
{
	put_head(b, "search", "info");
	put(b, ",\"msg\":\"query served\",\"q\":\"' OR '1'='1' UNION SELECT username, password_hash FROM users --\","
		"\"results\":0,\"page\":1,\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":200}",
		rnd(50000), latency(35));
}

static void
incident_huge_payload(buf *b)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int			depth = 40;

	put_head(b, "search", "info");
	put(b, ",\"msg\":\"query served\",\"q\":\"running shoes\",\"filters\":");
	for (int i = 0; i < depth; i++)
		put(b, "{\"and\":[{\"facet\":\"f%d\",\"value\":%d},", i, (int) rnd(1000));
	put(b, "null");
	for (int i = 0; i < depth; i++)
		put(b, "]}");
	put(b, ",\"debug_blob\":\"");
	for (int i = 0; i < 3000; i++)
		put(b, "%c", b64[rnd(64)]);
	put(b, "\",\"results\":0,\"user_id\":\"u%05ld\",\"latency_ms\":%ld,\"status\":200}",
		rnd(50000), latency(35) + 2000);
}

/* ---- Kafka ---- */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void) rk;
	(void) opaque;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		failed++;
		fprintf(stderr, "demo_producer: delivery failed: %s\n", rd_kafka_err2str(m->err));
		return;
	}
	delivered++;
	if (m->partition >= 0 && m->partition < MAX_PARTITIONS)
	{
		if (m->offset + 1 > end_offset[m->partition])
			end_offset[m->partition] = m->offset + 1;
		if (m->partition > max_partition)
			max_partition = m->partition;
	}
}

static void
write_status(int done)
{
	char		tmp[4096];
	FILE	   *f;

	if (status_file == NULL)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", status_file) >= (int) sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (f == NULL)
	{
		fprintf(stderr, "demo_producer: cannot write \"%s\": %s\n", tmp, strerror(errno));
		return;
	}
	fprintf(f, "produced %ld\ndelivered %ld\nfailed %ld\ntotal %ld\ndone %d\n",
			produced, delivered, failed, total, done);
	if (done)
		for (int p = 0; p <= max_partition; p++)
			if (end_offset[p] >= 0)
				fprintf(f, "end %d %lld\n", p, (long long) end_offset[p]);
	if (fclose(f) != 0 || rename(tmp, status_file) != 0)
		fprintf(stderr, "demo_producer: cannot write \"%s\": %s\n", status_file, strerror(errno));
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Send one message; stream NULL: no stream header; key = stream or "unrouted" */
static void
send_event(rd_kafka_t *rk, const char *stream, const char *payload, size_t len)
{
	rd_kafka_resp_err_t err;
	rd_kafka_headers_t *hdrs;
	const char *key = stream != NULL ? stream : "unrouted";

	if (dry_run)
	{
		printf("%s\t%.*s\n", stream != NULL ? stream : "-", (int) len, payload);
		produced++;
		delivered++;
		return;
	}
	hdrs = rd_kafka_headers_new(2);
	if (stream != NULL)
		rd_kafka_header_add(hdrs, header_name, -1, stream, -1);
	rd_kafka_header_add(hdrs, "Content-Type", -1, "application/json", -1);
	for (;;)
	{
		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_KEY(key, strlen(key)),
								RD_KAFKA_V_VALUE((void *) payload, len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_HEADERS(hdrs),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(rk, 100);
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		rd_kafka_headers_destroy(hdrs);
		failed++;
		fprintf(stderr, "demo_producer: cannot produce: %s\n", rd_kafka_err2str(err));
		return;
	}
	produced++;
	rd_kafka_poll(rk, 0);
}

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: demo_producer --brokers HOST:PORT[,...] [--topic T] [--events N] [--rate R]\n"
			"                     [--seed S] [--header H] [--status-file F] [--dry-run]\n"
			"  --events N   about N events (default 6000, at least 400)\n"
			"  --rate R     events per second (default 200; 0 = as fast as possible)\n"
			"  --dry-run    print \"stream<TAB>payload\" lines instead of producing\n");
}

static void
handle_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}

static long
parse_long(const char *opt, const char *v, long lo, long hi)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
	{
		fprintf(stderr, "demo_producer: %s must be an integer between %ld and %ld\n", opt, lo, hi);
		exit(2);
	}
	return n;
}

int
main(int argc, char **argv)
{
	rd_kafka_t *rk = NULL;
	char		errstr[512];
	buf			b;
	double		t0,
				last_status = 0;
	long		burst_at,
				locked_at,
				odd_at,
				huge_at,
				nohdr1_at,
				nohdr2_at,
				unknown_at;
	int			burst_left = 0,
				locked_left = 0;
	struct sigaction sa;

	for (int i = 1; i < argc; i++)
	{
		const char *opt = argv[i];

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (strcmp(opt, "--dry-run") == 0)
		{
			dry_run = 1;
			continue;
		}
		if (i + 1 >= argc)
		{
			usage(stderr);
			return 2;
		}
		if (strcmp(opt, "--brokers") == 0)
			brokers = argv[++i];
		else if (strcmp(opt, "--topic") == 0)
			topic = argv[++i];
		else if (strcmp(opt, "--header") == 0)
			header_name = argv[++i];
		else if (strcmp(opt, "--status-file") == 0)
			status_file = argv[++i];
		else if (strcmp(opt, "--events") == 0)
			n_events = parse_long(opt, argv[++i], 400, 10000000);
		else if (strcmp(opt, "--rate") == 0)
			rate = (double) parse_long(opt, argv[++i], 0, 1000000);
		else if (strcmp(opt, "--seed") == 0)
			seed = (uint64_t) parse_long(opt, argv[++i], 0, 2147483647);
		else
		{
			usage(stderr);
			return 2;
		}
	}
	if (brokers == NULL && !dry_run)
	{
		usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	for (int p = 0; p < MAX_PARTITIONS; p++)
		end_offset[p] = -1;
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
	if (rng_state == 0)
		rng_state = 1;

	if (!dry_run)
	{
		rd_kafka_conf_t *conf = rd_kafka_conf_new();

		if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			rd_kafka_conf_set(conf, "message.timeout.ms", "30000", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			/* the Java client's partitioner: a key always maps to the same partition */
			rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			fprintf(stderr, "demo_producer: %s\n", errstr);
			return 2;
		}
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
		if (rk == NULL)
		{
			fprintf(stderr, "demo_producer: cannot create producer: %s\n", errstr);
			return 1;
		}
	}

	/* where the incidents go, as shares of the run */
	burst_at = n_events * 50 / 100;
	locked_at = n_events * 65 / 100;
	odd_at = n_events * 80 / 100;
	huge_at = n_events * 88 / 100;
	nohdr1_at = n_events * 30 / 100;
	unknown_at = n_events * 40 / 100;
	nohdr2_at = n_events * 90 / 100;
	/* normal events plus the injected ones */
	total = n_events + 30 + 3 + 2 + 3;

	write_status(0);
	t0 = now_s();
	for (long i = 0; i < n_events && !stop_requested; i++)
	{
		long		r;

		if (i == burst_at)
			burst_left = 30;
		if (i == locked_at)
			locked_left = 3;

		/* an incident's events take the place of some of its service's ones */
		r = rnd(100);
		b.len = 0;
		if (r < 30)
		{
			normal_checkout(&b);
			send_event(rk, "checkout", b.data, b.len);
		}
		else if (r < 65)
		{
			normal_search(&b);
			send_event(rk, "search", b.data, b.len);
		}
		else if (r < 85)
		{
			normal_auth(&b);
			send_event(rk, "auth", b.data, b.len);
			if (locked_left > 0 && rnd(4) == 0)
			{
				b.len = 0;
				incident_account_locked(&b, 3 - locked_left);
				send_event(rk, "auth", b.data, b.len);
				locked_left--;
			}
		}
		else
		{
			normal_payments(&b);
			send_event(rk, "payments", b.data, b.len);
		}
		if (burst_left > 0 && r >= 60)
		{
			/* the burst comes on top of normal payments traffic */
			b.len = 0;
			incident_db_timeout(&b, 30 - burst_left);
			send_event(rk, "payments", b.data, b.len);
			burst_left--;
		}
		if (i == odd_at)
		{
			b.len = 0;
			incident_sql_injection(&b);
			send_event(rk, "search", b.data, b.len);
		}
		if (i == huge_at)
		{
			b.len = 0;
			incident_huge_payload(&b);
			send_event(rk, "search", b.data, b.len);
		}
		if (i == nohdr1_at)
		{
			b.len = 0;
			put_head(&b, "cron", "info");
			put(&b, ",\"msg\":\"nightly export started\",\"job\":\"export-orders\"}");
			send_event(rk, NULL, b.data, b.len);
		}
		if (i == nohdr2_at)
		{
			const char *line = "GET /healthz HTTP/1.1 200 2ms kube-probe/1.28";

			send_event(rk, NULL, line, strlen(line));
		}
		if (i == unknown_at)
		{
			b.len = 0;
			put_head(&b, "billing", "info");
			put(&b, ",\"msg\":\"invoice generated\",\"invoice_id\":\"inv-2026-%05ld\",\"amount_cents\":%ld}",
				rnd(100000), rnd_range(1000, 99999));
			send_event(rk, "billing", b.data, b.len);
		}

		if (!dry_run)
		{
			double		now = now_s();

			if (rate > 0)
			{
				double		due = t0 + (double) (i + 1) / rate;

				while (now < due && !stop_requested)
				{
					int			ms = (int) ((due - now) * 1000);

					rd_kafka_poll(rk, ms > 0 ? (ms < 100 ? ms : 100) : 0);
					now = now_s();
				}
			}
			if (now - last_status >= 0.25)
			{
				write_status(0);
				last_status = now;
			}
		}
	}
	total = produced + failed;

	if (!dry_run)
	{
		double		deadline = now_s() + 35;

		while (rd_kafka_outq_len(rk) > 0 && now_s() < deadline)
		{
			rd_kafka_flush(rk, 250);
			write_status(0);
		}
		if (rd_kafka_outq_len(rk) > 0)
		{
			fprintf(stderr, "demo_producer: %d messages not delivered\n", rd_kafka_outq_len(rk));
			failed += rd_kafka_outq_len(rk);
		}
		rd_kafka_destroy(rk);
	}
	write_status(1);
	if (stop_requested)
		return 1;
	return failed == 0 && delivered == produced ? 0 : 1;
}
