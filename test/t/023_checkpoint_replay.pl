# Kafka worker with many streams: checkpointed detector states and replay.
# 2,000 streams, 16 events each, interleaved over the 4 partitions of a topic
# (a stream's events all in one partition, its JSON field naming it).  The
# worker checkpoints only every 2,500 messages and is killed with SIGKILL
# four times and the postmaster once, each at a random point
# (DRIFTLOCK_FAULT_SEED repeats a run).  Every restart reads the partitions
# again from their checkpoint and replays up to the committed offsets.
# Afterwards: every offset at the end, each stream's saved detector saw each
# of its events exactly once, and the anomalies are exactly those of a clean
# run of driftlock_detect() in SQL.  Then the detector cache is cut to 8 MB
# (a few dozen warm detectors) for two more events per stream: detectors
# are dropped and loaded again all the time, and the results still match.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads kcat_produce_opts load_messages check_anomalies check_exactly_once
  worker_pids wait_committed wait_worker_replaced restart_after_postmaster_kill
  count_log_matches);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{DRIFTLOCK_FAULT_SEED} // int(rand(1_000_000));
srand($seed);
note("fault seed $seed (set DRIFTLOCK_FAULT_SEED=$seed to repeat this run)");

my $topic      = 'many';
my $group      = 'many-group';
my $config     = '{"warmup": 4, "alpha": 0.05}';
my $streams    = 2000;
my $per_stream = 16;
my $more       = 2;                    # events per stream after the cut
my $partitions = 4;
my $total      = $streams * $per_stream;

my $kafka = start_mock_kafka(topics => { $topic => $partitions });
my $node = worker_node('many', $kafka, conf => {
	'restart_after_crash'              => 'on',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_field'  => 'metadata.stream_id',
	'driftlock.kafka_max_in_flight'    => '50',
	'driftlock.checkpoint_interval'    => '1h',
	'driftlock.checkpoint_messages'    => '2500',
	'driftlock.detector_cache_memory'  => '1GB' });
$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) SELECT 's' || i, '$config' FROM generate_series(0, $streams - 1) i");

# Stream i lives on partition i % 4; a partition holds event 0 of each of
# its streams, then event 1 of each, and so on: consecutive messages of a
# partition belong to different streams.
my @rows;
my %events = map {
	($_ => [ event_payloads(count => $per_stream + $more, seed => "s$_", stream_id => "s$_",
		every => 7, quiet => 8) ])
} 0 .. $streams - 1;
my @next_off = (0) x $partitions;

# events $from .. $to - 1 of every stream
sub produce_round
{
	my ($from, $to) = @_;
	for my $p (0 .. $partitions - 1)
	{
		my @mine = grep { $_ % $partitions == $p } 0 .. $streams - 1;
		my @payloads;
		for my $g ($from .. $to - 1)
		{
			for my $s (@mine)
			{
				push @payloads, $events{$s}[$g];
				push @rows, [ $topic, $p, $next_off[$p]++, "s$s", $events{$s}[$g] ];
			}
		}
		kcat_produce_opts($kafka->bootstrap, $topic, \@payloads, partition => $p);
	}
	return;
}
produce_round(0, $per_stream);
is(scalar(@rows), $total, "$total messages produced");

# Kill the worker (or the postmaster) once at least $from messages are
# committed; kills land at random points between checkpoints.
my $kills_pending = 0;
sub kill_at
{
	my ($from, $what) = @_;
	my ($pid) = worker_pids($node);
	ok(defined $pid, "$what: worker running");
	my $seen = wait_committed($node, $group, $from, 120);
	if ($what eq 'postmaster')
	{
		$node->kill9;
	}
	else
	{
		kill('KILL', $pid);
	}
	ok($seen >= $from, "$what: killed after $from messages were committed");
	note("$what: killed with $seen of $total messages committed");
	$kills_pending++ if $seen < $total;
	if ($what eq 'postmaster')
	{
		restart_after_postmaster_kill($node, $pid, $what);
	}
	else
	{
		ok(wait_worker_replaced($node, $pid, 60), "$what: the worker comes back");
	}
	return;
}

my @points = sort { $a <=> $b } map { int($total * (0.05 + rand(0.6))) } 1 .. 5;
my $postmaster = int(rand(5));
for my $i (0 .. $#points)
{
	kill_at($points[$i], $i == $postmaster ? 'postmaster' : "worker kill " . ($i + 1));
}
cmp_ok($kills_pending, '>', 0, 'kills happened with messages not yet committed');

ok(wait_offsets($node, $group, \@rows, 300), 'the offsets reach the end of every partition');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'after the kills');
check_anomalies($node, 'produced', $config, 'after the kills');

# the kills fell between checkpoints, so the restarts replayed
cmp_ok(count_log_matches($node, qr/driftlock will replay \Q$topic\E\[\d+\] from offset \d+ to \d+/), '>', 0,
	'restarts replayed messages from the last checkpoint');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.kafka_offsets WHERE checkpoint_offset IS DISTINCT FROM next_offset}),
	'0', 'once caught up, the last batch checkpoints: checkpoint offsets at the end');

# A cache far too small for the active streams: detectors are dropped and
# loaded again (checkpoints make room), and the results stay the same.
$node->append_conf('postgresql.conf', "driftlock.detector_cache_memory = '8MB'\n");
$node->reload;
produce_round($per_stream, $per_stream + $more);
ok(wait_offsets($node, $group, \@rows, 300), 'with an 8 MB cache: the offsets reach the end');
$node->safe_psql('postgres', 'DROP TABLE produced');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'with an 8 MB cache');
check_anomalies($node, 'produced', $config, 'with an 8 MB cache');
my %m = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
SELECT metric, value FROM driftlock.metrics
WHERE metric IN ('driftlock_detector_cache_evictions_total', 'driftlock_detector_cache_bytes',
                 'driftlock_checkpoints_total')});
note(join(', ', map { "$_ = $m{$_}" } sort keys %m));
cmp_ok($m{driftlock_detector_cache_evictions_total} // 0, '>', 0, 'detectors were dropped from the cache');
cmp_ok($m{driftlock_checkpoints_total} // 0, '>', 0, 'checkpoints are counted');
cmp_ok($m{driftlock_detector_cache_bytes} // 1e12, '<=', 8 * 1024 * 1024 * 1.5,
	'the cache is within its budget (plus a batch of loads)');

# A clean stop checkpoints, and the next start replays nothing
my $log_offset = -s $node->logfile;
$node->restart;
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'", '1', 60),
	'the worker is back after a clean restart');
sleep 2;
is(count_log_matches($node, qr/driftlock will replay/, $log_offset), 0,
	'after a clean stop nothing is replayed');

$node->stop;
$kafka->stop;
done_testing();
