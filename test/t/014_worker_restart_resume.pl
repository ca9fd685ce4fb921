# Kafka worker: a restart resumes from driftlock.kafka_offsets.  Consume N,
# stop, produce M, start: N + M processed once.  Then switch to a fresh
# group id whose only record is a copy of the offsets in kafka_offsets (no
# offsets committed to Kafka): it must resume there, not at the beginning.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets
  event_payloads produce_events load_messages check_anomalies
  check_exactly_once);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();

my $topic  = 'resume';
my $config = '{"warmup": 30, "alpha": 0.05}';

my $kafka = start_mock_kafka(topics => { $topic => 2 });
my $node = worker_node('restart_resume', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => 'resume-1',
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) VALUES ('r0', '$config'), ('r1', '$config')");

my %payloads = map { ("r$_" => [ event_payloads(count => 900, seed => "r$_") ]) } 0 .. 1;
my @rows;
sub produce_range
{
	my ($from, $to) = @_;
	for my $p (0 .. 1)
	{
		produce_events($kafka, $topic, $p, \@rows, stream => "r$p",
			payloads => [ @{ $payloads{"r$p"} }[ $from .. $to ] ],
			headers => ["X-Stream-Id=r$p"]);
	}
	return;
}

# N = 300 per partition
produce_range(0, 299);
ok(wait_offsets($node, 'resume-1', \@rows), 'first 300 messages per partition consumed');
$node->stop;

# M = 300 more while the server is down
produce_range(300, 599);
$node->start;
ok(wait_offsets($node, 'resume-1', \@rows), 'the 300 produced while down are consumed after start');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', 'resume-1', 'after restart');
check_anomalies($node, 'produced', $config, 'after restart');

# A fresh group id known only to driftlock.kafka_offsets
$node->safe_psql('postgres', q{
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
SELECT 'resume-2', topic, partition, next_offset FROM driftlock.kafka_offsets
WHERE group_id = 'resume-1'});
$node->stop;
$node->append_conf('postgresql.conf', "driftlock.kafka_group_id = 'resume-2'\n");
produce_range(600, 799);
$node->start;
ok(wait_offsets($node, 'resume-2', \@rows), 'the new group consumes the last 200 per partition');
$node->safe_psql('postgres', 'TRUNCATE produced');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', 'resume-2', 'offsets only in kafka_offsets');
check_anomalies($node, 'produced', $config, 'offsets only in kafka_offsets');
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s/%s', topic, partition), ' ' ORDER BY partition)
FROM driftlock.kafka_offsets WHERE group_id = 'resume-1' AND next_offset = 600}),
	'resume/0 resume/1', 'the old group\'s offsets are left alone');

# A group known only to Kafka: kcat consumes everything in group resume-3
# and commits its offsets on exit
my ($out, $err) = ('', '');
ok(IPC::Run::run(
		[ 'kcat', '-C', '-b', $kafka->bootstrap, '-G', 'resume-3', '-e', '-q', '-f', '%p:%o\n',
			'-X', 'auto.offset.reset=earliest', '-X', 'session.timeout.ms=6000',
			'-X', 'heartbeat.interval.ms=500', $topic ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60)),
	'kcat commits offsets for group resume-3') or diag($err);
is(scalar(() = $out =~ /\n/g), 1600, 'kcat read the 1600 messages');
$node->stop;
$node->append_conf('postgresql.conf', "driftlock.kafka_group_id = 'resume-3'\n");
produce_range(800, 899);
$node->start;
ok(wait_offsets($node, 'resume-3', \@rows), 'the Kafka-only group consumes the last 100 per partition');
$node->safe_psql('postgres', 'TRUNCATE produced');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', 'resume-3', 'offsets only in Kafka');
check_anomalies($node, 'produced', $config, 'offsets only in Kafka');

$node->stop;
$kafka->stop;
done_testing();
