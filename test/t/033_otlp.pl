# OpenTelemetry logs from Kafka (driftlock.kafka_format): the same export
# batches, 3 services x 100 log records with injected anomalies, produced
# in otlp_proto to one instance and in otlp_json to another.  Each record is
# an event of its stream (service.name); both instances must reach the same
# verdicts, record by record, flag the injected anomalies, keep a batch that
# cannot be decoded as one invalid_otlp dead letter and records of unknown
# streams as dead letters of their own that driftlock_replay_dead_letters()
# replays, and stay exactly once when the proto instance is killed -9 in
# the middle of the backlog.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  produce_raw source_dir sql_quote wait_committed worker_pids
  restart_after_postmaster_kill);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my %topic = (proto => 'otlp-proto', json => 'otlp-json');
my $group = 'otlp-group';
my @services = map { "svc-$_" } 0 .. 2;
my @injected = (50, 80);
my $garbage = "this is not an export batch\x00\xff";

my $gen = source_dir() . '/test/tools/otlp_gen';
die "$gen not found: run \"make tools\"\n" unless -x $gen;

# One export batch from otlp_gen, as bytes
sub batch
{
	my ($encoding, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $gen, '-e', $encoding, @args ], '>', \$out, '2>', \$err)
	  or die "otlp_gen failed: $err\n";
	return $out;
}

# Messages $from .. $to - 1: batches of seed n + 1, 3 x 100 records, the
# records 50 and 80 of every service anomalous from message 2 on
sub batches
{
	my ($encoding, $from, $to) = @_;
	return map {
		{ headers => [], payload => batch($encoding, '-s', 3, '-r', 100, '-S', $_ + 1,
				$_ >= 2 ? ('-a', join(',', @injected)) : ()) }
	} $from .. $to - 1;
}

my $kafka = start_mock_kafka(topics => { map { ($_ => 1) } values %topic });
my %node;
for my $enc (qw(proto json))
{
	$node{$enc} = worker_node("otlp_$enc", $kafka, conf => {
		'driftlock.kafka_topic'         => $topic{$enc},
		'driftlock.kafka_group_id'      => $group,
		'driftlock.kafka_format'        => "otlp_$enc",
		# several transactions per backlog, so that a kill lands mid-way
		'driftlock.kafka_max_in_flight' => '2' });
	$node{$enc}->safe_psql('postgres',
		'INSERT INTO driftlock.streams (name) VALUES ' . join(', ', map { '(' . sql_quote($_) . ')' } @services));
}
# A switch that holds the proto worker in the batch that would move its
# next offset to stall.at or beyond, before it commits (sleeping, holding
# no lightweight lock), to kill the server there; at null: off
$node{proto}->safe_psql('postgres', q{
CREATE TABLE stall (at bigint);
INSERT INTO stall VALUES (NULL);
CREATE FUNCTION stall_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT NEW.next_offset >= at FROM stall) LOOP PERFORM pg_sleep(0.05); END LOOP;
  RETURN NEW;
END $$;
CREATE TRIGGER stall BEFORE UPDATE ON driftlock.kafka_offsets
  FOR EACH ROW EXECUTE FUNCTION stall_batch();});

sub stall_worker
{
	my ($n) = @_;
	ok(poll_until($n, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND wait_event = 'PgSleep'}, '1', 60),
		'the worker is held in a batch');
	return;
}

is($node{proto}->safe_psql('postgres', 'SHOW driftlock.otlp_stream_attribute'), 'service.name',
	'the stream attribute defaults to service.name');

# ---- 10 messages: 8 batches, one that is not OTLP, one of an unknown service
for my $enc (qw(proto json))
{
	my @m = batches($enc, 0, 8);
	push @m, { headers => [], payload => $garbage };
	push @m, { headers => [], payload => batch($enc, '-s', 1, '-r', 5, '-p', 'new-', '-S', 99) };
	my @offsets = produce_raw($kafka, $topic{$enc}, 0, \@m);
	is("@offsets", join(' ', 0 .. 9), "$enc: 10 messages produced");
}
for my $enc (qw(proto json))
{
	ok(wait_offsets($node{$enc}, $group, [ [ $topic{$enc}, 0, 9 ] ], 120),
		"$enc: the worker consumed the 10 messages");
}

