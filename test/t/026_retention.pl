# Retention and the dead-letter payload cap, with the Kafka worker:
#
# - driftlock.dead_letter_rate_limit: in each partition and minute the
#   first N dead letters keep their payload, the others are recorded
#   without it (detail says why, counted in the metrics), also when the
#   batch failed twice and was retried (counts of failed attempts do not
#   use up the limit);
# - driftlock.retention: worker 0 deletes the anomalies, dead letters,
#   closed incidents, applied feedback and ended suppressions older than it,
#   in batches (a backlog of several thousand rows), keeps what is younger,
#   open, pending, active, and the dead letters a replay still needs; logs
#   and counts it; pending feedback of a deleted anomaly is still learnt;
# - driftlock_purge() with the worker running, by a driftlock_admin member;
# - pg_partman 5 (skipped without it): contrib/pg_partman/partition_anomalies.sql
#   turns driftlock.anomalies into a partitioned table with the rows kept;
#   the worker then records exactly the anomalies and incidents of a clean
#   run; the worker's retention, driftlock_purge() and pg_partman's
#   retention delete from it; a dump restores with before_restore.sql.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events load_messages check_anomalies check_incidents
  sql_quote source_dir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic  = 'retention';
my $ptopic = 'retention-partitioned';
my $group  = 'retention-group';
my $limit  = 5;
my $config = '{"warmup": 30, "alpha": 0.05}';

