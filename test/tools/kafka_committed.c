/*
 * kafka_committed.c
 *		Print a consumer group's committed Kafka offsets, what lag tools
 *		(kafka-consumer-groups --describe) show, for the tests of failover
 *		and of several instances in one group (test/t/024, 025).
 *
 * Usage:
 *   kafka_committed --brokers B --group G --topic T --partitions N
 *
 * Prints one line per partition 0 .. N-1:
 *
 *   <partition> <offset> <metadata>
 *
 * <offset> is -1001 when the group has committed nothing for the
 * partition; <metadata> is the rest of the line: the commit's metadata
 * string with bytes outside printable ASCII (and backslashes) as \xNN, or
 * "-" when there is none.
 * It asks the group coordinator (OffsetFetch) without joining the group,
 * so the group's members are not disturbed.  Exits 0 on success, 1 when
 * the offsets cannot be read within 10 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "kafka_committed: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static void
print_metadata(const void *metadata, size_t len)
{
	const unsigned char *m = metadata;

	if (m == NULL || len == 0)
	{
		fputs("-", stdout);
		return;
	}
	for (size_t i = 0; i < len; i++)
	{
		if (m[i] >= ' ' && m[i] < 0x7f && m[i] != '\\')
			putchar(m[i]);
		else
			printf("\\x%02x", m[i]);
	}
}

int
main(int argc, char **argv)
{
	const char *brokers = NULL;
	const char *group = NULL;
	const char *topic = NULL;
	int			partitions = -1;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
			brokers = argv[++i];
		else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
			group = argv[++i];
		else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
			topic = argv[++i];
		else if (strcmp(argv[i], "--partitions") == 0 && i + 1 < argc)
			partitions = atoi(argv[++i]);
		else
			die("unknown argument %s (usage: kafka_committed --brokers B --group G --topic T --partitions N)", argv[i]);
	}
	if (brokers == NULL || group == NULL || topic == NULL || partitions < 1)
		die("--brokers, --group, --topic and --partitions (at least 1) are required%s", "");

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		die("%s", errstr);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		die("%s", errstr);

	parts = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p);
	/* never subscribed: an OffsetFetch, not a join */
	err = rd_kafka_committed(rk, parts, 10000);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		die("cannot read the committed offsets: %s", rd_kafka_err2str(err));
	for (int i = 0; i < parts->cnt; i++)
	{
		const rd_kafka_topic_partition_t *p = &parts->elems[i];

		if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR)
			die("cannot read a committed offset: %s", rd_kafka_err2str(p->err));
		printf("%d %lld ", (int) p->partition, (long long) p->offset);
		print_metadata(p->metadata, p->metadata_size);
		putchar('\n');
	}
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return 0;
}