# What an instance recorded, comparable across the two
my $anomalies_sql = q{
SELECT string_agg(format('%s@%s/%s %s %s %s', s.name, a.kafka_offset, a.kafka_record_index,
                         md5(a.payload), round(a.score::numeric, 9), a.p_value),
                  E'\n' ORDER BY a.kafka_offset, a.kafka_record_index)
FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id};
my $events_sql = q{
SELECT string_agg(format('%s:%s', s.name, coalesce(st.events, 0)), ' ' ORDER BY s.name)
FROM driftlock.streams s LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id};

for my $enc (qw(proto json))
{
	# the caught-up worker checkpoints: events are saved
	ok(poll_until($node{$enc}, $events_sql, 'svc-0:800 svc-1:800 svc-2:800', 60),
		"$enc: each service's stream learnt its 800 records once");
}
my %anomalies = map { ($_ => $node{$_}->safe_psql('postgres', $anomalies_sql)) } qw(proto json);
isnt($anomalies{proto}, '', 'anomalies were recorded');
is($anomalies{json}, $anomalies{proto},
	'otlp_json and otlp_proto: the same anomalies, record by record (position, text, score, p-value)');

# The injected records are flagged; the others mostly not
my ($hits, $others) = split /\|/, $node{proto}->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE kafka_record_index % 100 IN (50, 80)),
       count(*) FILTER (WHERE kafka_record_index % 100 NOT IN (50, 80))
FROM driftlock.anomalies WHERE kafka_offset < 8});
my $planted = 6 * 3 * scalar @injected;
note("flagged $hits of $planted injected records, and $others of " . (8 * 300 - $planted) . ' others');
cmp_ok($hits, '>=', $planted / 2, 'at least half of the injected records are flagged');
cmp_ok($others, '<=', 24, 'at most 1% of the normal records are flagged');
is($node{proto}->safe_psql('postgres', q{
SELECT string_agg(DISTINCT payload::text, '') LIKE '%"severity":%'
FROM (SELECT convert_from(payload, 'UTF8') AS payload FROM driftlock.anomalies) a}),
	't', 'an anomaly keeps the rendering of its record that was scored');

# Dead letters: the whole message that is no batch, and each unknown record
for my $enc (qw(proto json))
{
	is($node{$enc}->safe_psql('postgres', qq{
SELECT string_agg(format('%s/%s:%s', kafka_offset, coalesce(kafka_record_index::text, '-'), reason),
                  ' ' ORDER BY kafka_offset, kafka_record_index NULLS FIRST)
FROM driftlock.dead_letters}),
		'8/-:invalid_otlp 9/0:unknown_stream 9/1:unknown_stream 9/2:unknown_stream 9/3:unknown_stream 9/4:unknown_stream',
		"$enc: one dead letter for the message that is no batch, one per record of the unknown service");
	like($node{$enc}->safe_psql('postgres',
			"SELECT detail FROM driftlock.dead_letters WHERE reason = 'invalid_otlp'"),
		qr/not an OpenTelemetry logs batch in otlp_$enc/, "$enc: invalid_otlp says what was expected");
	is($node{$enc}->safe_psql('postgres',
			"SELECT encode(payload, 'hex') FROM driftlock.dead_letters WHERE reason = 'invalid_otlp'"),
		unpack('H*', $garbage), "$enc: the invalid batch is kept as it came");
}

