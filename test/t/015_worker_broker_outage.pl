# Kafka worker: the brokers go down for 10 s and come back.  The outage is
# logged without flooding the server log, and consumption resumes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets
  event_payloads produce_events check_exactly_once load_messages log_since
  worker_pids);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic = 'outage';
my $group = 'outage-group';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('broker_outage', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres', q{INSERT INTO driftlock.streams (name) VALUES ('o1')});

my @payloads = event_payloads(count => 300, seed => 'outage');
my @rows;
produce_events($kafka, $topic, 0, \@rows, stream => 'o1',
	payloads => [ @payloads[ 0 .. 99 ] ], headers => ['X-Stream-Id=o1']);
ok(wait_offsets($node, $group, \@rows), 'consuming before the outage');

my ($pid_before) = worker_pids($node);

# No SQL from here until the brokers are back: every log line is the server's
my $log_offset = -s $node->logfile;
$kafka->command('down');
Time::HiRes::sleep(10);
my $outage_log = log_since($node, $log_offset);
$kafka->command('up');

my @lines = grep { /\S/ } split /\n/, $outage_log;
note(scalar(@lines) . " server log lines during the outage; first ones:\n"
	  . join("\n", @lines[ 0 .. ($#lines < 9 ? $#lines : 9) ]));
cmp_ok(scalar(@lines), '>=', 1, 'the outage is logged');
cmp_ok(scalar(@lines), '<', 20, 'fewer than 20 log lines during a 10 s outage');

# (kcat gives up when all brokers are down: produce once they are back)
produce_events($kafka, $topic, 0, \@rows, stream => 'o1',
	payloads => [ @payloads[ 100 .. 299 ] ], headers => ['X-Stream-Id=o1']);
ok(wait_offsets($node, $group, \@rows, 90), 'consumption resumes after the outage');
is(join(',', worker_pids($node)), $pid_before, 'the same worker process rode out the outage');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'after the outage');

$node->stop;
$kafka->stop;
done_testing();
