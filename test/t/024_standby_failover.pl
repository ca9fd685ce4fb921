# Kafka worker on a hot standby, and failover.  A primary consumes a
# 4-partition topic (one stream a partition); a streaming standby made from
# its backup has the same settings (driftlock preloaded, the worker enabled)
# but runs no worker while in recovery.  The standby's WAL stream is cut
# while the primary consumes (replication lag), so the primary commits
# batches, and sends their offsets to Kafka, that the standby never
# receives; partition 3 gets its first messages only then, so the standby
# has no stored offset for it at all.  The primary is killed (immediate
# stop) with messages left, and the standby is promoted while messages keep
# coming.  The promoted standby's worker must start on its own, start each
# partition at its own stored offsets (from the beginning where it has
# none), not at the Kafka offsets the primary committed (it lost those
# batches and must process them again), and in the end every message is
# processed exactly once there: offsets at the end, each stream's detector
# saw each message once, no dead letter, and the anomalies and incidents are
# those of a clean driftlock_detect() run.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies check_incidents
  check_exactly_once wait_committed kafka_committed log_rebalances log_since
  log_line_time count_log_matches sql_quote stored_offsets);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic      = 'failover';
my $group      = 'failover-group';
my $config     = '{"warmup": 30, "alpha": 0.05}';
my $partitions = 4;
my $late       = 3;                    # the partition the standby never hears of
my $worker_sql = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'};

my $kafka = start_mock_kafka(topics => { $topic => $partitions });
my $primary = worker_node('primary', $kafka, init => { allows_streaming => 1 }, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	# small transactions: many commit points, a primary well ahead of its standby
	'driftlock.kafka_max_in_flight'    => '5' });
$primary->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) SELECT 'f' || i, '$config' FROM generate_series(0, $partitions - 1) i");

# The standby: same postgresql.conf (the backup holds it), streaming
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
is($standby->safe_psql('postgres', q{
SELECT pg_is_in_recovery(), current_setting('shared_preload_libraries'), current_setting('driftlock.kafka_enabled'),
       current_setting('driftlock.kafka_group_id')}),
	"t|driftlock|on|$group", 'the standby preloads driftlock with the primary\'s settings, in recovery');

# Stream i on partition i; the chunks follow each other in every stream
my @rows;
my $total = 0;
my %payloads = map { ("f$_" => [ event_payloads(count => 3000, seed => "f$_") ]) } 0 .. $partitions - 1;
my @produced = (0) x $partitions;      # messages of each partition so far
sub produce_chunk
{
	my ($n, @parts) = @_;
	@parts = (0 .. $partitions - 1) unless @parts;
	for my $p (@parts)
	{
		my @slice = @{ $payloads{"f$p"} }[ $produced[$p] .. $produced[$p] + $n - 1 ];
		produce_events($kafka, $topic, $p, \@rows, stream => "f$p",
			payloads => \@slice, headers => ["X-Stream-Id=f$p"]);
		$produced[$p] += $n;
		$total += $n;
	}
	return;
}

sub offsets_of { return stored_offsets($_[0], $group, $topic) }

