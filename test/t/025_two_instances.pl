# Two independent PostgreSQL instances in one consumer group.  Instance b
# consumes a 4-partition topic alone at first; instance a, with the same
# driftlock.kafka_group_id, joins and the two split the partitions (b keeps
# the offsets and detector states of the partitions it gave away); a is
# stopped cleanly in the middle of a chunk, b takes its partitions back
# from where a stopped (the group's Kafka offsets, committed by another
# system, ahead of b's own), and more messages come.  Every tenth message
# names an unknown stream, so it must become a dead letter exactly once in
# exactly one of the instances.  Then a reporting instance reads both
# through postgres_fdw (the recipe of docs/operations.md) and checks that
# together they processed every message once: each dead letter once, no
# anomaly in both, each stream's detectors (one per instance) saw each of
# its events once between them, and the offsets reach the end of every
# partition.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_committed
  event_payloads kcat_produce_opts load_messages kafka_committed
  current_assignment log_rebalances log_line_time sql_quote stored_offsets);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic      = 'pair';
my $group      = 'pair-group';
my $config     = '{"warmup": 30, "alpha": 0.05}';
my $partitions = 4;
my $streams    = 8;                    # stream s on partition s % 4
my %conf = (
	'driftlock.kafka_topic'           => $topic,
	'driftlock.kafka_group_id'        => $group,
	'driftlock.kafka_stream_id_field' => 'metadata.stream_id',
	'driftlock.kafka_max_in_flight'   => '10');

my $kafka = start_mock_kafka(topics => { $topic => $partitions });
my %node;
sub start_instance
{
	my ($name) = @_;
	$node{$name} = worker_node("instance_$name", $kafka, conf => \%conf);
	# the same stream ids on both instances, so that reports can join on them
	$node{$name}->safe_psql('postgres', qq{
INSERT INTO driftlock.streams (id, name, config)
SELECT md5('s' || i)::uuid, 's' || i, '$config' FROM generate_series(0, $streams - 1) i});
	return;
}

# Run $check every 0.1 s until it returns true or $timeout seconds pass
sub wait_for
{
	my ($check, $timeout) = @_;
	my $deadline = Time::HiRes::time() + $timeout;
	while (Time::HiRes::time() < $deadline)
	{
		return 1 if $check->();
		Time::HiRes::sleep(0.1);
	}
	return $check->();
}

# Partition p holds streams p and p + 4, interleaved; every tenth message
# names the unknown stream "ghost-p".
my @rows;                              # [topic, partition, offset, stream, payload]
my @next_off = (0) x $partitions;
my %events = map {
	("s$_" => [ event_payloads(count => 2000, seed => "s$_", stream_id => "s$_") ])
} 0 .. $streams - 1;
my %used = map { ("s$_" => 0) } 0 .. $streams - 1;
sub produce_round
{
	my ($per_partition, @order) = @_;
	@order = (0 .. $partitions - 1) unless @order;
	for my $p (@order)
	{
		my @payloads;
		for my $i (0 .. $per_partition - 1)
		{
			my ($stream, $payload);
			if ($next_off[$p] % 10 == 9)
			{
				$stream = "ghost-$p";
				$payload = sprintf('{"metadata":{"stream_id":"%s"},"seq":%d}', $stream, $next_off[$p]);
			}
			else
			{
				$stream = 's' . ($p + $partitions * ($next_off[$p] % 2));
				$payload = $events{$stream}[ $used{$stream}++ ];
			}
			push @payloads, $payload;
			push @rows, [ $topic, $p, $next_off[$p]++, $stream, $payload ];
		}
		kcat_produce_opts($kafka->bootstrap, $topic, \@payloads, partition => $p);
	}
	return;
}

sub offsets_of { return stored_offsets($_[0], $group, $topic) }

sub fmt
{
	my (%h) = @_;
	return join(' ', map { "$_:" . (ref $h{$_} ? $h{$_}[0] : $h{$_}) } sort { $a <=> $b } keys %h) || 'none';
}

