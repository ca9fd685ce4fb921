# driftlock_replay_dead_letters() while the Kafka worker runs.
#
# Messages for streams that do not exist yet become unknown_stream dead
# letters.  Then:
#   1. with the worker idle, stream r0 is created and its 300 dead letters
#      replayed: the anomalies are exactly those of driftlock_detect() over
#      them, at their Kafka positions;
#   2. three sessions call the function in a loop while the worker consumes
#      live messages of the same streams: r0 and r1 on their partitions, r2
#      and r4 on both, each created while the worker is busy with a chunk
#      of messages (its last dead letters may be past the checkpoint yet);
#      the worker is killed with SIGKILL once in the middle (the sessions
#      die with it and start again).
#   Afterwards every message is accounted for exactly once: each dead
#   letter (recorded by a trigger as the worker writes it) was replayed by
#   exactly one call (the sum of what the calls report), none is left, every
#   stream's saved detector learnt each of its messages exactly once
#   (stream_state.events: a worker that saved its detectors over a replay's,
#   or relearnt a replayed message, would be off), every anomaly is a
#   produced message of its stream at its Kafka position, replayed dead
#   letters among them, and the worker logged that it started again from
#   its checkpoints after a replay;
#   3. a checkpoint that waits for the row lock of an uncommitted replay
#      fails once it commits and is retried on the new state (every step
#      forced by locks, so the race is not left to chance);
#   4. dead letters past their partition's checkpoint (a backlog the worker
#      works through, seldom checkpointing) are not replayed until a
#      checkpoint passes them; replayed, the worker would learn them twice.
# Phase 3 fails whenever the worker's check after its saves is taken out;
# phase 4, when the checkpoint rule is, in the runs where the worker had
# not checkpointed the dead letters yet (most).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies check_offsets_at_end
  check_stream_events worker_pids wait_committed wait_worker_replaced count_log_matches);
use File::Temp ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic  = 'late';
my $group  = 'late-group';
my $config = '{"warmup": 30, "alpha": 0.05}';

my $kafka = start_mock_kafka(topics => { $topic => 2 });
my $node = worker_node('replay', $kafka, conf => {
	'restart_after_crash'              => 'on',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	# many small batches, and checkpoints between them: replays meet
	# checkpoints, and dead letters newer than the checkpoint
	'driftlock.kafka_max_in_flight'    => '20',
	'driftlock.checkpoint_messages'    => '300',
	'driftlock.checkpoint_interval'    => '1h' });

my @rows;
my %events = (
	r0 => [ event_payloads(count => 3020, seed => 'r0') ],
	r1 => [ event_payloads(count => 2020, seed => 'r1') ],
	r2 => [ event_payloads(count => 480, seed => 'r2', every => 23, quiet => 35) ],
	r4 => [ event_payloads(count => 480, seed => 'r4', every => 23, quiet => 35) ]);
my %used = map { ($_ => 0) } keys %events;

sub produce
{
	my ($partition, $stream, $n) = @_;
	die "only " . @{ $events{$stream} } . " events of $stream\n" if $used{$stream} + $n > @{ $events{$stream} };
	my @payloads = @{ $events{$stream} }[ $used{$stream} .. $used{$stream} + $n - 1 ];
	$used{$stream} += $n;
	produce_events($kafka, $topic, $partition, \@rows, stream => $stream,
		payloads => \@payloads, headers => ["X-Stream-Id=$stream"]);
	return;
}

sub stream_id
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT id FROM driftlock.streams WHERE name = '$name'");
}

# Every partition consumed to its end and checkpointed there (the worker
# has caught up), so that the dead letters are behind the checkpoint.
sub wait_caught_up
{
	my ($what) = @_;
	ok(wait_offsets($node, $group, \@rows, 120), "$what: consumed");
	ok(poll_until($node, qq{
SELECT bool_and(checkpoint_offset = next_offset) FROM driftlock.kafka_offsets WHERE group_id = '$group'}),
		"$what: checkpointed at the end");
	return;
}

# every message the worker sets aside, as it writes it
$node->safe_psql('postgres', q{
CREATE TABLE dead (topic text, part int, off bigint);
CREATE FUNCTION dead_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dead VALUES (NEW.kafka_topic, NEW.kafka_partition, NEW.kafka_offset);
    RETURN NULL;
END
$$;
CREATE TRIGGER dead_seen AFTER INSERT ON driftlock.dead_letters
    FOR EACH ROW EXECUTE FUNCTION dead_seen();});

