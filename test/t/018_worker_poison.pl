# Kafka worker: a message whose processing fails every time (here a trigger
# rejects its anomaly row) must not hold up the messages behind it.  The
# batch is retried, then retried message by message, and the poisonous
# message becomes an insert_failed dead letter; everything else is
# processed exactly once, and the worker keeps running.
#
# Then the same among several partitions with a backlog: a retried batch
# (read again from the checkpoints, in whatever order the partitions come)
# may hold only good messages and commit.  That must not reset the count of
# failures: the poisonous message is still isolated after three of them,
# not after an unbounded number of rollbacks, replays and backoffs.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  kcat_produce_opts event_payloads worker_pids);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'poison';
my $group = 'poison-group';

my $topic4 = 'poison4';
my $kafka = start_mock_kafka(topics => { $topic => 1, $topic4 => 4 });
my $node = worker_node('poison', $kafka, conf => {
	'driftlock.kafka_topic'            => "$topic,$topic4",
	# small batches: many of them, across the partitions of the backlog
	'driftlock.kafka_max_in_flight'    => '10',
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres', q{
INSERT INTO driftlock.streams (name, config) VALUES ('p', '{"warmup": 30, "alpha": 0.05}');
CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF convert_from(NEW.payload, 'UTF8') LIKE '%poison%' THEN
        RAISE EXCEPTION 'anomaly row rejected by trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reject_poison BEFORE INSERT ON driftlock.anomalies
    FOR EACH ROW EXECUTE FUNCTION reject_poison();
});
my @pids_before = worker_pids($node);

# 60 normal events, one that is both anomalous and poisonous, 40 normal
my @normal = event_payloads(count => 100, seed => 'poison', every => 1000);
my $poison = '{"level":"fatal","msg":"poison pill: kernel panic, not syncing, attempted to kill init","code":"0xdeadbeef"}';
my @messages = (@normal[0 .. 59], $poison, @normal[60 .. 99]);
kcat_produce_opts($kafka->bootstrap, $topic, \@messages, headers => ['X-Stream-Id=p']);

ok(wait_offsets($node, $group, [ [ $topic, 0, $#messages ] ], 120),
	'the worker consumes past the poisonous message');

my $row = $node->safe_psql('postgres', q{
SELECT kafka_offset, reason, detail ~ 'anomaly row rejected by trigger', convert_from(payload, 'UTF8') ~ 'poison pill'
FROM driftlock.dead_letters});
is($row, "60|insert_failed|t|t", 'the poisonous message is an insert_failed dead letter with the error');

is($node->safe_psql('postgres', q{
SELECT st.events FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id}),
	scalar(@messages) - 1, 'every other message reached the detector exactly once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.anomalies WHERE kafka_offset = 60'),
	'0', 'no anomaly row for it');
is($node->safe_psql('postgres', q{
SELECT count(*) = count(DISTINCT kafka_offset) FROM driftlock.anomalies}), 't', 'no anomaly twice');

my $log = slurp_file($node->logfile);
like($log, qr/retrying a batch of \d+ messages one by one after 3 failures/,
	'the batch was retried message by message after three failures');
like($log, qr/set message poison\[0\]\@60 aside as a dead letter \(insert_failed\)/,
	'the log names the message set aside');
is_deeply([ worker_pids($node) ], \@pids_before, 'the worker kept running');

# with the trigger gone, new messages flow as before
$node->safe_psql('postgres', 'DROP TRIGGER reject_poison ON driftlock.anomalies');
kcat_produce_opts($kafka->bootstrap, $topic, [ @normal[0 .. 9] ], headers => ['X-Stream-Id=p']);
ok(wait_offsets($node, $group, [ [ $topic, 0, $#messages + 10 ] ], 60),
	'later messages are processed');

# Several partitions: a backlog of 200 messages on each of four, the
# poisonous one at offset 100 of partition 2, produced while the worker is
# off so that batches are collected from all of them.
$node->safe_psql('postgres', q{
INSERT INTO driftlock.streams (name, config)
SELECT 'q' || i, '{"warmup": 30, "alpha": 0.05}' FROM generate_series(0, 3) i;
CREATE TRIGGER reject_poison BEFORE INSERT ON driftlock.anomalies
    FOR EACH ROW EXECUTE FUNCTION reject_poison();
});
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = off\n");
$node->reload;
ok(poll_until($node,
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker' AND query NOT LIKE 'disabled%'",
		't', 60), 'the worker is disabled while the backlog is produced');
my @ends;
for my $p (0 .. 3)
{
	my @part = event_payloads(count => 200, seed => "poison4-$p", every => 1000);
	$part[100] = $poison if $p == 2;
	kcat_produce_opts($kafka->bootstrap, $topic4, \@part, partition => $p, headers => ["X-Stream-Id=q$p"]);
	push @ends, [ $topic4, $p, 199 ];
}
my $log_from = -s $node->logfile;
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = on\n");
$node->reload;
ok(wait_offsets($node, $group, \@ends, 120), 'the worker consumes the backlog of four partitions');
is($node->safe_psql('postgres', "SELECT kafka_partition || ':' || kafka_offset || ' ' || reason FROM driftlock.dead_letters WHERE kafka_topic = '$topic4'"),
	'2:100 insert_failed', 'the poisonous message among four partitions is the one dead letter');
is($node->safe_psql('postgres', q{
SELECT string_agg(st.events::text, ',' ORDER BY s.name) FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id
WHERE s.name LIKE 'q%'}), '200,200,199,200', 'every other message of the four partitions reached its detector once');
my $log4 = substr(slurp_file($node->logfile), $log_from);
my $retries = () = $log4 =~ /will retry the batch/g;
is($retries, 3, 'three failed batches before the poisonous message is isolated, whatever the others commit meanwhile');

$node->stop;
done_testing();
