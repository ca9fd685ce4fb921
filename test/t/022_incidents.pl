# Kafka worker and incidents: one NOTIFY per batch that opens incidents,
# with their ids and severity, none for a suppressed pattern and none when
# driftlock.notify_channel is empty; Kafka timestamps as event time; and
# feedback (driftlock_mark_normal) learnt before the stream's next message,
# replay-safe across kill -9: the same verdicts as driftlock_observe() over
# the same events with the same feedback at the same place.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events load_messages check_exactly_once sql_quote
  worker_pids wait_committed wait_worker_replaced);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic  = 'incidents';
my $group  = 'incidents-group';
my $config = '{"warmup": 30}';

my $kafka = start_mock_kafka(topics => { $topic => 2 });
my $node = worker_node('incidents', $kafka, conf => {
	'restart_after_crash'              => 'on',
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	# one kcat call's messages land in one batch
	'driftlock.kafka_batch_ms'         => '1500',
	'driftlock.kafka_max_in_flight'    => '1000' });
$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES ('n', '$config')");

# ---- notifications

# A psql session that listens; what it has received is printed after the
# result of its next command.
my ($in, $out, $err) = ("LISTEN driftlock_incidents;\nSELECT 'listening';\n", '', '');
my $listener = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(600));
$listener->pump while $out !~ /listening/;

sub notifications
{
	$out = '';
	# a moment for the signal of a commit just made to reach the listener;
	# what came by the end of the first SELECT is printed before the second's
	$in .= "SELECT pg_sleep(0.3);\nSELECT 'flushed';\n";
	$listener->pump while $out !~ /flushed/;
	return [ $out =~ /Asynchronous notification "driftlock_incidents" with payload "(.*)" received from/g ];
}

my @rows;
my @normal = event_payloads(count => 400, seed => 'n', every => 1000000);
sub produce
{
	my (@payloads) = @_;
	produce_events($kafka, $topic, 0, \@rows, stream => 'n', payloads => \@payloads,
		headers => ['X-Stream-Id=n']);
	ok(wait_offsets($node, $group, \@rows), scalar(@payloads) . ' messages processed');
	return;
}

sub failure
{
	my ($kind, $i) = @_;
	return sprintf('{"level":"error","msg":"%s","attempt":%d}', $kind, $i);
}

produce(@normal[ 0 .. 199 ]);
# ordinary events may open an incident now and then (at most about alpha
# of them are flagged): every one opened was announced, once
my @announced = sort { $a <=> $b } map { /"incidents":\[([\d,]*)\]/ ? split(/,/, $1) : () } @{ notifications() };
is(join(',', @announced),
	$node->safe_psql('postgres', "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM driftlock.incidents"),
	'each incident opened so far was announced once');

# two new kinds of failure in one batch: one notification naming both
produce(failure('replica lag exceeded on db-7', 1), failure('certificate expired for api.internal', 1),
	failure('replica lag exceeded on db-7', 2));
my $new = $node->safe_psql('postgres',
	"SELECT string_agg(id::text, ',' ORDER BY id), max(severity) FROM driftlock.incidents WHERE pattern ~ 'replica|certificate'");
my ($ids, $max) = split /\|/, $new;
is(scalar(split /,/, $ids), 2, 'two incidents opened');
is_deeply(notifications(), [qq({"incidents":[$ids],"max_severity":$max})],
	'one notification for the batch, with both incident ids and the highest severity');
is($node->safe_psql('postgres', "SELECT anomalies FROM driftlock.incidents WHERE pattern ~ 'replica'"),
	'2', 'the repeated failure joined its incident');
is($node->safe_psql('postgres', q{
SELECT bool_and(kafka_timestamp IS NOT NULL AND kafka_timestamp BETWEEN now() - interval '10 min' AND now())
FROM driftlock.anomalies}), 't', 'anomalies carry the Kafka message timestamp');
is($node->safe_psql('postgres', q{
SELECT bool_and(first_seen = (SELECT min(kafka_timestamp) FROM driftlock.anomalies a WHERE a.incident_id = i.id))
FROM driftlock.incidents i}), 't', 'an incident is first seen at its first anomaly\'s Kafka timestamp');

# a suppressed pattern: recorded, no incident, no notification
my $disk = failure('disk quota exceeded on /var/lib/spool', 1);
$node->safe_psql('postgres', qq{
SELECT driftlock_suppress(s.id, (driftlock_pattern(@{[sql_quote($disk)]}, s.config)).pattern_id,
                          now() + interval '1 hour', 'planned maintenance')
FROM driftlock.streams s WHERE s.name = 'n'});
my $incidents = $node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.incidents');
produce($disk, failure('disk quota exceeded on /var/lib/spool', 2));
is($node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE suppressed AND incident_id IS NULL) FROM driftlock.anomalies
WHERE convert_from(payload, 'UTF8') ~ 'disk quota'}), '2', 'the suppressed anomalies are recorded without incident');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.incidents'), $incidents,
	'no incident for the suppressed pattern');
is_deeply(notifications(), [], 'no notification for the suppressed pattern');