# ---------------------------------------------------------------------------
# 1. Dead letters of r0 and r1; r0 replayed while the worker is idle
# ---------------------------------------------------------------------------
produce(0, 'r0', 300);
produce(1, 'r1', 300);
wait_caught_up('unknown streams');
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s/%s', reason, n), ' ') FROM (
  SELECT reason, count(*) AS n FROM driftlock.dead_letters GROUP BY 1 ORDER BY 1) d}),
	'unknown_stream/600', 'the messages of the missing streams are unknown_stream dead letters');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.dead_letters
WHERE headers @> '[{"key": "X-Stream-Id"}]' AND payload IS NOT NULL}),
	'600', 'with their headers and payloads');

$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) VALUES ('r0', '$config'), ('r1', '$config')");
my $r0 = stream_id('r0');
my ($replayed, $anomalies, $remaining, $waiting) = split /\|/,
  $node->safe_psql('postgres', "SELECT * FROM driftlock_replay_dead_letters(NULL, '$r0')");
is("$replayed $remaining $waiting", '300 0 0', "r0's 300 dead letters replayed, none left for r0");
cmp_ok($anomalies, '>', 0, 'some of them are anomalies');
my $total_replayed = $replayed;
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters'), '300',
	"r1's dead letters stay");
load_messages($node, 'phase1', [ grep { $_->[3] eq 'r0' } @rows ]);
check_anomalies($node, 'phase1', $config, 'r0 replayed');
is($node->safe_psql('postgres', "SELECT events FROM driftlock.stream_state WHERE stream_id = '$r0'"),
	'300', "r0's saved detector learnt its 300 replayed events");

# ---------------------------------------------------------------------------
# 2. Replays in three sessions while the worker consumes the same streams
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE replay_log (session int, replayed bigint, anomalies bigint, remaining bigint,
                         waiting bigint, error text);
CREATE TABLE replay_stop (stop bool);
INSERT INTO replay_stop VALUES (false);
-- one transaction per call; a deadlock with the worker (which it then
-- retries, and so do we) is no failure
CREATE PROCEDURE replay_loop(session int) LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    LOOP
        BEGIN
            SELECT * INTO r FROM driftlock_replay_dead_letters();
            INSERT INTO replay_log VALUES (session, r.replayed, r.anomalies, r.remaining, r.waiting);
        EXCEPTION WHEN deadlock_detected OR serialization_failure THEN
            INSERT INTO replay_log (session, error) VALUES (session, SQLERRM);
        END;
        COMMIT;
        EXIT WHEN (SELECT stop FROM replay_stop);
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;});

my $dir = File::Temp::tempdir('replay_XXXX', TMPDIR => 1, CLEANUP => 1);
my $generation = 0;
my @sessions;

sub start_sessions
{
	$generation++;
	local $ENV{PGOPTIONS} = '-c client_min_messages=warning';
	@sessions = map {
		my $err = "$dir/session-$generation-$_.err";
		{ err => $err, h => IPC::Run::start(
				[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "CALL replay_loop($_)" ],
				'<', \'', '>', '/dev/null', '2>', $err) }
	} 1 .. 3;
	return;
}

sub finish_sessions
{
	my ($killed) = @_;
	for my $s (@sessions)
	{
		my $ok = eval { $s->{h}->finish; 1 };
		my $err = -s $s->{err} ? slurp_file($s->{err}) : '';
		next if $killed;
		ok($ok && $s->{h}->result == 0 && $err eq '', "session $s->{err}: no error")
		  or diag($err);
	}
	@sessions = ();
	return;
}

my $log_offset = -s $node->logfile;

# 400 messages: r0 and r1 on their partitions, r2 and r4 on both
sub produce_chunk
{
	for my $p (0, 1)
	{
		for (1, 2)
		{
			produce($p, "r$p", 60);
			produce($p, 'r2', 20);
			produce($p, 'r4', 20);
		}
	}
	return;
}

# Committed messages of the group
sub committed
{
	return $node->safe_psql('postgres',
		"SELECT sum(next_offset) FROM driftlock.kafka_offsets WHERE group_id = '$group'");
}

# A stream created while the worker is busy with a chunk
sub create_during_chunk
{
	my ($name) = @_;
	my $from = committed();
	produce_chunk();
	wait_committed($node, $group, $from + 150, 90);
	$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES ('$name', '$config')");
	return;
}

start_sessions();
produce_chunk();
create_during_chunk('r2');

