# Kafka workers sharing a topic: two workers of one server (kafka_workers =
# 2) split 4 partitions and process every message once; then a second
# server with the same group id takes part of the partitions.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies
  check_exactly_once kcat_produce_opts);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic  = 'split';
my $group  = 'split-group';
my $config = '{"warmup": 30, "alpha": 0.05}';
my %conf = (
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id');
my $streams = join(', ', map { "('w$_', '$config')" } 0 .. 3);

my $kafka = start_mock_kafka(topics => { $topic => 4 });
my %payloads = map { ("w$_" => [ event_payloads(count => 800, seed => "w$_") ]) } 0 .. 3;
my @rows;
sub produce_range
{
	my ($from, $to) = @_;
	for my $p (0 .. 3)
	{
		produce_events($kafka, $topic, $p, \@rows, stream => "w$p",
			payloads => [ @{ $payloads{"w$p"} }[ $from .. $to ] ],
			headers => ["X-Stream-Id=w$p"]);
	}
	return;
}

# Messages waiting before the server starts, more while it consumes
produce_range(0, 399);
my $node = worker_node('two_workers', $kafka, conf => { %conf, 'driftlock.kafka_workers' => '2' });
$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES $streams");
produce_range(400, 799);

ok(wait_offsets($node, $group, \@rows, 90), 'all partitions consumed to the end');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'}),
	'2', 'both workers in pg_stat_activity');
is($node->safe_psql('postgres', q{
SELECT string_agg(application_name, ',' ORDER BY application_name)
FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'}),
	'driftlock kafka worker 0,driftlock kafka worker 1', 'their application_name tells them apart');
for my $w (0, 1)
{
	like(slurp_file($node->logfile), qr/driftlock kafka worker $w consuming topic "$topic"/,
		"worker $w consumes");
}
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'two workers');
check_anomalies($node, 'produced', $config, 'two workers');

# A second server in the same group: partitions are split between the two
my $node2 = worker_node('two_workers_b', $kafka, conf => \%conf);
$node2->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES $streams");
my $offsets = qq{SELECT coalesce(string_agg(format('%s:%s', partition, next_offset), ' ' ORDER BY partition), '')
FROM driftlock.kafka_offsets WHERE group_id = '$group'};

# Produce a message per partition every 0.2 s until the second server has
# processed some of the new ones
my $round = 0;
my $deadline = Time::HiRes::time() + 60;
my $b_active = 0;
while (Time::HiRes::time() < $deadline)
{
	$round++;
	kcat_produce_opts($kafka->bootstrap, $topic, ["{\"round\": $round}"],
		partition => $_, headers => [ "X-Stream-Id=w$_" ]) for 0 .. 3;
	$b_active = $node2->safe_psql('postgres', qq{
SELECT count(*) > 0 FROM driftlock.kafka_offsets WHERE group_id = '$group' AND next_offset > 800})
	  eq 't';
	last if $b_active && $round >= 5;
	Time::HiRes::sleep(0.2);
}
ok($b_active, "the second server consumes new messages (after $round rounds)");

# A last round once the group is stable: each message goes to one server
Time::HiRes::sleep(2);
$round++;
kcat_produce_opts($kafka->bootstrap, $topic, ["{\"round\": $round}"],
	partition => $_, headers => [ "X-Stream-Id=w$_" ]) for 0 .. 3;
my $end = 800 + $round;
my $both_done = qq{SELECT count(*) FROM driftlock.kafka_offsets WHERE group_id = '$group' AND next_offset = $end};
my $deadline2 = Time::HiRes::time() + 60;
my ($a_end, $b_end) = (0, 0);
while (Time::HiRes::time() < $deadline2)
{
	($a_end, $b_end) = ($node->safe_psql('postgres', $both_done), $node2->safe_psql('postgres', $both_done));
	last if $a_end + $b_end >= 4;
	Time::HiRes::sleep(0.2);
}
is($a_end + $b_end, 4, 'every partition of the last round consumed by exactly one server')
  or diag('first: ' . $node->safe_psql('postgres', $offsets) . "\nsecond: " . $node2->safe_psql('postgres', $offsets));
cmp_ok($a_end, '>=', 1, 'the first server owns partitions');
cmp_ok($b_end, '>=', 1, 'the second server owns partitions');

$node2->stop;
$node->stop;
$kafka->stop;
done_testing();