# notify_channel empty: incidents, but no notification
$node->safe_psql('postgres', "ALTER SYSTEM SET driftlock.notify_channel = ''; SELECT pg_reload_conf()");
ok($node->wait_for_log(qr/parameter "driftlock.notify_channel" changed to ""/), 'the setting is reloaded');
sleep(1);    # the worker reloads at its next turn
produce(failure('kernel oops in module zfs', 1));
is($node->safe_psql('postgres', "SELECT count(*) FROM driftlock.incidents WHERE pattern ~ 'kernel oops'"),
	'1', 'the incident is opened');
is_deeply(notifications(), [], 'no notification when driftlock.notify_channel is empty');
$node->safe_psql('postgres', "ALTER SYSTEM RESET driftlock.notify_channel; SELECT pg_reload_conf()");

$in .= "\\q\n";
$listener->finish;

# ---- feedback, replay-safe across kill -9

# stream f: warm up, one failure, marked normal; then a run of messages
# mixing that failure with normal ones, in small batches, with the worker
# killed in the middle
$node->safe_psql('postgres', "INSERT INTO driftlock.streams (name, config) VALUES ('f', '$config')");
$node->safe_psql('postgres', q{
ALTER SYSTEM SET driftlock.kafka_max_in_flight = 3;
ALTER SYSTEM SET driftlock.kafka_batch_ms = 20;
SELECT pg_reload_conf()});
my @frows;
my @fnormal = event_payloads(count => 600, seed => 'f', every => 1000000);
my $oom = 'kernel: Out of memory: Killed process %d (java) total-vm:%dkB';
my @first = (@fnormal[ 0 .. 99 ], sprintf($oom, 4242, 8123456));
produce_events($kafka, $topic, 1, \@frows, stream => 'f', payloads => \@first, headers => ['X-Stream-Id=f']);
ok(wait_offsets($node, $group, \@frows), 'stream f warmed up');
my $anomaly = $node->safe_psql('postgres', q{
SELECT a.id FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
WHERE s.name = 'f' AND convert_from(a.payload, 'UTF8') ~ 'Out of memory'});
ok($anomaly, 'the failure is an anomaly');
$node->safe_psql('postgres', "SELECT driftlock_mark_normal($anomaly)");

my @second;
for my $i (0 .. 299)
{
	push @second, $i % 10 == 5 ? sprintf($oom, 5000 + $i, 8000000 + 977 * $i) : $fnormal[ 100 + $i ];
}
my $from = scalar(@first);
produce_events($kafka, $topic, 1, \@frows, stream => 'f', payloads => \@second, headers => ['X-Stream-Id=f']);
my ($pid) = worker_pids($node);
my $committed = wait_committed($node, $group, scalar(@rows) + $from + 20, 60);
kill('KILL', $pid);
note("worker killed at $committed messages committed");
ok(wait_worker_replaced($node, $pid, 60), 'the worker comes back after the crash restart');
ok(wait_offsets($node, $group, \@frows, 120), 'stream f processed to the end');

is($node->safe_psql('postgres', q{
SELECT format('%s %s %s', count(*), min(applied_kafka_partition), min(applied_kafka_offset))
FROM driftlock.feedback WHERE applied_at IS NOT NULL}), "1 1 $from",
	'the feedback was applied once, before the first message after it');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
WHERE s.name = 'f' AND convert_from(a.payload, 'UTF8') ~ 'Out of memory' AND a.kafka_offset >= } . $from),
	'0', 'the failure marked normal is not flagged again');

# the clean run: the same events through driftlock_observe() on a stream of
# the same settings, with the same feedback before the same event
load_messages($node, 'fproduced', \@frows);
$node->safe_psql('postgres', qq{
INSERT INTO driftlock.streams (name, config) VALUES ('f_sql', '$config');
CREATE TABLE f_sql AS
SELECT off, driftlock_observe((SELECT id FROM driftlock.streams WHERE name = 'f_sql'), payload) AS v
FROM fproduced WHERE off < $from ORDER BY off;
SELECT driftlock_mark_normal(a.id) FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
WHERE s.name = 'f_sql' AND convert_from(a.payload, 'UTF8') ~ 'Out of memory';
INSERT INTO f_sql
SELECT off, driftlock_observe((SELECT id FROM driftlock.streams WHERE name = 'f_sql'), payload)
FROM fproduced WHERE off >= $from ORDER BY off;});
is($node->safe_psql('postgres', q{
SELECT string_agg(off::text, ' ' ORDER BY off) FROM f_sql WHERE (v).is_anomaly}),
	$node->safe_psql('postgres', q{
SELECT string_agg(a.kafka_offset::text, ' ' ORDER BY a.kafka_offset) FROM driftlock.anomalies a
JOIN driftlock.streams s ON s.id = a.stream_id WHERE s.name = 'f'}),
	'the worker flagged exactly what the clean run in SQL flags');
is($node->safe_psql('postgres', q{
SELECT (SELECT state FROM driftlock.stream_state WHERE stream_id = (SELECT id FROM driftlock.streams WHERE name = 'f'))
     = (SELECT state FROM driftlock.stream_state WHERE stream_id = (SELECT id FROM driftlock.streams WHERE name = 'f_sql'))}),
	't', 'the detector ends in the same state as the clean run');
check_exactly_once($node, 'fproduced', $group, 'feedback across kill -9');

$node->stop;
$kafka->stop;
done_testing();
