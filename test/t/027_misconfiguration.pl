# Kafka worker, misconfigured: the log says which setting to fix, the
# worker backs off instead of failing every restart interval, and
# pg_stat_activity shows brokers that do not answer.
#
# (1) driftlock.database names no database: each failed start logs the FATAL
#     with a HINT naming driftlock.database and the delay to the next try;
#     the delays double (1, 2, 4 ... s with kafka_restart_interval = 1),
#     so 20 s see a handful of attempts, not 20.  Once the database exists
#     the worker starts; a successful start resets the back-off.
# (2) driftlock.kafka_brokers points at a closed port: pg_stat_activity says
#     "brokers unreachable since ...", the log says so once, with a HINT;
#     a reload with the running mock's address and the worker consumes.
#     Then the mock goes down and up with no traffic at all: the activity
#     comes back by itself.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events log_since count_log_matches);
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic = 'misconfig';
my $group = 'misconfig-group';
my $kafka = start_mock_kafka(topics => { $topic => 1 });

# ---- (1) driftlock.database = 'nosuchdb'
my $node = worker_node('misconfig', $kafka, no_start => 1, conf => {
	'driftlock.database'               => 'nosuchdb',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->start;
Time::HiRes::sleep(20);

my $fatal = qr/FATAL:  database "nosuchdb" does not exist/;
my $log = log_since($node, 0);
my $attempts = () = $log =~ /$fatal/g;
note("$attempts failed starts in 20 s");
cmp_ok($attempts, '>=', 2, 'the worker is started again after a failed start');
cmp_ok($attempts, '<', 10,
	'failed starts back off: fewer than 10 in 20 s with kafka_restart_interval = 1');
like($log,
	qr/$fatal\n.*DETAIL:  driftlock kafka worker 0 connects to driftlock.database "nosuchdb"; it tries again in \d+ s.*\n.*HINT:  Set driftlock.database to the database where CREATE EXTENSION driftlock was run and restart the server/,
	'the FATAL says which setting names the database, that a restart applies it, and when the next try is');

# the announced delays double from the restart interval
my @delays = $log =~ /it tries again in (\d+) s/g;
is(join(',', @delays), join(',', map { 2**$_ } 0 .. $#delays),
	'delays between failed starts: 1, 2, 4 ... s');

# create the database: the worker starts at its next try (16 s away at most
# after 20 s, well within a minute)
$node->safe_psql('postgres', 'CREATE DATABASE nosuchdb');
$node->safe_psql('nosuchdb', 'CREATE EXTENSION driftlock');
ok(poll_until($node,
		q{SELECT query FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker' AND datname = 'nosuchdb'},
		"waiting for messages on topic \"$topic\"", 90),
	'once the database exists the worker starts in it and waits for messages');

# a successful start resets the back-off: the next failure waits 1 s again
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP DATABASE nosuchdb WITH (FORCE)');
ok($node->wait_for_log(qr/it tries again in \d+ s/, $offset), 'the worker fails again without its database');
my ($first_delay) = log_since($node, $offset) =~ /it tries again in (\d+) s/;
is($first_delay, '1', 'after a successful start, the back-off starts again from the restart interval');

# ---- (2) fix the database; brokers at a closed port
my $sock = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
  or die "no free port: $!";
my $closed = '127.0.0.1:' . $sock->sockport;
close $sock;
$node->safe_psql('postgres', qq{ALTER SYSTEM SET driftlock.database = 'postgres';
	ALTER SYSTEM SET driftlock.kafka_brokers = '$closed'});
$node->safe_psql('postgres', q{CREATE EXTENSION driftlock; INSERT INTO driftlock.streams (name) VALUES ('m1')});
$offset = -s $node->logfile;
$node->restart;

my $activity = q{SELECT query FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'};
ok(poll_until($node, "SELECT ($activity) LIKE 'brokers unreachable since %'", 't', 60),
	'pg_stat_activity: brokers unreachable since ...');
like($node->safe_psql('postgres', $activity),
	qr/^brokers unreachable since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'with the time it began');
# librdkafka retries the connection every second or so meanwhile
Time::HiRes::sleep(5);
my $unreachable = qr/driftlock kafka worker 0 cannot reach any Kafka broker of driftlock.kafka_brokers "\Q$closed\E"/;
is(count_log_matches($node, $unreachable, $offset), 1, 'the log says so once');
like(log_since($node, $offset),
	qr/$unreachable\n.*HINT:  Check that driftlock.kafka_brokers lists the brokers/,
	'with a hint naming driftlock.kafka_brokers');
unlike(log_since($node, $offset), $fatal, 'no failed start with the fixed setting');

# the right brokers, with a reload: the worker consumes
my $bootstrap = $kafka->bootstrap;
$node->safe_psql('postgres', qq{ALTER SYSTEM SET driftlock.kafka_brokers = '$bootstrap'; SELECT pg_reload_conf()});
my @rows;
produce_events($kafka, $topic, 0, \@rows, stream => 'm1',
	payloads => [ event_payloads(count => 50, seed => 'misconfig') ], headers => ['X-Stream-Id=m1']);
ok(wait_offsets($node, $group, \@rows, 90), 'after a reload with the right brokers the worker consumes');
ok(poll_until($node, $activity, "waiting for messages on topic \"$topic\"", 30),
	'pg_stat_activity: waiting for messages again');
is($node->safe_psql('postgres', 'SELECT sum(events) FROM driftlock.stream_state'), '50',
	'every message processed');

# an outage with no traffic: nothing but the brokers says they are back
$offset = -s $node->logfile;
$kafka->command('down');
ok(poll_until($node, "SELECT ($activity) LIKE 'brokers unreachable since %'", 't', 60),
	'brokers down: pg_stat_activity says so');
$kafka->command('up');
ok(poll_until($node, $activity, "waiting for messages on topic \"$topic\"", 60),
	'brokers up, no message: pg_stat_activity says the worker waits for messages again');
like(log_since($node, $offset), qr/driftlock kafka worker 0 reaches the Kafka brokers again, after \d+ s/,
	'the log says the brokers are back');

$node->stop;
$kafka->stop;
done_testing();