# A record's dead letter holds that record alone as a batch: once its
# stream exists, it replays like a message
for my $enc (qw(proto json))
{
	my $n = $node{$enc};
	$n->safe_psql('postgres', "INSERT INTO driftlock.streams (name) VALUES ('new-0')");
	ok(poll_until($n,
			"SELECT replayed FROM driftlock_replay_dead_letters('unknown_stream')", '5', 60),
		"$enc: the 5 record dead letters are replayed once their stream exists");
	is($n->safe_psql('postgres', $events_sql), 'new-0:5 svc-0:800 svc-1:800 svc-2:800',
		"$enc: their stream learnt the 5 records");
	my ($ret, $out, $err) = $n->psql('postgres',
		"SELECT replayed, remaining FROM driftlock_replay_dead_letters('invalid_otlp')");
	is($out, '0|1', "$enc: the message that is no batch stays");
	like($err, qr/cannot be replayed as the OpenTelemetry log records of one stream.*not an OpenTelemetry logs batch/s,
		"$enc: the notice says why it stays");
}

# ---- exactly once: 30 more messages, the proto instance killed -9 mid-way
# through them.  Its worker is off while they are produced: a worker that
# kept pace with the producer would checkpoint after every batch, and the
# kill would leave nothing to replay.  The seventh (offset 16) is a batch of
# 3 records of a service with no stream: record dead letters.  Its stream
# is created once they are committed, before the kill: the replay after it
# must not teach them to that stream, which never learnt them.
$node{proto}->safe_psql('postgres', 'ALTER SYSTEM SET driftlock.kafka_enabled = off; SELECT pg_reload_conf()');
ok(poll_until($node{proto}, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND query LIKE 'disabled%'}, '1', 30),
	'proto: the worker is disabled');
for my $enc (qw(json proto))
{
	my @m = (batches($enc, 10, 16),
		{ headers => [], payload => batch($enc, '-s', 1, '-r', 3, '-p', 'late-', '-S', 98) },
		batches($enc, 17, 40));
	my @offsets = produce_raw($kafka, $topic{$enc}, 0, \@m);
	is("$offsets[0]..$offsets[-1]", '10..39', "$enc: 30 more messages produced");
}
# held once the late batch (at 16, in a batch of 2) has committed
$node{proto}->safe_psql('postgres', 'UPDATE stall SET at = 19');
$node{proto}->safe_psql('postgres', 'ALTER SYSTEM RESET driftlock.kafka_enabled; SELECT pg_reload_conf()');
my ($pid) = worker_pids($node{proto});
my $seen = wait_committed($node{proto}, $group, 17, 120);
# held in its next batch, the worker cannot finish the backlog (and
# checkpoint) before the kill, whatever the load of the machine; the
# INSERT, committed synchronously, flushes its batches (they commit
# asynchronously)
stall_worker($node{proto});
$node{proto}->safe_psql('postgres', "INSERT INTO driftlock.streams (name) VALUES ('late-0')");
$node{proto}->kill9;
note("killed -9 with $seen messages committed");
cmp_ok($seen, '<', 40, 'the kill came before the end of the backlog');
my $log_at = -s $node{proto}->logfile;
restart_after_postmaster_kill($node{proto}, $pid, 'proto');
$node{proto}->safe_psql('postgres', 'UPDATE stall SET at = NULL');
ok(wait_offsets($node{json}, $group, [ [ $topic{json}, 0, 39 ] ], 180),
	'json: the worker consumed the 40 messages');
