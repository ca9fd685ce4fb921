/*
 * mock_kafka.c
 *		A Kafka cluster for tests and demos, on librdkafka's mock cluster.
 *
 * Usage:
 *   mock_kafka [--brokers N] [--topic T [--partitions P]]... [--port-file F]
 *
 * Starts N brokers (default 1) on 127.0.0.1, creates each --topic with the
 * --partitions that follows it (default 1), prints the bootstrap servers
 * string on a line of its own on stdout (and writes it to F, atomically,
 * when --port-file is given), then runs until SIGTERM, SIGINT or "quit".
 *
 * While running it reads commands on stdin, one per line:
 *   down   take every broker down (connections refused)
 *   up     bring every broker back
 *   quit   exit
 * SIGUSR1 and SIGUSR2 do the same as down and up.  Every command is
 * acknowledged with a line "brokers down", "brokers up" or "bye" on stdout.
 *
 * Other topics are created on first use with 4 partitions (mock default).
 * The mock cluster is librdkafka's test facility: for tests and demos only.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 64

typedef struct TopicSpec
{
	const char *name;
	int			partitions;
} TopicSpec;

static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t down_requested = 0;
static volatile sig_atomic_t up_requested = 0;

static void
handle_signal(int signo)
{
	switch (signo)
	{
		case SIGUSR1:
			down_requested = 1;
			break;
		case SIGUSR2:
			up_requested = 1;
			break;
		default:
			stop_requested = 1;
			break;
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: mock_kafka [--brokers N] [--topic T [--partitions P]]... [--port-file F]\n"
			"commands on stdin: down | up | quit;  SIGUSR1 = down, SIGUSR2 = up\n");
}

/* Parse a positive int option value, or exit with a message */
static int
parse_count(const char *opt, const char *value, int max)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > max)
	{
		fprintf(stderr, "mock_kafka: %s must be an integer between 1 and %d\n", opt, max);
		exit(2);
	}
	return (int) n;
}

/* Write the bootstrap string to path via a temporary file and rename */
static int
write_port_file(const char *path, const char *bootstraps)
{
	char		tmp[4096];
	FILE	   *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (fprintf(f, "%s\n", bootstraps) < 0 || fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* Take every broker down (down = 1) or up (down = 0) */
static void
set_brokers(rd_kafka_mock_cluster_t *mcluster, int broker_cnt, int down)
{
	int			id;

	for (id = 1; id <= broker_cnt; id++)
	{
		rd_kafka_resp_err_t err = down
			? rd_kafka_mock_broker_set_down(mcluster, id)
			: rd_kafka_mock_broker_set_up(mcluster, id);

		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			fprintf(stderr, "mock_kafka: broker %d: %s\n", id, rd_kafka_err2str(err));
	}
	printf("brokers %s\n", down ? "down" : "up");
	fflush(stdout);
}

/* Handle one command line from stdin; returns 1 on quit */
static int
run_command(char *line, rd_kafka_mock_cluster_t *mcluster, int broker_cnt)
{
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, "down") == 0)
		set_brokers(mcluster, broker_cnt, 1);
	else if (strcmp(line, "up") == 0)
		set_brokers(mcluster, broker_cnt, 0);
	else if (strcmp(line, "quit") == 0)
		return 1;
	else if (line[0] != '\0')
		fprintf(stderr, "mock_kafka: unknown command \"%s\" (down, up, quit)\n", line);
	return 0;
}

int
main(int argc, char **argv)
{
	TopicSpec	topics[MAX_TOPICS];
	int			ntopics = 0;
	int			broker_cnt = 1;
	const char *port_file = NULL;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mcluster;
	const char *bootstraps;
	struct sigaction sa;
	int			stdin_open = 1;
	char		line[1024];
	size_t		linelen = 0;
	int			i;

	for (i = 1; i < argc; i++)
	{
		const char *opt = argv[i];

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc)
		{
			usage(stderr);
			return 2;
		}
		if (strcmp(opt, "--brokers") == 0)
			broker_cnt = parse_count(opt, argv[++i], 64);
		else if (strcmp(opt, "--topic") == 0)
		{
			if (ntopics == MAX_TOPICS)
			{
				fprintf(stderr, "mock_kafka: at most %d topics\n", MAX_TOPICS);
				return 2;
			}
			topics[ntopics].name = argv[++i];
			topics[ntopics].partitions = 1;
			ntopics++;
		}
		else if (strcmp(opt, "--partitions") == 0)
		{
			if (ntopics == 0)
			{
				fprintf(stderr, "mock_kafka: --partitions must follow a --topic\n");
				return 2;
			}
			topics[ntopics - 1].partitions = parse_count(opt, argv[++i], 10000);
		}
		else if (strcmp(opt, "--port-file") == 0)
			port_file = argv[++i];
		else
		{
			usage(stderr);
			return 2;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The cluster needs a client handle for its bookkeeping; it stays idle */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "mock_kafka: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "mock_kafka: cannot create client handle: %s\n", errstr);
		return 1;
	}

	mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
	if (mcluster == NULL)
	{
		fprintf(stderr, "mock_kafka: cannot create mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}

	for (i = 0; i < ntopics; i++)
	{
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, topics[i].name,
															 topics[i].partitions, 1);

		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			fprintf(stderr, "mock_kafka: cannot create topic \"%s\": %s\n",
					topics[i].name, rd_kafka_err2str(err));
			rd_kafka_mock_cluster_destroy(mcluster);
			rd_kafka_destroy(rk);
			return 1;
		}
	}

	bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
	printf("%s\n", bootstraps);
	fflush(stdout);
	if (port_file != NULL && write_port_file(port_file, bootstraps) != 0)
	{
		fprintf(stderr, "mock_kafka: cannot write \"%s\": %s\n", port_file, strerror(errno));
		rd_kafka_mock_cluster_destroy(mcluster);
		rd_kafka_destroy(rk);
		return 1;
	}

	while (!stop_requested)
	{
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		int			rc;

		if (down_requested)
		{
			down_requested = 0;
			set_brokers(mcluster, broker_cnt, 1);
		}
		if (up_requested)
		{
			up_requested = 0;
			set_brokers(mcluster, broker_cnt, 0);
		}

		if (!stdin_open)
		{
			/* signals interrupt the sleep; otherwise wake every 200 ms */
			usleep(200 * 1000);
			continue;
		}

		rc = poll(&pfd, 1, 200);
		if (rc <= 0)
			continue;			/* timeout or EINTR */

		{
			ssize_t		n = read(STDIN_FILENO, line + linelen, sizeof(line) - 1 - linelen);
			char	   *nl;

			if (n <= 0)
			{
				/* EOF: keep running, driven by signals only */
				stdin_open = 0;
				continue;
			}
			linelen += (size_t) n;
			line[linelen] = '\0';
			while ((nl = strchr(line, '\n')) != NULL)
			{
				*nl = '\0';
				if (run_command(line, mcluster, broker_cnt))
					stop_requested = 1;
				memmove(line, nl + 1, linelen - (size_t) (nl + 1 - line) + 1);
				linelen = strlen(line);
			}
			if (linelen == sizeof(line) - 1)
			{
				fprintf(stderr, "mock_kafka: command line too long, ignored\n");
				linelen = 0;
			}
		}
	}

	printf("bye\n");
	fflush(stdout);
	rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(rk);
	if (port_file != NULL)
		unlink(port_file);
	return 0;
}