# kill the worker in the middle of the next chunk; the sessions go with it
my ($pid) = worker_pids($node);
my $before = committed();
produce_chunk();
my $seen = wait_committed($node, $group, $before + 200, 90);
kill('KILL', $pid);
note("worker killed with $seen messages committed");
finish_sessions(1);
ok(wait_worker_replaced($node, $pid, 60), 'the worker comes back after kill -9');
start_sessions();
create_during_chunk('r4');
produce_chunk();

wait_caught_up('all produced');
ok(poll_until($node, 'SELECT count(*) = 0 FROM driftlock.dead_letters', 't', 120),
	'every dead letter is replayed in the end');
$node->safe_psql('postgres', 'UPDATE replay_stop SET stop = true');
finish_sessions(0);

# ---------------------------------------------------------------------------
# Every message exactly once
# ---------------------------------------------------------------------------
my ($calls, $sum, $errors, $busy_calls, $waited) = split /\|/, $node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE error IS NULL), coalesce(sum(replayed), 0), count(error),
       count(*) FILTER (WHERE replayed > 0), count(*) FILTER (WHERE waiting > 0)
FROM replay_log});
note("$calls calls replayed $sum dead letters ($busy_calls calls replayed some, $waited saw some waiting"
	  . " for a checkpoint), $errors retried after a deadlock");
my $dead_total = $node->safe_psql('postgres', 'SELECT count(*) FROM dead');
is($total_replayed + $sum, $dead_total, "the calls replayed the $dead_total dead letters: each exactly once");
is($node->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT (topic, part, off)) FROM dead'), '0',
	'no message was set aside twice');

load_messages($node, 'produced', \@rows);

check_offsets_at_end($node, 'produced', $group, 'replays with the worker running');
check_stream_events($node, 'produced',
	"each stream's saved detector learnt each of its messages once, replayed or live");
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies a
LEFT JOIN produced m ON (m.topic, m.part, m.off) = (a.kafka_topic, a.kafka_partition, a.kafka_offset)
LEFT JOIN driftlock.streams s ON s.id = a.stream_id
WHERE m.off IS NULL OR s.name IS DISTINCT FROM m.stream OR a.payload <> convert_to(m.payload, 'UTF8')}),
	'0', 'every anomaly is a produced message of its stream, at its Kafka position');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT m.stream, ' ' ORDER BY m.stream) FROM dead d
JOIN produced m ON (m.topic, m.part, m.off) = (d.topic, d.part, d.off)}),
	'r0 r1 r2 r4', 'the dead letters were messages of the four streams created late');
