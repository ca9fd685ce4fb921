# Messages that Kafka's retention deletes before the worker reads them are
# never lost silently (retention_gap.c).  The worker processes 100
# messages and is switched off; 8 MiB more are produced, past what a mock
# partition keeps (about 5 MiB), so the oldest unread messages are deleted;
# switched on again, the worker finds its stored offset below the log start.
# The range is one retention_gap dead letter, a WARNING and
# driftlock_messages_lost_total; everything still in the log is processed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events log_since);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'gap';
my $group = 'gap-group';
my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('retention_gap', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres', q{INSERT INTO driftlock.streams (name) VALUES ('g')});
my $q = sub { $node->safe_psql('postgres', $_[0]) };

my @rows;
produce_events($kafka, $topic, 0, \@rows, stream => 'g',
	payloads => [ event_payloads(count => 100, seed => 'g') ], headers => ['X-Stream-Id=g']);
ok(wait_offsets($node, $group, \@rows, 60), 'the first 100 messages processed');

# Switch the worker off and produce past the partition's retention
$q->(q{ALTER SYSTEM SET driftlock.kafka_enabled = off; SELECT pg_reload_conf()});
ok(poll_until($node, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND query LIKE 'disabled%'}, '1', 30),
	'the worker is switched off');
my $pad = 'x' x 1000;
my @big = map { qq({"level":"info","msg":"bulk $_","pad":"$pad"}) } 1 .. 8000;
produce_events($kafka, $topic, 0, \@rows, stream => 'g', payloads => \@big,
	headers => ['X-Stream-Id=g']);
my $end = $rows[-1][2] + 1;

my $log_at = -s $node->logfile;
$q->(q{ALTER SYSTEM RESET driftlock.kafka_enabled; SELECT pg_reload_conf()});
ok(wait_offsets($node, $group, \@rows, 120), "the worker read the partition to its end ($end)");

my ($from, $until, $payload, $detail) = split /\|/, $q->(q{
SELECT kafka_offset, kafka_offset_end, payload IS NULL, detail
FROM driftlock.dead_letters WHERE reason = 'retention_gap'});
is($from, 100, 'one retention_gap dead letter, from the stored offset');
cmp_ok($until, '>', 100, "up to the log start ($until)");
cmp_ok($until, '<', $end, 'and the rest of the partition was still there');
is($payload, 't', 'with no payload');
like($detail, qr/Offsets 100 to \d+ \(\d+ messages\) were skipped: Kafka's retention deleted/,
	'its detail says what happened');
is($q->('SELECT count(*) FROM driftlock.dead_letters'), '1', 'no other dead letter');
my $lost = $until - 100;
like(log_since($node, $log_at),
	qr/WARNING:  driftlock kafka worker 0 lost $lost messages of gap\[0\], offsets 100 to @{[ $until - 1 ]}: Kafka's retention deleted them/,
	'a WARNING names the partition and the range');
is($q->(q{SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_messages_lost_total'
AND labels = '{"topic": "gap", "partition": "0", "reason": "retention"}'}), $lost,
	'driftlock_messages_lost_total counts them');
is($q->(q{SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_dead_letters_total'
AND labels ->> 'reason' = 'retention_gap'}), '1', 'and the dead letter is counted by reason');
like($q->('SELECT driftlock_prometheus()'),
	qr/^driftlock_messages_lost_total\{topic="gap",partition="0",reason="retention"\} $lost$/m,
	'in the Prometheus text too');
ok(poll_until($node, q{SELECT events FROM driftlock.stream_state s JOIN driftlock.streams t
ON t.id = s.stream_id WHERE t.name = 'g'}, 100 + $end - $until, 30),
	'the stream learnt every message that was still in the log, and no other');

# Nothing is reported twice: a restart reads on from the stored offset
$node->restart;
ok(poll_until($node, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND query LIKE 'waiting for messages%'}, '1', 60),
	'the worker is back after a restart');
is($q->(q{SELECT count(*) FROM driftlock.dead_letters WHERE reason = 'retention_gap'}), '1',
	'and records no second gap');

$node->stop;
$kafka->stop;
done_testing();
