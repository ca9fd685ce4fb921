# Kafka worker under faults: 50,400 messages over four streams (one per
# partition), produced in twelve chunks; during the run the worker is killed
# with SIGKILL eight times and the postmaster three times, each at a random
# point (DRIFTLOCK_FAULT_SEED makes a run repeatable), the brokers are down
# for 30 s, PostgreSQL is restarted cleanly, anomaly inserts fail for a while
# (a trigger that raises: those messages become insert_failed dead letters)
# and then every write of offsets fails for a while (nothing may commit).
#
# Afterwards every message is accounted for exactly once: the offsets are at
# the end of every partition; each message was either counted by its
# stream's detector or set aside as a dead letter, never both, never twice;
# no anomaly row is duplicated; and the anomalies are exactly those a clean
# run of driftlock_detect() flags over the messages that were not set aside.
# The worker comes back on its own after every fault.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies check_incidents worker_pids
  check_offsets_at_end check_stream_events wait_committed wait_worker_replaced
  restart_after_postmaster_kill);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $seed = $ENV{DRIFTLOCK_FAULT_SEED} // int(rand(1_000_000));
srand($seed);
note("fault seed $seed (set DRIFTLOCK_FAULT_SEED=$seed to repeat this run)");

my $topic      = 'faults';
my $group      = 'faults-group';
my $config     = '{"warmup": 30, "alpha": 0.05}';
my $partitions = 4;
my $chunks     = 12;
my $per_chunk  = 1050;                 # per stream and chunk
my $chunk_size = $partitions * $per_chunk;
my $total      = $chunks * $chunk_size;

my $kafka = start_mock_kafka(topics => { $topic => $partitions });
my $node = worker_node('faults', $kafka, conf => {
	'restart_after_crash'              => 'on',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	# small transactions: many commit points for the kills to fall between
	'driftlock.kafka_max_in_flight'    => '20' });
$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) SELECT 'f' || i, '$config' FROM generate_series(0, $partitions - 1) i");
$node->safe_psql('postgres', q{
CREATE FUNCTION fault_reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'fault injection: % rejected', TG_TABLE_NAME;
END $$});

my @rows;
my %payloads = map { ("f$_" => [ event_payloads(count => $chunks * $per_chunk, seed => "f$_") ]) }
  0 .. $partitions - 1;
my $produced = 0;

sub produce_chunk
{
	my ($chunk) = @_;
	for my $p (0 .. $partitions - 1)
	{
		my @slice = @{ $payloads{"f$p"} }[ $chunk * $per_chunk .. ($chunk + 1) * $per_chunk - 1 ];
		produce_events($kafka, $topic, $p, \@rows, stream => "f$p",
			payloads => \@slice, headers => ["X-Stream-Id=f$p"]);
	}
	$produced += $chunk_size;
	return;
}

my $committed_sql = "SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$group'";
my $kills = 0;
my $kills_pending = 0;

# The running worker's pid, waiting for one (and for the server to accept
# connections after a crash restart)
sub worker_pid
{
	ok(poll_until($node,
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'",
			't', 90), 'a worker is running');
	my ($pid) = worker_pids($node);
	return $pid;
}

# Wait until the worker that replaces $old is running
sub wait_worker_back
{
	my ($old, $what) = @_;
	ok(wait_worker_replaced($node, $old, 120), "$what: the worker comes back on its own");
	return;
}

# kill -9 the worker now; it comes back through the crash restart
sub kill_worker
{
	my ($what) = @_;
	my $pid = worker_pid();
	my $seen = $node->safe_psql('postgres', $committed_sql);
	ok(kill('KILL', $pid), "$what: worker $pid killed");
	$kills++;
	$kills_pending++ if $seen < $produced;
	note("$what: worker killed with $seen of $produced messages committed");
	wait_worker_back($pid, $what);
	return;
}

# kill -9 the worker or the postmaster at a random point of the chunk just
# produced: once between 10% and 70% of it is committed
sub kill_randomly
{
	my ($chunk, $what) = @_;
	my $from = $chunk * $chunk_size + int($chunk_size * (0.1 + rand(0.6)));
	my $pid = worker_pid();
	my $seen = wait_committed($node, $group, $from, 120);
	if ($what eq 'postmaster')
	{
		$node->kill9;
	}
	else
	{
		kill('KILL', $pid);
	}
	$kills++;
	$kills_pending++ if $seen < $produced;
	ok($seen >= $from, "chunk $chunk: $what killed at a random point");
	note("chunk $chunk: $what killed with $seen of $produced messages committed (aimed at $from)");
	restart_after_postmaster_kill($node, $pid, "chunk $chunk") if $what eq 'postmaster';
	wait_worker_back($pid, "chunk $chunk");
	return;
}

# Chunks 0-3: kills of the worker and of the postmaster
my @plan = qw(worker worker postmaster worker);
for my $chunk (0 .. 3)
{
	produce_chunk($chunk);
	kill_randomly($chunk, $plan[$chunk]);
}

# Chunk 4: brokers down for 30 s mid-chunk; the worker is killed during the
# outage and must reconnect once the brokers are back
produce_chunk(4);
my $outage_from = 4 * $chunk_size + int($chunk_size * rand(0.5));
cmp_ok(wait_committed($node, $group, $outage_from, 120), '>=', $outage_from, 'chunk 4 under way before the outage');
$kafka->command('down');
my $down_at = Time::HiRes::time();
note('brokers down with ' . $node->safe_psql('postgres', $committed_sql) . " of $produced committed");
Time::HiRes::sleep(15);
kill_worker('broker outage');
Time::HiRes::sleep(30 - (Time::HiRes::time() - $down_at)) if Time::HiRes::time() - $down_at < 30;
$kafka->command('up');
note(sprintf('brokers up after %.1f s', Time::HiRes::time() - $down_at));
cmp_ok(wait_committed($node, $group, 5 * $chunk_size, 180), '>=', 5 * $chunk_size,
	'after the outage the worker catches up on its own');