sub fmt_offsets
{
	my (%o) = @_;
	return join(' ', map { "$_:" . (ref $o{$_} ? $o{$_}[0] : $o{$_} // 'none') } 0 .. $partitions - 1);
}

# ---- the primary consumes; the standby replays its commits and does not consume
my @early = grep { $_ != $late } 0 .. $partitions - 1;
produce_chunk(300, @early);
ok(poll_until($standby, qq{
SELECT count(*) = @{[ scalar @early ]} AND min(next_offset) >= 50 FROM driftlock.kafka_offsets WHERE group_id = '$group'},
		't', 90), 'the standby replays the primary\'s offsets of every partition used so far');
is($standby->safe_psql('postgres', $worker_sql), '0', 'no driftlock worker runs on the standby');
is(count_log_matches($standby, qr/driftlock kafka worker \d+ (?:consuming topic|assigned partitions)/), 0,
	'the standby\'s log shows no consumer');

# ---- replication lag: the standby stops receiving WAL while the primary goes on
$standby->append_conf('postgresql.conf', "primary_conninfo = ''\n");
$standby->reload;
ok(poll_until($standby, 'SELECT count(*) = 0 FROM pg_stat_wal_receiver', 't', 30),
	'the standby\'s WAL receiver stops');
# the standby got at most what the primary had committed by now
my %primary_at_cut = offsets_of($primary);
note('the standby is cut off with the primary at ' . fmt_offsets(%primary_at_cut));
# From here the primary's batches take 5 ms more for each partition they
# advance, so that a chunk takes seconds and the kill below lands while it
# consumes (kcat produces a partition at a time, which a fast worker
# follows closely).  The standby never sees this trigger.
$primary->safe_psql('postgres', q{
CREATE FUNCTION slow_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
CREATE TRIGGER slow_batches BEFORE INSERT OR UPDATE ON driftlock.kafka_offsets
  FOR EACH ROW EXECUTE FUNCTION slow_batches()});

# The primary commits a chunk the standby never sees, and sends its offsets
# to Kafka once flushed: wait until Kafka has them all.
produce_chunk(600);
ok(wait_offsets($primary, $group, \@rows, 90), 'the primary consumes a chunk the standby does not receive');
my %kafka_at;
my $kafka_ahead = 0;
my $deadline = Time::HiRes::time() + 30;
while (!$kafka_ahead && Time::HiRes::time() < $deadline)
{
	%kafka_at = kafka_committed($kafka, $group, $topic, $partitions);
	$kafka_ahead = !grep { $kafka_at{$_}[0] != $produced[$_] } 0 .. $partitions - 1;
	Time::HiRes::sleep(0.1) unless $kafka_ahead;
}
ok($kafka_ahead, 'the primary\'s Kafka offsets reach the end of that chunk')
  or diag('Kafka: ' . fmt_offsets(%kafka_at));

# A large chunk; the primary is killed a little way into it
my $before = $total;
produce_chunk(1500);
my $seen = wait_committed($primary, $group, $before + 300, 90);
$primary->stop('immediate');
ok($seen >= $before + 300 && $seen < $total,
	"the primary was killed while consuming ($seen of $total messages committed just before)");
%kafka_at = kafka_committed($kafka, $group, $topic, $partitions);
note('at the kill, Kafka has offsets ' . fmt_offsets(%kafka_at) . ' (commit metadata: '
	  . join(', ', map { $kafka_at{$_}[1] // 'none' } 0 .. $partitions - 1) . '; system identifier '
	  . $standby->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()') . ')');

# ---- failover; messages keep coming meanwhile
produce_chunk(300);
my $log_offset = -s $standby->logfile;
$standby->promote;
# What the promoted node holds, read before its worker can commit: the
# marker must come before the worker's first assignment in the log.
my %standby_at = map { split /\|/ } split /\n/, $standby->safe_psql('postgres', qq{
DO \$\$ BEGIN RAISE LOG 'driftlock test: stored offsets read'; END \$\$;
SELECT partition, next_offset FROM driftlock.kafka_offsets WHERE group_id = '$group' AND topic = '$topic'});
note('the promoted standby starts from its offsets ' . fmt_offsets(%standby_at));
ok(!grep({ $kafka_at{$_}[0] <= ($standby_at{$_} // 0) } 0 .. $partitions - 1),
	'the primary\'s Kafka offsets are ahead of the promoted standby on every partition: it lost batches')
  or diag('Kafka: ' . fmt_offsets(%kafka_at) . "\nstandby: " . fmt_offsets(%standby_at));

ok(poll_until($standby, $worker_sql, '1', 60), 'the promoted standby starts its worker');
produce_chunk(300);
ok(wait_offsets($standby, $group, \@rows, 180), 'the promoted standby consumes every partition to its end');

# How long it took, from the server log
my $log = log_since($standby, $log_offset);
my ($promoted_line) = $log =~ /^(.*database system is ready to accept connections.*)$/m;
my ($consuming_line) = $log =~ /^(.*driftlock kafka worker 0 consuming topic.*)$/m;
my @rebalances = log_rebalances($standby, $topic, $log_offset);
my ($first) = grep { $_->{what} eq 'assigned' && %{ $_->{parts} } } @rebalances;
ok(defined $promoted_line && defined $consuming_line && defined $first,
	'the promotion, the worker\'s start and its first assignment are logged');
if ($promoted_line && $consuming_line && $first)
{
	note(sprintf('worker consuming %.1f s after the end of recovery, partitions assigned %.1f s after it',
			log_line_time($consuming_line) - log_line_time($promoted_line),
			$first->{time} - log_line_time($promoted_line)));
}
my $marker_at = index($log, 'driftlock test: stored offsets read');
my $assigned_at = index($log, 'driftlock kafka worker 0 assigned partitions');
ok($marker_at >= 0 && $assigned_at > $marker_at,
	'the promoted node\'s offsets were read before its worker was assigned partitions');

# Each partition starts where the promoted node's own offsets are (its
# checkpoint, replaying up to its next offset), not at the primary's Kafka
# offset: the batches the standby never received are processed again.
my %start = $first ? %{ $first->{parts} } : ();
is(fmt_offsets(map {
			($_ => !defined $start{$_} ? 'not assigned'
				  : defined $standby_at{$_} && $start{$_} >= 0 && $start{$_} <= $standby_at{$_} ? 'own'
				  # no stored offset: the beginning (0, or librdkafka's OFFSET_BEGINNING)
				  : !defined $standby_at{$_} && ($start{$_} == 0 || $start{$_} == -2) ? 'own'
				  : $start{$_} == -1001 ? "the group's committed offset"
				  : "\@$start{$_}")
		} 0 .. $partitions - 1),
	fmt_offsets(map { ($_ => 'own') } 0 .. $partitions - 1),
	'every partition starts at or before the promoted node\'s stored offset (at the beginning where it has none)')
  or diag('assigned: ' . join(', ', map { "$_\@" . ($start{$_} // 'none') } sort keys %start)
	  . "\nstored on the standby: " . fmt_offsets(%standby_at)
	  . "\nKafka at the kill: " . fmt_offsets(%kafka_at));

# ---- exactly once on the promoted node
load_messages($standby, 'produced', \@rows);
check_exactly_once($standby, 'produced', $group, 'after failover');
check_anomalies($standby, 'produced', $config, 'after failover');
check_incidents($standby, 'produced', $config, 'after failover');

# Lag tools see the end too (best effort, once the WAL is flushed)
my $kafka_end = 0;
$deadline = Time::HiRes::time() + 30;
while (Time::HiRes::time() < $deadline)
{
	%kafka_at = kafka_committed($kafka, $group, $topic, $partitions);
	last if ($kafka_end = !grep { $kafka_at{$_}[0] != $produced[$_] } 0 .. $partitions - 1);
	Time::HiRes::sleep(0.2);
}
ok($kafka_end, 'the group\'s Kafka offsets reach the end of every partition')
  or diag('Kafka: ' . fmt_offsets(%kafka_at));

$standby->stop;
$kafka->stop;
done_testing();