$node{json}->safe_psql('postgres', "INSERT INTO driftlock.streams (name) VALUES ('late-0')");
for my $enc (qw(proto json))
{
	ok(wait_offsets($node{$enc}, $group, [ [ $topic{$enc}, 0, 39 ] ], 180),
		"$enc: the worker consumed the 40 messages");
	ok(poll_until($node{$enc}, $events_sql, 'late-0:0 new-0:5 svc-0:3700 svc-1:3700 svc-2:3700', 60),
		"$enc: each record learnt once, none of those set aside");
	is($node{$enc}->safe_psql('postgres', q{
SELECT string_agg(format('%s/%s', kafka_offset, kafka_record_index), ' ' ORDER BY kafka_record_index)
FROM driftlock.dead_letters WHERE reason = 'unknown_stream'}), '16/0 16/1 16/2',
		"$enc: the late service's records are dead letters, once");
}
my ($replay_from) = slurp_file($node{proto}->logfile, $log_at) =~ /will replay otlp-proto\[0\] from offset (\d+)/;
ok(defined $replay_from && $replay_from <= 16,
	'proto: the restarted worker replayed from its checkpoint, before the late records ('
	  . ($replay_from // 'no replay') . ')');
%anomalies = map { ($_ => $node{$_}->safe_psql('postgres', $anomalies_sql)) } qw(proto json);
is($anomalies{proto}, $anomalies{json},
	'after kill -9 and recovery: the same anomalies as the instance that was not killed');
is($node{proto}->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies WHERE kafka_offset >= 10 AND kafka_record_index % 100 IN (50, 80)}),
	$node{json}->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies WHERE kafka_offset >= 10 AND kafka_record_index % 100 IN (50, 80)}),
	'the injected anomalies after the kill are recorded as by the other instance');

# ---- a reload to another format: the worker reconnects, reads on in it
$log_at = -s $node{proto}->logfile;
$node{proto}->safe_psql('postgres', "ALTER SYSTEM SET driftlock.kafka_format = 'otlp_json'; SELECT pg_reload_conf()");
# what comes before the worker has the signal is read in the old format
my $deadline = time() + 30;
sleep 0.1 until slurp_file($node{proto}->logfile, $log_at) =~ /reconnecting: settings changed/ || time() > $deadline;
like(slurp_file($node{proto}->logfile, $log_at), qr/reconnecting: settings changed/,
	'the worker reconnects for the new format');
my @offsets = produce_raw($kafka, $topic{proto}, 0,
	[ { headers => [], payload => batch('json', '-s', 3, '-r', 100, '-S', 41) } ]);
ok(wait_offsets($node{proto}, $group, [ [ $topic{proto}, 0, $offsets[0] ] ], 60),
	'proto, switched to otlp_json: the worker consumed a JSON batch');
ok(poll_until($node{proto}, $events_sql, 'late-0:0 new-0:5 svc-0:3800 svc-1:3800 svc-2:3800', 60),
	'its records are read as records');
is($node{proto}->safe_psql('postgres', "SELECT count(*) FROM driftlock.dead_letters WHERE reason = 'invalid_otlp'"),
	'1', 'no new invalid_otlp dead letter');

is($node{proto}->safe_psql('postgres', q{
SELECT kafka_format || ' ' || otlp_stream_attribute FROM driftlock.kafka_offsets WHERE topic = 'otlp-proto'}),
	'otlp_json service.name', 'the stored offsets say how their messages were read');

# ---- a crash between a change of format and its reload: the messages the
# detectors relearn (since the checkpoint) are read as they were, in
# otlp_json; those after them in the new format, otlp_proto, which makes
# them invalid_otlp dead letters (they are JSON)
$node{proto}->safe_psql('postgres', 'ALTER SYSTEM SET driftlock.kafka_enabled = off; SELECT pg_reload_conf()');
ok(poll_until($node{proto}, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND query LIKE 'disabled%'}, '1', 30),
	'proto: the worker is disabled again');
@offsets = produce_raw($kafka, $topic{proto}, 0, [ map {
	{ headers => [], payload => batch('json', '-s', 3, '-r', 100, '-S', $_) } } 42 .. 61 ]);