# Partitions 0 .. 3 each consumed to $end[p] by one instance or the other
sub union_at_end
{
	my (@end) = @_;
	my %a = offsets_of($node{a});
	my %b = offsets_of($node{b});
	return !grep { (($a{$_} // 0) < $end[$_]) && (($b{$_} // 0) < $end[$_]) } 0 .. $partitions - 1;
}

# ---- instance b alone consumes every partition
start_instance('b');
produce_round(100);
ok(poll_until($node{b}, qq{
SELECT count(*) FILTER (WHERE next_offset >= $next_off[0]) = $partitions
FROM driftlock.kafka_offsets WHERE group_id = '$group' AND topic = '$topic'}, 't', 90),
	'instance b alone consumes every partition');
my %b_round0 = offsets_of($node{b});

# ---- instance a joins: the two split the partitions
start_instance('a');
my (%own_a, %own_b);
ok(wait_for(sub {
			%own_a = current_assignment($node{a}, $topic);
			%own_b = current_assignment($node{b}, $topic);
			%own_a && %own_b && !grep({ exists $own_b{$_} } keys %own_a)
			  && keys(%own_a) + keys(%own_b) == $partitions;
		}, 60),
	'the two instances split the partitions between them')
  or diag('a: ' . join(',', sort keys %own_a) . '; b: ' . join(',', sort keys %own_b));
note('a owns ' . join(',', sort keys %own_a) . ', b owns ' . join(',', sort keys %own_b));

# ---- a first round, consumed by both
produce_round(200);
ok(wait_for(sub { union_at_end(@next_off) }, 90), 'the first round is consumed, each partition by one instance');
my %a_round1 = offsets_of($node{a});
my %b_round1 = offsets_of($node{b});
is(join(',', sort grep { $a_round1{$_} > $b_round0{$_} } keys %a_round1), join(',', sort keys %own_a),
	'instance a processed its partitions, from where b had left them');
is(join(',', sort grep { $b_round1{$_} > $b_round0{$_} } keys %b_round1), join(',', sort keys %own_b),
	'instance b processed its own partitions only');

# ---- a large round; instance a is stopped cleanly a little way into it.
# Its batches take 5 ms more for each partition they advance, and its
# partitions are produced last, so that it cannot finish before the stop
# (kcat produces a partition at a time, which a fast worker follows closely).
$node{a}->safe_psql('postgres', q{
CREATE FUNCTION slow_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$;
CREATE TRIGGER slow_batches BEFORE INSERT OR UPDATE ON driftlock.kafka_offsets
  FOR EACH ROW EXECUTE FUNCTION slow_batches()});
my $a_before = 0;
$a_before += $_ for values %a_round1;
my %b_before = offsets_of($node{b});
produce_round(2000, (sort keys %own_b), (sort keys %own_a));
my $seen = wait_committed($node{a}, $group, $a_before + 150, 90);
my $b_log_offset = -s $node{b}->logfile;
$node{a}->stop('fast');
# read before instance b can take over (a rebalance takes seconds)
my %kafka_at_stop = kafka_committed($kafka, $group, $topic, $partitions);
my %a_end_of_round = map { ($_ => $next_off[$_]) } keys %own_a;
ok($seen >= $a_before + 150 && grep({ $kafka_at_stop{$_}[0] < $a_end_of_round{$_} } keys %own_a),
	"instance a was stopped while consuming its partitions (Kafka at " . fmt(%kafka_at_stop) . ")");
ok(!grep({ $b_before{$_} >= $kafka_at_stop{$_}[0] } keys %own_a),
	'instance b\'s own offsets of those partitions are behind the group\'s Kafka offsets')
  or diag('b: ' . fmt(%b_before) . "\nKafka: " . fmt(%kafka_at_stop));

# ---- instance b takes all partitions over and goes on
my %own;
ok(wait_for(sub {
			%own = current_assignment($node{b}, $topic, $b_log_offset);
			keys(%own) == $partitions;
		}, 60),
	'instance b takes over every partition');
my ($takeover) = grep { $_->{what} eq 'assigned' && keys %{ $_->{parts} } == $partitions }
  log_rebalances($node{b}, $topic, $b_log_offset);
if ($takeover)
{
	my ($stopped) = PostgreSQL::Test::Utils::slurp_file($node{a}->logfile) =~ /^(.*database system is shut down.*)$/m;
	note('instance b assigned ' . join(', ', map { "$_\@$takeover->{parts}{$_}" } sort keys %{ $takeover->{parts} })
		  . ($stopped ? sprintf(', %.1f s after instance a shut down', $takeover->{time} - log_line_time($stopped)) : ''));
}
produce_round(300);
ok(poll_until($node{b}, qq{
SELECT count(*) FILTER (WHERE next_offset >= $next_off[0]) = $partitions
FROM driftlock.kafka_offsets WHERE group_id = '$group' AND topic = '$topic'}, 't', 120),
	'instance b consumes every partition to its end');

# ---- instance a back, with its worker disabled, for the report
$node{a}->append_conf('postgresql.conf', "driftlock.kafka_enabled = off\n");
$node{a}->start;
my %a_final = offsets_of($node{a});
is(fmt(map { ($_ => $kafka_at_stop{$_}[0]) } keys %own_a), fmt(map { ($_ => $a_final{$_}) } keys %own_a),
	'at its clean stop, instance a had committed its offsets to Kafka');

# ---- the report: both instances through postgres_fdw (docs/operations.md)
my $report = PostgreSQL::Test::Cluster->new('report');
$report->init;
$report->start;
my $setup = "CREATE EXTENSION postgres_fdw;\n";
for my $name ('a', 'b')
{
	my $n = $node{$name};
	$setup .= qq{
CREATE SERVER driftlock_$name FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '@{[ $n->host ]}', port '@{[ $n->port ]}', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER driftlock_$name OPTIONS (user '@{[ scalar getpwuid($<) ]}');
CREATE SCHEMA driftlock_$name;
IMPORT FOREIGN SCHEMA driftlock LIMIT TO (anomalies, dead_letters, kafka_offsets, stream_state, streams)
  FROM SERVER driftlock_$name INTO driftlock_$name;
};
}
$setup .= q{
CREATE VIEW all_anomalies AS
  SELECT 'a' AS instance, * FROM driftlock_a.anomalies
  UNION ALL SELECT 'b', * FROM driftlock_b.anomalies;
CREATE VIEW all_dead_letters AS
  SELECT 'a' AS instance, * FROM driftlock_a.dead_letters
  UNION ALL SELECT 'b', * FROM driftlock_b.dead_letters;
CREATE VIEW all_kafka_offsets AS
  SELECT 'a' AS instance, * FROM driftlock_a.kafka_offsets
  UNION ALL SELECT 'b', * FROM driftlock_b.kafka_offsets;
CREATE VIEW all_stream_events AS
  SELECT 'a' AS instance, s.name, st.events
  FROM driftlock_a.stream_state st JOIN driftlock_a.streams s ON s.id = st.stream_id
  UNION ALL
  SELECT 'b', s.name, st.events
  FROM driftlock_b.stream_state st JOIN driftlock_b.streams s ON s.id = st.stream_id;
-- after a crash both instances may hold a message: one row per Kafka position
CREATE VIEW anomalies_once AS
  SELECT DISTINCT ON (kafka_topic, kafka_partition, kafka_offset, kafka_record_index) *
  FROM all_anomalies
  ORDER BY kafka_topic, kafka_partition, kafka_offset, kafka_record_index, detected_at;
};
$report->safe_psql('postgres', $setup);
load_messages($report, 'produced', \@rows);
my $ghosts = "m.stream LIKE 'ghost-%'";

is($report->safe_psql('postgres', qq{
SELECT count(*) FROM produced m WHERE $ghosts}), scalar(grep { $_->[3] =~ /^ghost-/ } @rows),
	'the report sees the produced messages');
is($report->safe_psql('postgres', qq{
SELECT string_agg(format('%s/%s x%s', m.part, m.off, n), ' ')
FROM produced m
CROSS JOIN LATERAL (SELECT count(*) AS n FROM all_dead_letters d
  WHERE (d.kafka_topic, d.kafka_partition, d.kafka_offset) = (m.topic, m.part, m.off)
    AND d.reason = 'unknown_stream') d
WHERE $ghosts AND n <> 1}), '',
	'every message of an unknown stream is a dead letter exactly once, in one instance');
is($report->safe_psql('postgres', qq{
SELECT count(*) FROM all_dead_letters d JOIN produced m
  ON (d.kafka_topic, d.kafka_partition, d.kafka_offset) = (m.topic, m.part, m.off)
WHERE NOT $ghosts}), '0', 'no other message is a dead letter');
is($report->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT FROM all_anomalies GROUP BY kafka_topic, kafka_partition, kafka_offset
  HAVING count(*) > 1) d}), '0', 'no message is an anomaly in both instances');