# Chunk 5: a clean restart of PostgreSQL mid-chunk
produce_chunk(5);
my $restart_from = 5 * $chunk_size + int($chunk_size * (0.1 + rand(0.5)));
cmp_ok(wait_committed($node, $group, $restart_from, 120), '>=', $restart_from, 'chunk 5 under way before the restart');
my ($before_restart) = worker_pids($node);
$node->restart;
wait_worker_back($before_restart, 'clean restart');

# Chunk 6: anomaly inserts fail; flagged messages become insert_failed dead
# letters while the rest goes on.  The worker is killed meanwhile.
$node->safe_psql('postgres',
	'CREATE TRIGGER fault_anomalies BEFORE INSERT ON driftlock.anomalies FOR EACH ROW EXECUTE FUNCTION fault_reject()');
produce_chunk(6);
ok(poll_until($node, 'SELECT count(*) >= 1 FROM driftlock.dead_letters', 't', 120),
	'failing anomaly inserts: a flagged message is set aside');
kill_worker('failing anomaly inserts');
my $dead_before_kill = $node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters');
ok(poll_until($node, "SELECT count(*) > $dead_before_kill FROM driftlock.dead_letters", 't', 120),
	'failing anomaly inserts: more flagged messages are set aside after the restart');
$node->safe_psql('postgres', 'DROP TRIGGER fault_anomalies ON driftlock.anomalies');
my $dead_after_inserts = $node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters');
note("$dead_after_inserts messages set aside while anomaly inserts failed");

# Chunk 7: kill -9 of the postmaster
produce_chunk(7);
kill_randomly(7, 'postmaster');

# Chunk 8: every offset write fails, so nothing can commit: the worker must
# retry without setting anything aside.  Killed meanwhile.
cmp_ok(wait_committed($node, $group, 8 * $chunk_size, 180), '>=', 8 * $chunk_size,
	'chunks 0-7 committed before offset writes fail');
$node->safe_psql('postgres',
	'CREATE TRIGGER fault_offsets BEFORE INSERT OR UPDATE ON driftlock.kafka_offsets FOR EACH ROW EXECUTE FUNCTION fault_reject()');
my $stalled_at = $node->safe_psql('postgres', $committed_sql);
produce_chunk(8);
Time::HiRes::sleep(5);
kill_worker('failing offset writes');
Time::HiRes::sleep(3);
is($node->safe_psql('postgres', $committed_sql), $stalled_at,
	'failing offset writes: nothing commits');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters'), $dead_after_inserts,
	'failing offset writes: nothing is set aside');
$node->safe_psql('postgres', 'DROP TRIGGER fault_offsets ON driftlock.kafka_offsets');

# Chunks 9-11: more kills
my %later = (9 => 'worker', 10 => 'postmaster', 11 => 'worker');
for my $chunk (9 .. 11)
{
	produce_chunk($chunk);
	kill_randomly($chunk, $later{$chunk});
}

# ---- accounting ----
is(scalar @rows, $total, "$total messages produced");
cmp_ok($kills, '>=', 10, "$kills kill -9 in all");
cmp_ok($kills_pending, '>', 0, 'kills happened with messages not yet committed');
ok(wait_offsets($node, $group, \@rows, 300), 'the offsets reach the end of every partition');
load_messages($node, 'produced', \@rows);

check_offsets_at_end($node, 'produced', $group, 'after the faults');

# every dead letter is a produced message, once, and was set aside by the
# failing trigger
is($node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE p.off IS NULL), count(*) FILTER (WHERE d.reason <> 'insert_failed'),
       count(*) FILTER (WHERE d.detail NOT LIKE '%fault injection: anomalies rejected%'),
       count(*) - count(DISTINCT (d.kafka_partition, d.kafka_offset))
FROM driftlock.dead_letters d
LEFT JOIN produced p ON (p.topic, p.part, p.off) = (d.kafka_topic, d.kafka_partition, d.kafka_offset)}),
	'0|0|0|0', 'each dead letter is one produced message, set aside once, by the failing trigger');

# each message counted by its detector or set aside, exactly once
$node->safe_psql('postgres', q{
CREATE TABLE produced_ok AS
SELECT p.* FROM produced p
WHERE NOT EXISTS (SELECT FROM driftlock.dead_letters d
  WHERE (d.kafka_topic, d.kafka_partition, d.kafka_offset) = (p.topic, p.part, p.off))});
check_stream_events($node, 'produced_ok',
	"each stream's detector saw each of its messages that was not set aside once");
my ($ok_count, $dead_count) = split /\|/, $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM produced_ok), (SELECT count(*) FROM driftlock.dead_letters)');
is($ok_count + $dead_count, $total, "scored + set aside = $total ($ok_count + $dead_count)");

is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT FROM driftlock.anomalies
  GROUP BY kafka_topic, kafka_partition, kafka_offset HAVING count(*) > 1) d}),
	'0', 'no anomaly row is duplicated');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies a JOIN driftlock.dead_letters d
  ON (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (d.kafka_topic, d.kafka_partition, d.kafka_offset)}),
	'0', 'no message is both an anomaly and a dead letter');
check_anomalies($node, 'produced_ok', $config, 'after the faults');
check_incidents($node, 'produced_ok', $config, 'after the faults');

my ($pid) = worker_pids($node);
ok($pid, 'the worker is running at the end');
note("faults survived: $kills kill -9, a 30 s broker outage, a clean restart, "
	  . "$dead_count messages set aside by a failing trigger; $total messages checked");

$node->stop;
$kafka->stop;
done_testing();
