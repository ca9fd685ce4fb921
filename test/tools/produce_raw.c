/*
 * produce_raw.c
 *		Produce Kafka messages whose payloads and headers may hold any bytes,
 *		for the bad-input tests (test/t/019_worker_bad_input.pl).
 *
 * Usage:
 *   produce_raw --brokers B --topic T [--partition P] < messages
 *
 * kcat cannot send a header value with a NUL byte, a null header, or a null
 * payload next to an empty one; this tool can.  Its input is a sequence of
 * records, each a text line followed by raw bytes:
 *
 *   message <nheaders> <payload_len> [<key_len>]\n
 *   header <name_len> <value_len>\n<name bytes><value bytes>   (nheaders times)
 *   <key bytes>
 *   <payload bytes>
 *
 * A length of -1 means null (a null header value, a null key, or a null
 * payload: a tombstone); without key_len the key is null.  Messages go to partition P (default 0) in input order, one
 * in flight at a time, so their offsets follow the input.  For each message
 * it prints "<index> <partition> <offset>" once delivered, in input order.
 * Exits 0 when every message was delivered, 1 on any failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

typedef struct Delivery
{
	int			done;
	rd_kafka_resp_err_t err;
	int32_t		partition;
	int64_t		offset;
} Delivery;

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "produce_raw: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

/* Read len bytes from stdin into a new buffer (NULL when len is -1). */
static char *
read_bytes(long len)
{
	char	   *buf;

	if (len < 0)
		return NULL;
	buf = malloc((size_t) len + 1);
	if (buf == NULL)
		die("out of memory%s", "");
	if (len > 0 && fread(buf, 1, (size_t) len, stdin) != (size_t) len)
		die("input ends inside a record%s", "");
	buf[len] = '\0';
	return buf;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	Delivery   *d = msg->_private;

	(void) rk;
	(void) opaque;
	d->done = 1;
	d->err = msg->err;
	d->partition = msg->partition;
	d->offset = msg->offset;
}

int
main(int argc, char **argv)
{
	const char *brokers = NULL;
	const char *topic = NULL;
	int32_t		partition = 0;
	char		errstr[512];
	char		line[256];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	long		index = 0;
	int			failed = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
			brokers = argv[++i];
		else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
			topic = argv[++i];
		else if (strcmp(argv[i], "--partition") == 0 && i + 1 < argc)
			partition = (int32_t) atoi(argv[++i]);
		else
			die("unknown argument %s (usage: produce_raw --brokers B --topic T [--partition P])", argv[i]);
	}
	if (brokers == NULL || topic == NULL)
		die("--brokers and --topic are required%s", "");

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "message.max.bytes", "16777216", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		die("%s", errstr);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		die("%s", errstr);

	while (fgets(line, sizeof(line), stdin) != NULL)
	{
		long		nheaders,
					payload_len,
					key_len = -1;
		rd_kafka_headers_t *hdrs;
		char	   *key;
		char	   *payload;
		Delivery	d = {0, RD_KAFKA_RESP_ERR_NO_ERROR, -1, -1};
		rd_kafka_resp_err_t err;

		if (sscanf(line, "message %ld %ld %ld", &nheaders, &payload_len, &key_len) < 2 || nheaders < 0)
			die("bad record line: %s", line);
		hdrs = rd_kafka_headers_new((size_t) nheaders);
		for (long h = 0; h < nheaders; h++)
		{
			long		name_len,
						value_len;
			char	   *name,
					   *value;

			if (fgets(line, sizeof(line), stdin) == NULL ||
				sscanf(line, "header %ld %ld", &name_len, &value_len) != 2 || name_len < 0)
				die("bad header line: %s", line);
			name = read_bytes(name_len);
			value = read_bytes(value_len);
			rd_kafka_header_add(hdrs, name, (ssize_t) name_len, value,
								value ? (ssize_t) value_len : 0);
			free(name);
			free(value);
		}
		key = read_bytes(key_len);
		payload = read_bytes(payload_len);
		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_KEY(key, key ? (size_t) key_len : 0),
								RD_KAFKA_V_VALUE(payload, payload ? (size_t) payload_len : 0),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_HEADERS(hdrs),
								RD_KAFKA_V_OPAQUE(&d),
								RD_KAFKA_V_END);
		free(key);
		free(payload);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			/* the headers stay ours when producev fails */
			rd_kafka_headers_destroy(hdrs);
			fprintf(stderr, "produce_raw: message %ld: %s\n", index, rd_kafka_err2str(err));
			failed = 1;
			break;
		}
		/* one message at a time: its offset is known before the next goes */
		while (!d.done)
			rd_kafka_poll(rk, 100);
		if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			fprintf(stderr, "produce_raw: message %ld: %s\n", index, rd_kafka_err2str(d.err));
			failed = 1;
			break;
		}
		printf("%ld %d %lld\n", index, (int) d.partition, (long long) d.offset);
		fflush(stdout);
		index++;
	}
	rd_kafka_flush(rk, 10000);
	rd_kafka_destroy(rk);
	return failed;
}