is($report->safe_psql('postgres', qq{
SELECT count(*) FROM all_anomalies a
LEFT JOIN produced m ON (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (m.topic, m.part, m.off)
LEFT JOIN driftlock_a.streams s ON s.id = a.stream_id
WHERE m.off IS NULL OR $ghosts OR s.name IS DISTINCT FROM m.stream}), '0',
	'every anomaly is a produced message of its stream');
is($report->safe_psql('postgres', q{SELECT count(*) FROM anomalies_once}),
	$report->safe_psql('postgres', q{SELECT count(*) FROM all_anomalies}),
	'the de-duplicating view keeps every anomaly (nothing was processed twice)');
is($report->safe_psql('postgres', qq{
SELECT string_agg(format('%s:%s', m.stream, coalesce(e.events, 0)), ' ' ORDER BY m.stream)
FROM (SELECT stream, count(*) AS n FROM produced m WHERE NOT $ghosts GROUP BY 1) m
LEFT JOIN (SELECT name, sum(events) AS events FROM all_stream_events GROUP BY 1) e ON e.name = m.stream}),
	$report->safe_psql('postgres', qq{
SELECT string_agg(format('%s:%s', stream, count), ' ' ORDER BY stream)
FROM (SELECT stream, count(*) FROM produced m WHERE NOT $ghosts GROUP BY 1) m}),
	'between them, the two instances\' detectors saw each event once');
is($report->safe_psql('postgres', qq{
SELECT string_agg(format('%s:%s', part, n), ' ' ORDER BY part)
FROM (SELECT o.partition AS part, max(o.next_offset) AS n FROM all_kafka_offsets o
      WHERE o.group_id = '$group' AND o.topic = '$topic' GROUP BY 1) o}),
	join(' ', map { "$_:$next_off[$_]" } 0 .. $partitions - 1),
	'the instances\' offsets together reach the end of every partition');
my %share = map { split /\|/ } split /\n/, $report->safe_psql('postgres', q{
SELECT instance, count(*) FROM all_dead_letters GROUP BY 1});
note('dead letters: ' . join(', ', map { "$_ $share{$_}" } sort keys %share));
ok(($share{a} // 0) > 0 && ($share{b} // 0) > 0, 'each instance processed a share of the messages');

# Lag tools see the end too (best effort, once the WAL is flushed)
my %kafka_at;
ok(wait_for(sub {
			%kafka_at = kafka_committed($kafka, $group, $topic, $partitions);
			!grep { $kafka_at{$_}[0] != $next_off[$_] } 0 .. $partitions - 1;
		}, 30),
	'the group\'s Kafka offsets reach the end of every partition')
  or diag('Kafka: ' . fmt(%kafka_at));

$report->stop;
$node{$_}->stop for 'a', 'b';
$kafka->stop;
done_testing();