my $kafka = start_mock_kafka(topics => { $topic => 2, $ptopic => 1 });
my $node = worker_node('retention', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	'driftlock.dead_letter_rate_limit' => $limit });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub metric
{
	my ($name, $labels) = @_;
	return q1('SELECT value FROM driftlock.metrics WHERE metric = ' . sql_quote($name)
		  . ' AND labels = ' . sql_quote($labels // '{}') . '::jsonb');
}

my $purged_sql = q{
SELECT string_agg(format('%s=%s', labels->>'table', value), ' ' ORDER BY labels->>'table')
FROM driftlock.metrics WHERE metric = 'driftlock_rows_purged_total'};

sub reload_with
{
	my (%settings) = @_;
	q1(join('', map { "ALTER SYSTEM SET $_ = " . sql_quote($settings{$_}) . ";\n" } sort keys %settings));
	q1('SELECT pg_reload_conf()');
	return;
}

is(q1(q{
SELECT string_agg(format('%s=%s/%s/%s/%s', name, setting, boot_val, coalesce(unit, ''), context), ' ' ORDER BY name)
FROM pg_settings WHERE name IN ('driftlock.retention', 'driftlock.dead_letter_rate_limit')}),
	"driftlock.dead_letter_rate_limit=$limit/1000//sighup driftlock.retention=0/0/min/sighup",
	'dead_letter_rate_limit: default 1000, reload; retention: minutes, default 0 (off), reload');

# ---------------------------------------------------------------------------
# The payload cap, with a batch that fails twice before it commits
q1(q{
CREATE SEQUENCE dead_letter_attempts;
-- the 8th dead letter of partition 0 fails twice: each failed attempt has
-- used up the limit before it fails
CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kafka_partition = 0 AND NEW.kafka_offset = 7 THEN
        IF nextval('dead_letter_attempts') <= 2 THEN
            RAISE EXCEPTION 'dead letter refused (attempt %)', currval('dead_letter_attempts');
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fail_twice BEFORE INSERT ON driftlock.dead_letters
    FOR EACH ROW EXECUTE FUNCTION fail_twice();
});

my @rows;
my %payload;
for my $p ([ 0, 12 ], [ 1, 3 ])
{
	my @payloads = map { sprintf('{"producer": "misconfigured", "n": %d, "pad": "%s"}', $_, 'p' x 500) }
	  1 .. $p->[1];
	my $first = scalar grep { $_->[1] == $p->[0] } @rows;
	produce_events($kafka, $topic, $p->[0], \@rows, stream => undef,
		payloads => \@payloads, headers => ['X-Stream-Id=nosuch']);
	$payload{"$p->[0]/" . ($first + $_)} = $payloads[$_] for 0 .. $#payloads;
}
ok(wait_offsets($node, $group, \@rows), 'the dead letters are consumed');
q1('DROP TRIGGER fail_twice ON driftlock.dead_letters');
is(q1('SELECT last_value FROM dead_letter_attempts'), '3', 'the first two attempts failed');
cmp_ok(scalar(() = slurp_file($node->logfile) =~ /will retry the batch/g), '>=', 2,
	'and the batch was retried');

is(q1("SELECT count(*) FROM driftlock.dead_letters WHERE kafka_topic = '$topic'"), '15',
	'every message is a dead letter, once');
# the minutes are those of received_at; a run may straddle two of them
is(q1(qq{
WITH d AS (
  SELECT payload IS NOT NULL AS kept,
         row_number() OVER (PARTITION BY kafka_partition, floor(extract(epoch FROM received_at) / 60)
                            ORDER BY kafka_offset) AS n
  FROM driftlock.dead_letters WHERE kafka_topic = '$topic')
SELECT count(*) FROM d WHERE kept <> (n <= $limit)}),
	'0', "in each partition and minute, exactly the first $limit dead letters kept their payload");
cmp_ok(q1("SELECT count(*) FROM driftlock.dead_letters WHERE kafka_partition = 0 AND payload IS NULL"),
	'>=', 2, 'partition 0 (12 dead letters) lost some payloads');
is(q1("SELECT count(*) FROM driftlock.dead_letters WHERE kafka_partition = 1 AND payload IS NULL"),
	'0', 'partition 1 (3 dead letters) kept all');
{
	my @kept = split /\n/, q1(qq{
SELECT kafka_partition || '/' || kafka_offset || ' ' || convert_from(payload, 'UTF8')
FROM driftlock.dead_letters WHERE kafka_topic = '$topic' AND payload IS NOT NULL ORDER BY 1});
	my @bad = grep { my ($k, $v) = split / /, $_, 2; ($payload{$k} // '') ne $v } @kept;
	is("@bad", '', 'kept payloads are the messages\' bytes');
}
is(q1(qq{
SELECT count(*) FROM driftlock.dead_letters
WHERE kafka_topic = '$topic' AND payload IS NULL
  AND (reason <> 'unknown_stream' OR headers->0->>'value' <> 'nosuch'
       OR detail !~ '^No stream in driftlock.streams has the id or name "nosuch"\\. The payload \\(\\d+ bytes\\) was not kept: partition \\d of topic $topic has had $limit dead letters with their payloads in this minute \\(driftlock\\.dead_letter_rate_limit\\)\\.\$')}),
	'0', 'a dead letter without payload keeps reason and headers; its detail says why the payload is missing');
ok(poll_until($node, q{
SELECT (SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_dead_letter_payloads_dropped_total')
     = (SELECT count(*) FROM driftlock.dead_letters WHERE payload IS NULL)}, 't', 10),
	'dead_letter_payloads_dropped_total counts them (the failed attempts counted nothing)');
is(metric('driftlock_dead_letters_total', '{"reason": "unknown_stream"}'), '15',
	'dead_letters_total still counts every dead letter');

# ---------------------------------------------------------------------------
# Retention by worker 0: rows of every kind, some old
q1("INSERT INTO driftlock.streams (name, config) VALUES ('ret', '$config')");
produce_events($kafka, $topic, 0, \@rows, stream => 'ret',
	payloads => [ event_payloads(count => 150, seed => 'ret', every => 47) ], headers => ['X-Stream-Id=ret']);
ok(wait_offsets($node, $group, \@rows), 'the events are consumed');
my $anomalies = q1('SELECT count(*) FROM driftlock.anomalies');
cmp_ok($anomalies, '>=', 2, 'they made anomalies');
cmp_ok(q1("SELECT coalesce(checkpoint_offset, next_offset) FROM driftlock.kafka_offsets WHERE group_id = '$group' AND partition = 0"),
	'>', 11, 'partition 0 checkpointed past its dead letters (a replay no longer needs them)');

my $stream = q1("SELECT id FROM driftlock.streams WHERE name = 'ret'");
q1(qq{
-- the older half of the anomalies, the oldest one marked normal (pending feedback)
UPDATE driftlock.anomalies SET detected_at = detected_at - interval '40 days'
WHERE id <= (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM driftlock.anomalies);
SELECT driftlock_mark_normal(min(id)) FROM driftlock.anomalies;
-- partition 0's dead letters, 40 days old
UPDATE driftlock.dead_letters SET received_at = received_at - interval '40 days'
WHERE kafka_topic = '$topic' AND kafka_partition = 0;
-- a partition whose replay would read again offsets 100-199: the dead letter
-- at 150 must stay however old, the one at 50 may go
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset, checkpoint_offset)
VALUES ('replay-guard', 'ghost', 0, 200, 100);
INSERT INTO driftlock.dead_letters (received_at, kafka_topic, kafka_partition, kafka_offset, reason, payload)
VALUES (now() - interval '40 days', 'ghost', 0, 50, 'unknown_stream', 'x'),
       (now() - interval '40 days', 'ghost', 0, 150, 'unknown_stream', 'replay needs me');
-- a backlog: several batches of the worker
INSERT INTO driftlock.dead_letters (received_at, kafka_topic, kafka_partition, kafka_offset, reason, payload)
SELECT now() - interval '35 days' - make_interval(secs => g), 'bulk', 0, g, 'invalid_json', 'not json ['
FROM generate_series(1, 2500) g;
INSERT INTO driftlock.incidents (stream_id, incident_key, pattern_id, pattern, status, severity, anomalies,
                                 first_seen, last_seen, resolved_at)
VALUES ('$stream', 1, 1, 'old resolved', 'resolved', 10, 1, now() - interval '41 days', now() - interval '41 days',
        now() - interval '40 days'),
       ('$stream', 2, 2, 'old but open', 'open', 10, 1, now() - interval '90 days', now() - interval '90 days', NULL);
INSERT INTO driftlock.feedback (stream_id, payload, created_at, applied_at)
VALUES ('$stream', 'learnt long ago', now() - interval '41 days', now() - interval '40 days');
INSERT INTO driftlock.suppressions (stream_id, pattern_id, until, created_at, lifted_at, reason)
VALUES ('$stream', 1, now() + interval '1 day', now() - interval '50 days', now() - interval '40 days', 'lifted long ago'),
       ('$stream', 2, now() + interval '1 day', now() - interval '50 days', NULL, 'active');
});
my %expected = (
	anomalies    => q1("SELECT count(*) FROM driftlock.anomalies WHERE detected_at < now() - interval '30 days'"),
	dead_letters => 12 + 1 + 2500,
	incidents    => 1,
	feedback     => 1,
	suppressions => 1);
cmp_ok($expected{anomalies}, '>=', 1, "$expected{anomalies} old anomalies");
my %before = map { $_ => q1("SELECT count(*) FROM driftlock.$_") } sort keys %expected;
my $kept_anomaly_ids = q1("SELECT string_agg(id::text, ',' ORDER BY id) FROM driftlock.anomalies WHERE detected_at >= now() - interval '30 days'");
my $log_offset = -s $node->logfile;

reload_with('driftlock.retention' => '30d');
ok(poll_until($node, q{
SELECT (SELECT count(*) FROM driftlock.anomalies WHERE detected_at < now() - interval '30 days')
     + (SELECT count(*) FROM driftlock.dead_letters WHERE received_at < now() - interval '30 days')
     + (SELECT count(*) FROM driftlock.incidents WHERE status <> 'open' AND resolved_at < now() - interval '30 days')
     + (SELECT count(*) FROM driftlock.feedback WHERE applied_at < now() - interval '30 days')
     + (SELECT count(*) FROM driftlock.suppressions WHERE lifted_at < now() - interval '30 days')},
		'1', 60), 'worker 0 deletes what is older than driftlock.retention, all but one dead letter');
is(q1(q{SELECT kafka_topic || '/' || kafka_offset || ' ' || convert_from(payload, 'UTF8') FROM driftlock.dead_letters
        WHERE received_at < now() - interval '30 days'}),
	'ghost/150 replay needs me', 'the old dead letter it keeps is the one a replay from the checkpoint would skip');
is(join(' ', map { "$_=" . q1("SELECT count(*) FROM driftlock.$_") } sort keys %expected),
	join(' ', map { "$_=" . ($before{$_} - $expected{$_}) } sort keys %expected),
	'exactly the old rows went, in every table');
is(q1("SELECT string_agg(id::text, ',' ORDER BY id) FROM driftlock.anomalies"), $kept_anomaly_ids,
	'the younger anomalies are all there');
is(q1(q{SELECT string_agg(pattern, ',' ORDER BY id) FROM driftlock.incidents WHERE pattern LIKE 'old%'}),
	'old but open', 'an open incident stays, however old');
is(q1(q{SELECT reason FROM driftlock.suppressions WHERE reason IN ('lifted long ago', 'active')}), 'active',
	'an active suppression stays');
ok(poll_until($node, $purged_sql,
		join(' ', map { "$_=$expected{$_}" } sort keys %expected), 10),
	'driftlock_rows_purged_total counts them by table');
ok($node->wait_for_log(qr/LOG:  driftlock retention deleted \d+ rows older than [^\n]* \(driftlock\.retention\): \Q$expected{anomalies}\E anomalies, 2513 dead letters, 1 incidents, 1 feedback, 1 suppressions/,
		$log_offset), 'one log line sums the run up');

# the feedback of a deleted anomaly: kept, and learnt before the stream's next event
is(q1('SELECT count(*) FROM driftlock.feedback WHERE applied_at IS NULL AND anomaly_id IS NULL'), '1',
	'pending feedback stays when its anomaly goes (anomaly_id NULL)');
produce_events($kafka, $topic, 0, \@rows, stream => 'ret',
	payloads => [ (event_payloads(count => 153, seed => 'ret', every => 47))[ 150 .. 152 ] ],
	headers => ['X-Stream-Id=ret']);
ok(wait_offsets($node, $group, \@rows), 'the worker goes on consuming');
is(q1('SELECT count(*) FROM driftlock.feedback WHERE applied_at IS NULL'), '0', 'and learns that feedback');

# ---------------------------------------------------------------------------
# driftlock_purge() while the worker runs, by a member of driftlock_admin
q1(q{
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN IN ROLE driftlock_admin;
UPDATE driftlock.anomalies SET detected_at = detected_at - interval '10 days'
WHERE id = (SELECT max(id) FROM driftlock.anomalies);
INSERT INTO driftlock.dead_letters (received_at, kafka_topic, kafka_partition, kafka_offset, reason)
SELECT now() - interval '10 days', 'bulk', 1, g, 'invalid_json' FROM generate_series(1, 3) g;
});
is($node->safe_psql('postgres', q{SELECT string_agg(table_name || '=' || rows_deleted, ' ') FROM driftlock_purge('7 days')},
		extra_params => [ '-U', 'carol' ]),
	'anomalies=1 dead_letters=3 incidents=0 feedback=0 suppressions=0',
	'driftlock_purge(\'7 days\'), by a driftlock_admin member: what is older than 7 days, per table');
{
	my ($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM driftlock_purge('7 days')},
		extra_params => [ '-U', 'bob' ]);
	like($err, qr/permission denied for function driftlock_purge/, 'other roles may not call it');
}
$expected{anomalies}++;
$expected{dead_letters} += 3;
ok(poll_until($node, $purged_sql, join(' ', map { "$_=$expected{$_}" } sort keys %expected), 10),
	'driftlock_rows_purged_total counts its rows too');

# ---------------------------------------------------------------------------
# pg_partman: driftlock.anomalies partitioned by detected_at
SKIP:
{
	skip 'pg_partman 5 is not installed (Debian trixie and later: postgresql-NN-partman)', 27
	  unless q1(q{SELECT count(*) FROM pg_available_extension_versions
	              WHERE name = 'pg_partman' AND split_part(version, '.', 1)::int >= 5}) > 0;

	# the workers stop first
	reload_with('driftlock.kafka_enabled' => 'off');
	ok(poll_until($node, q{SELECT query FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'},
			'disabled (driftlock.kafka_enabled is off)', 30), 'the worker is stopped');

	# anomalies of earlier days, for the partitions and the retentions
	q1(qq{
INSERT INTO driftlock.anomalies (stream_id, detected_at, payload, kafka_topic, kafka_partition, kafka_offset)
SELECT '$stream', now() - make_interval(days => d), 'from an earlier day', 'earlier', 0, 10 * d + g
FROM (VALUES (5), (3)) v(d), generate_series(1, 2) g;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
});
	my $rows_sql = 'SELECT count(*) || \' \' || md5(string_agg(a::text, \',\' ORDER BY id)) FROM driftlock.anomalies a';
	my $rows_before = q1($rows_sql);
	$node->command_ok(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f',
			source_dir() . '/contrib/pg_partman/partition_anomalies.sql' ],
		'contrib/pg_partman/partition_anomalies.sql runs');
	is(q1(q{SELECT relkind FROM pg_class WHERE oid = 'driftlock.anomalies'::regclass}), 'p',
		'driftlock.anomalies is partitioned');
	is(q1($rows_sql), $rows_before, 'with the same rows, every column');
	cmp_ok(q1(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'driftlock.anomalies'::regclass}), '>=', 8,
		'in daily partitions from the oldest anomaly on');
	is(q1(q{SELECT count(*) FROM pg_depend WHERE objid = 'driftlock.anomalies'::regclass AND deptype = 'e'}), '0',
		'it is no longer a member of the extension');
	{
		my ($ret, $out, $err) = $node->psql('postgres', q{
INSERT INTO driftlock.anomalies (stream_id, detected_at, payload, kafka_topic, kafka_partition, kafka_offset)
SELECT stream_id, detected_at, payload, kafka_topic, kafka_partition, kafka_offset
FROM driftlock.anomalies WHERE kafka_topic = 'earlier' LIMIT 1});
		like($err, qr/duplicate key value violates unique constraint/,
			'each partition keeps a Kafka message to one anomaly');
		($ret, $out, $err) = $node->psql('postgres', qq{
INSERT INTO driftlock.anomalies (stream_id, payload, kafka_topic, kafka_partition, kafka_offset)
VALUES ('$stream', 'x', 't', 0, 0) ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING});
		like($err, qr/no unique or exclusion constraint matching the ON CONFLICT specification/,
			'a conflict target naming the Kafka position fails on the parent (why the worker names none)');
	}

	# the worker, on another topic, with a retention that changed (a run at
	# once) and rows for it in the default partition
	q1(qq{
INSERT INTO driftlock.streams (name, config) VALUES ('part', '$config');
INSERT INTO driftlock.anomalies (stream_id, detected_at, payload)
SELECT '$stream', now() - interval '60 days', 'from long ago' FROM generate_series(1, 2);
});
	$log_offset = -s $node->logfile;
	reload_with('driftlock.kafka_enabled' => 'on', 'driftlock.kafka_topic' => $ptopic,
		'driftlock.retention' => '31d');
	my @prows;
	produce_events($kafka, $ptopic, 0, \@prows, stream => 'part',
		payloads => [ event_payloads(count => 200, seed => 'part', every => 47) ], headers => ['X-Stream-Id=part']);
	ok(wait_offsets($node, $group, \@prows), 'the worker consumes into the partitioned table');
	load_messages($node, 'part_messages', \@prows);
	check_anomalies($node, 'part_messages', $config, 'partitioned');
	check_incidents($node, 'part_messages', $config, 'partitioned');
	is(q1("SELECT count(*) FROM driftlock.dead_letters WHERE kafka_topic = '$ptopic'"), '0', 'no dead letter');
	ok($node->wait_for_log(qr/driftlock retention deleted \d+ rows older than [^\n]*: 2 anomalies/, $log_offset),
		'the worker\'s retention deletes from the partitioned table');
	cmp_ok(q1('SELECT driftlock_mark_normal(max(id)) FROM driftlock.anomalies'), '>', 0,
		'driftlock_mark_normal() of a partitioned anomaly');

	# driftlock_purge(), then pg_partman's retention, which drops partitions
	is(q1(q{SELECT rows_deleted FROM driftlock_purge('4 days') WHERE table_name = 'anomalies'}), '2',
		'driftlock_purge() deletes from the partitioned table');
	my $recent = q1(q{SELECT count(*) FROM driftlock.anomalies WHERE detected_at > now() - interval '2 days'});
	my $partitions = q1(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'driftlock.anomalies'::regclass});
	q1(q{
UPDATE partman.part_config SET retention = '2 days', retention_keep_table = false
WHERE parent_table = 'driftlock.anomalies';
CALL partman.run_maintenance_proc();
});
	is(q1('SELECT count(*) FROM driftlock.anomalies'), $recent,
		'pg_partman\'s retention drops the partitions older than 2 days, the recent anomalies stay');
	cmp_ok(q1(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'driftlock.anomalies'::regclass}), '<',
		$partitions, 'whole partitions went');
	is(q1(q{
SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'driftlock.anomalies'::regclass
  AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
      < now() - interval '2 days'}),
		'0', 'none of those ending more than 2 days ago is left');

	# a dump restores with before_restore.sql
	reload_with('driftlock.kafka_enabled' => 'off');
	my $dump = PostgreSQL::Test::Utils::tempdir() . '/driftlock.sql';
	$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
	q1('CREATE DATABASE restored');
	$node->command_ok(
		[ 'psql', '-X', '-q', '-d', $node->connstr('restored'), '-f',
			source_dir() . '/contrib/pg_partman/before_restore.sql' ],
		'before_restore.sql prepares an empty database');
	$node->command_ok(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump ],
		'the dump restores without an error');
	my $state_sql = $rows_sql . q{;
SELECT relkind FROM pg_class WHERE oid = 'driftlock.anomalies'::regclass;
SELECT count(*) FROM pg_inherits WHERE inhparent = 'driftlock.anomalies'::regclass;
SELECT string_agg(parent_table || ' ' || retention, ',') FROM partman.part_config;
SELECT last_value FROM driftlock.anomalies_id_seq;
SELECT (SELECT count(*) FROM driftlock.feedback) || ' ' || (SELECT count(*) FROM driftlock.incidents);};
	is($node->safe_psql('restored', $state_sql), q1($state_sql),
		'the restored database: the same anomalies, partitions, pg_partman configuration and sequence');
	my $before_observe = $node->safe_psql('restored', 'SELECT count(*) FROM driftlock.anomalies');
	my $flagged = $node->safe_psql('restored', q{
SELECT (driftlock_observe(id, 'FATAL ledger checksum mismatch on shard 99: zz9%%qx')).is_anomaly
FROM driftlock.streams WHERE name = 'part'});
	is($node->safe_psql('restored', 'SELECT count(*) FROM driftlock.anomalies'),
		$before_observe + ($flagged eq 't' ? 1 : 0), 'and driftlock_observe() records anomalies there');
}

$node->stop;
unlike(slurp_file($node->logfile), qr/(PANIC|TRAP)/, 'no assertion failure in the server log');
$kafka->stop;
done_testing();