my %dead_anomalies = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
SELECT m.stream, count(*) FROM driftlock.anomalies a
JOIN dead d ON (d.topic, d.part, d.off) = (a.kafka_topic, a.kafka_partition, a.kafka_offset)
JOIN produced m ON (m.topic, m.part, m.off) = (d.topic, d.part, d.off)
GROUP BY 1 ORDER BY 1});
# how many of a stream's messages became dead letters depends on timing:
# some of them (not necessarily of every stream) must be anomalies
note("anomalies among the replayed dead letters: "
	  . join(' ', map { "$_=" . ($dead_anomalies{$_} // 0) } qw(r0 r1 r2 r4)));
my $replayed_anomalies = 0;
$replayed_anomalies += $_ for values %dead_anomalies;
cmp_ok($replayed_anomalies, '>', 0, 'replayed dead letters are anomalies at their Kafka positions');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies WHERE incident_id IS NULL AND NOT suppressed}),
	'0', 'every anomaly joined an incident');
cmp_ok(count_log_matches($node, qr/drops its detectors and reads its partitions again from their checkpoints/,
		$log_offset), '>', 0, 'the worker started again from its checkpoints after a replay');
note(count_log_matches($node, qr/could not save its detectors: driftlock_replay_dead_letters/, $log_offset)
	  . ' worker checkpoints failed on a concurrent replay and were retried');

# ---------------------------------------------------------------------------
# 3. A checkpoint that waits for the row lock of a replay's state must not
#    write over it: r3 has 40 events learnt live and 50 dead letters; a
#    replay holds its state's row lock, uncommitted, while the worker takes
#    10 more live messages and wants to checkpoint them.  When the replay
#    commits, the worker's save goes through, finds the replay's
#    invalidation and fails; its batch is retried from the checkpoint on
#    the new state: 100 events.  Saved, the worker's would have 50.
# ---------------------------------------------------------------------------
$log_offset = -s $node->logfile;
$events{r3} = [ event_payloads(count => 100, seed => 'r3') ];
$used{r3} = 0;
produce(0, 'r3', 50);
wait_caught_up('r3 missing');
$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES ('r3', '$config')");
my $r3 = stream_id('r3');
produce(0, 'r3', 40);
wait_caught_up('r3 live');
is($node->safe_psql('postgres', "SELECT events FROM driftlock.stream_state WHERE stream_id = '$r3'"),
	'40', 'r3 learnt its 40 live events');

my ($in, $out, $err) = ('', '', '');
my $replay = IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
$in .= "SET client_min_messages = warning;\nBEGIN;\nSELECT replayed FROM driftlock_replay_dead_letters(NULL, '$r3');\n";
$replay->pump until $out =~ /^(\d+)$/m;
is($1, '50', "a replay of r3's 50 dead letters, not committed yet");
produce(0, 'r3', 10);
ok(poll_until($node, q{
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND wait_event_type = 'Lock'}, '1', 60),
	"the worker waits for the replay's locks");
$in .= "COMMIT;\n\\q\n";
$replay->finish;
is($err, '', 'the replay committed');
ok(poll_until($node, "SELECT events FROM driftlock.stream_state WHERE stream_id = '$r3'", '100', 60),
	"r3's saved detector learnt each of its 100 messages once");
cmp_ok(count_log_matches($node, qr/could not save its detectors: driftlock_replay_dead_letters/, $log_offset),
	'>', 0, "the worker's checkpoint failed on the replay's new state, and was retried");
wait_caught_up('r3 done');
is($node->safe_psql('postgres', "SELECT events FROM driftlock.stream_state WHERE stream_id = '$r3'"),
	'100', 'and stays so');

# ---------------------------------------------------------------------------
# 4. Dead letters newer than the checkpoint wait: the worker works through
#    a backlog (produced while it was off) one message per transaction,
#    checkpointing only when its queue happens to be empty
#    (checkpoint_messages is high); r5, missing at first, is created in the
#    middle and its dead letters replayed at once.  None past the
#    partition's checkpoint may be replayed: the worker would learn it
#    again when the replay's invalidation makes it read again from the
#    checkpoint.  (Whether any was past it depends on when the worker
#    found its queue empty: the test cannot fail for that, only catch a
#    double learning when there was one.)
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = off\n");
$node->reload;
ok(poll_until($node, q{
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND query LIKE 'disabled%'}, '1', 60),
	'the worker is off');
$events{r5} = [ event_payloads(count => 450, seed => 'r5', every => 11, quiet => 32) ];
$used{r5} = 0;
my $backlog = 1 + (sort { $b <=> $a } map { $_->[2] } grep { $_->[1] == 0 } @rows)[0];
for (1 .. 40)
{
	produce(0, 'r0', 40);
	produce(0, 'r5', 10);
}
# more waiting in the consumer's queue: less likely to see it empty
produce(1, 'r1', 1000);
$node->append_conf('postgresql.conf',
	"driftlock.kafka_enabled = on\ndriftlock.kafka_max_in_flight = 1\ndriftlock.checkpoint_messages = 100000\n");
my $from = committed();
$node->reload;
wait_committed($node, $group, $from + 200, 90);
$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES ('r5', '$config')");
my $r5 = stream_id('r5');
($replayed, $anomalies, $remaining, $waiting) = split /\|/,
  $node->safe_psql('postgres', "SELECT * FROM driftlock_replay_dead_letters(NULL, '$r5')");
note("in the middle of the backlog: $replayed of r5's dead letters replayed, $waiting waiting");
is($node->safe_psql('postgres', qq{
SELECT coalesce(max(d.off), -1) < (SELECT checkpoint_offset FROM driftlock.kafka_offsets
                                   WHERE group_id = '$group' AND topic = '$topic' AND partition = 0)
FROM dead d
WHERE d.part = 0 AND d.off >= $backlog
  AND NOT EXISTS (SELECT FROM driftlock.dead_letters l
                  WHERE (l.kafka_topic, l.kafka_partition, l.kafka_offset) = (d.topic, d.part, d.off))}),
	't', 'no dead letter past the checkpoint was replayed');
produce(0, 'r5', 50);
wait_caught_up('backlog');
ok(poll_until($node, "SELECT remaining = 0 FROM driftlock_replay_dead_letters(NULL, '$r5')"),
	"r5's dead letters are replayed once behind the checkpoint");
load_messages($node, 'produced_all', \@rows);
check_stream_events($node, 'produced_all',
	"in the end, each stream's saved detector learnt each of its messages once");

$node->stop;
$kafka->stop;
done_testing();