my ($first, $last) = ($offsets[0], $offsets[-1]);
$node{proto}->safe_psql('postgres', 'UPDATE stall SET at = ' . ($first + 9));
$node{proto}->safe_psql('postgres', 'ALTER SYSTEM RESET driftlock.kafka_enabled; SELECT pg_reload_conf()');
($pid) = worker_pids($node{proto});
$seen = wait_committed($node{proto}, $group, $first + 7, 120);
stall_worker($node{proto});
# a transaction that writes commits synchronously: the worker's batches so
# far (they commit asynchronously) are flushed with it and survive the kill
$node{proto}->safe_psql('postgres', "ALTER SYSTEM SET driftlock.kafka_format = 'otlp_proto'");
$node{proto}->safe_psql('postgres', 'CREATE TABLE wal_flushed ()');
$node{proto}->kill9;
note("killed -9 with $seen messages committed");
$log_at = -s $node{proto}->logfile;
restart_after_postmaster_kill($node{proto}, $pid, 'format change');
$node{proto}->safe_psql('postgres', 'UPDATE stall SET at = NULL');
ok(wait_offsets($node{proto}, $group, [ [ $topic{proto}, 0, $last ] ], 120),
	'format change: the worker consumed every message');
like(slurp_file($node{proto}->logfile, $log_at),
	qr/driftlock replays otlp-proto\[0\] as otlp_json named by service.name, as it was processed; driftlock.kafka_format is otlp_proto from offset/,
	'format change: the replay reads in the format the messages were processed in');
my $invalid_from = $node{proto}->safe_psql('postgres',
	"SELECT min(kafka_offset) FROM driftlock.dead_letters WHERE reason = 'invalid_otlp' AND kafka_offset >= $first");
cmp_ok($invalid_from, '>', $first, 'format change: the batches before the kill were processed as JSON');
is($node{proto}->safe_psql('postgres',
		"SELECT count(*) FROM driftlock.dead_letters WHERE reason = 'invalid_otlp' AND kafka_offset >= $first"),
	$last - $invalid_from + 1, 'format change: every batch after it is an invalid_otlp dead letter');
my $n = 3800 + 100 * ($invalid_from - $first);
ok(poll_until($node{proto}, $events_sql, "late-0:0 new-0:5 svc-0:$n svc-1:$n svc-2:$n", 60),
	'format change: each record of the JSON batches before the kill learnt once');

# ---- a batch that fails even alone (a trigger rejects its anomaly rows):
# each of its records becomes an insert_failed dead letter, replayable
$node{proto}->safe_psql('postgres', q{
CREATE FUNCTION reject_anomaly() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'anomaly rejected'; END$$;
CREATE TRIGGER reject BEFORE INSERT ON driftlock.anomalies
  FOR EACH ROW EXECUTE FUNCTION reject_anomaly();});
@offsets = produce_raw($kafka, $topic{proto}, 0,
	[ { headers => [], payload => batch('proto', '-s', 3, '-r', 100, '-S', 70, '-a', '50') } ]);
my $poison = $offsets[0];
is($poison, $last + 1, 'poison: a batch with anomalies produced');
ok(wait_offsets($node{proto}, $group, [ [ $topic{proto}, 0, $poison ] ], 120),
	'poison: the worker moved past it');
is($node{proto}->safe_psql('postgres', qq{
SELECT count(*) || ' ' || min(kafka_record_index) || '..' || max(kafka_record_index)
FROM driftlock.dead_letters WHERE kafka_offset = $poison AND reason = 'insert_failed'}),
	'300 0..299', 'poison: each of its 300 records is an insert_failed dead letter');
$node{proto}->safe_psql('postgres', 'DROP TRIGGER reject ON driftlock.anomalies');
ok(poll_until($node{proto},
		"SELECT replayed FROM driftlock_replay_dead_letters('insert_failed')", '300', 60),
	'poison: the 300 are replayed once the trigger is gone');
$n += 100;
ok(poll_until($node{proto}, $events_sql, "late-0:0 new-0:5 svc-0:$n svc-1:$n svc-2:$n", 60),
	'poison: and learnt once each');
cmp_ok($node{proto}->safe_psql('postgres',
		"SELECT count(*) FROM driftlock.anomalies WHERE kafka_offset = $poison"), '>', 0,
	'poison: their anomalies recorded at their positions');

$node{$_}->stop for qw(proto json);
$kafka->stop;
done_testing();
