# Kafka worker: exactly once across kill -9.  ~5100 messages over three
# streams, each on its own partition of a 3-partition topic; the worker is
# killed twice and the postmaster once while consuming.  Afterwards every
# offset is at the end, each stream's detector saw each message once, and
# the anomalies are exactly those of a clean run (driftlock_detect in SQL).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets
  event_payloads produce_events load_messages check_anomalies check_incidents
  check_exactly_once worker_pids wait_committed wait_worker_replaced
  restart_after_postmaster_kill);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic   = 'crash';
my $group   = 'crash-group';
my $config = '{"warmup": 30, "alpha": 0.05}';
my $per_chunk = 567;                # per stream and chunk; 3 chunks, 3 streams

my $kafka = start_mock_kafka(topics => { $topic => 3 });
my $node = worker_node('crash', $kafka, conf => {
	'restart_after_crash'              => 'on',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	# small transactions: many commit points to be killed between
	'driftlock.kafka_max_in_flight'    => '5' });
$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) SELECT 'c' || i, '$config' FROM generate_series(0, 2) i");

my @rows;
my %payloads = map { ("c$_" => [ event_payloads(count => 3 * $per_chunk, seed => "c$_") ]) } 0 .. 2;

sub produce_chunk
{
	my ($chunk) = @_;
	for my $p (0 .. 2)
	{
		my @slice = @{ $payloads{"c$p"} }[ $chunk * $per_chunk .. ($chunk + 1) * $per_chunk - 1 ];
		produce_events($kafka, $topic, $p, \@rows, stream => "c$p",
			payloads => \@slice, headers => ["X-Stream-Id=c$p"]);
	}
	return;
}

my $processed = qq{SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$group'};

# Kill (the worker, or the postmaster when $what says so) as soon as at
# least $from messages are committed (wait_committed lands within a few
# messages).  Returns the worker's pid.
my $pending = 0;
sub kill_when
{
	my ($from, $total, $what) = @_;
	my ($pid) = worker_pids($node);
	ok(defined $pid, "$what: worker running");
	my $seen = wait_committed($node, $group, $from, 90);
	if ($what =~ /postmaster/)
	{
		$node->kill9;
	}
	else
	{
		kill('KILL', $pid);
	}
	ok($seen >= $from, "$what: killed after $from messages were committed");
	note("$what: killed at $seen of $total messages committed");
	$pending++ if $seen < $total;
	return $pid;
}

# First chunk; kill the worker a third of the way in
produce_chunk(0);
my $old = kill_when(3 * 150, 3 * $per_chunk, 'first kill');
ok(wait_worker_replaced($node, $old, 60), 'the worker comes back after the crash restart');

# Second chunk; kill again
produce_chunk(1);
$old = kill_when(3 * $per_chunk + 3 * 150, 6 * $per_chunk, 'second kill');
ok(wait_worker_replaced($node, $old, 60), 'the worker comes back after the second crash restart');

# Third chunk; kill -9 the postmaster, wait for its children to go, restart
produce_chunk(2);
$old = kill_when(6 * $per_chunk + 3 * 150, 9 * $per_chunk, 'postmaster kill');
restart_after_postmaster_kill($node, $old, 'postmaster kill');
note('after the restart: ' . $node->safe_psql('postgres', $processed) . ' messages committed');
cmp_ok($pending, '>', 0, 'at least one kill happened with messages not yet committed');

ok(wait_offsets($node, $group, \@rows, 120), 'the offsets reach the end of every partition');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'after kill -9');
check_anomalies($node, 'produced', $config, 'after kill -9');
check_incidents($node, 'produced', $config, 'after kill -9');

$node->stop;
$kafka->stop;
done_testing();
