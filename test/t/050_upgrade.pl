# Upgrade from 0.1.0: a database made with 0.1.0's install script and
# holding its data is updated with ALTER EXTENSION driftlock UPDATE while the
# 0.2.0 library is loaded.  Before the update the worker waits and the
# functions that need 0.2.0's objects say so; after it, the database has
# exactly the objects, comments and privileges of a fresh 0.2.0 install
# (plus what its users granted), the old rows are intact, a saved detector
# of 0.1.0 is converted (not restarted), and the worker resumes at the
# stored offsets.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events source_dir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'upgrade';
my $group = 'upgrade-group';
# the settings the 0.1.0 state of test/unit/state_v1.h was saved with
my $v1_config = '{"baseline_size": 16, "baseline_bytes": 2048, "warmup": 10, "calibration_size": 20, '
  . '"drift_window": 20, "rebuild_interval": 4, "alpha": 0.1}';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('upgrade', $kafka, no_extension => 1, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });

# ---- a 0.1.0 database with data
$node->safe_psql('postgres', q{CREATE EXTENSION driftlock VERSION '0.1.0'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'driftlock'}),
	'0.1.0', 'installed as 0.1.0');
ok($node->wait_for_log(
		qr/driftlock kafka worker 0 waiting for ALTER EXTENSION driftlock UPDATE in database "postgres": its SQL objects are version 0\.1\.0, the library is version 0\.2\.0/),
	'the worker waits for the update and says why');

# a detector state saved by 0.1.0 (state format 1)
my $h = slurp_file(source_dir() . '/test/unit/state_v1.h');
my $hex = join('', $h =~ /\\x([0-9a-f]{2})/g);
cmp_ok(length($hex), '>', 1000, 'the 0.1.0 state fixture is read');
$node->safe_psql('postgres', qq{
CREATE ROLE upgrade_reader;
GRANT SELECT ON driftlock.anomalies TO upgrade_reader;
INSERT INTO driftlock.streams (id, name, config)
VALUES ('00000000-0000-4000-8000-0000000000b1', 'old', '$v1_config');
INSERT INTO driftlock.stream_state (stream_id, state, events)
VALUES ('00000000-0000-4000-8000-0000000000b1', '\\x$hex', 60);
INSERT INTO driftlock.anomalies (stream_id, payload, score, p_value, explanation, kafka_topic, kafka_partition, kafka_offset)
VALUES ('00000000-0000-4000-8000-0000000000b1', 'old anomaly', 3.5, 0.001, 'Anomalous (0.1.0)', 'elsewhere', 0, 7);
INSERT INTO driftlock.dead_letters (reason, detail) VALUES ('unknown_stream', 'from 0.1.0');});

# messages wait in Kafka while the worker waits
my @rows;
my @payloads = event_payloads(count => 80, seed => 'upgrade', quiet => 20, every => 23);
produce_events($kafka, $topic, 0, \@rows, stream => 'old', payloads => \@payloads,
	headers => ['X-Stream-Id=old']);
sleep(2);
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.kafka_offsets'), '0',
	'nothing consumed before the update');

# functions that work on 0.1.0's objects, and those that need 0.2.0's
is($node->safe_psql('postgres', q{SELECT (driftlock_score(ARRAY['job 1 ok', 'job 2 ok', 'job 3 ok'], 'job 4 ok')).warm}),
	't', 'stateless scoring works before the update (0.1.0 verdict)');
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT driftlock_observe('00000000-0000-4000-8000-0000000000b1'::uuid, 'x'::text)});
like($stderr, qr/driftlock's SQL objects are version 0\.1\.0 but its library is version 0\.2\.0.*HINT:\s+Run ALTER EXTENSION driftlock UPDATE/s,
	'driftlock_observe before the update: a clear error with a hint');

# ---- the update
$node->safe_psql('postgres', 'ALTER EXTENSION driftlock UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'driftlock'}),
	'0.2.0', 'updated to 0.2.0');
ok(wait_offsets($node, $group, \@rows, 90), 'the worker consumes after the update');
is($node->safe_psql('postgres',
		q{SELECT events FROM driftlock.stream_state WHERE stream_id = '00000000-0000-4000-8000-0000000000b1'}),
	60 + scalar(@payloads), 'the 0.1.0 detector state was converted and went on counting');
ok(!$node->log_contains(qr/starting afresh/), 'the converted detector was not restarted');
is($node->safe_psql('postgres', q{
SELECT format('%s|%s|%s|%s', convert_from(payload, 'UTF8'), explanation, incident_id IS NULL, suppressed)
FROM driftlock.anomalies WHERE kafka_topic = 'elsewhere'}),
	'old anomaly|Anomalous (0.1.0)|t|f', 'the 0.1.0 anomaly is intact, with no incident');
is($node->safe_psql('postgres', q{
SELECT count(*) = count(incident_id) AND count(*) = count(pattern_id) FROM driftlock.anomalies
WHERE kafka_topic = 'upgrade'}), 't', 'new anomalies carry their pattern and incident');
is($node->safe_psql('postgres', q{SELECT detail FROM driftlock.dead_letters}), 'from 0.1.0',
	'the dead letter is intact');
is($node->safe_psql('postgres', q{SELECT has_table_privilege('upgrade_reader', 'driftlock.anomalies', 'SELECT')}),
	't', 'a grant made by the users survives the update');

# ---- the same objects as a fresh install
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION driftlock; GRANT SELECT ON driftlock.anomalies TO upgrade_reader');

# every member of the extension with its definition, comments and privileges
# (ACL items sorted: the order of the grants that made them does not matter)
my $catalog = q{
WITH m AS (
  SELECT d.classid, d.objid FROM pg_depend d
  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock'))
SELECT pg_describe_object(m.classid, m.objid, 0) || ' ' || coalesce(
  CASE m.classid
    WHEN 'pg_class'::regclass THEN (
      SELECT format('kind=%s acl=%s comment=%s options=%s', c.relkind, (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) x),
                    obj_description(c.oid, 'pg_class'), c.reloptions)
             || coalesce(' view=' || pg_get_viewdef(c.oid), '')
             || coalesce((SELECT string_agg(format(' col %s %s notnull=%s default=%s acl=%s comment=%s',
                                   a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                   pg_get_expr(ad.adbin, ad.adrelid), (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), col_description(c.oid, a.attnum)),
                                 '' ORDER BY a.attnum)
                          FROM pg_attribute a LEFT JOIN pg_attrdef ad ON (ad.adrelid, ad.adnum) = (a.attrelid, a.attnum)
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
             || coalesce((SELECT string_agg(' constraint ' || con.conname || ' ' || pg_get_constraintdef(con.oid), '' ORDER BY con.conname)
                          FROM pg_constraint con WHERE con.conrelid = c.oid), '')
             || coalesce((SELECT string_agg(' index ' || pg_get_indexdef(i.indexrelid), '' ORDER BY 1)
                          FROM pg_index i WHERE i.indrelid = c.oid), '')
             || coalesce((SELECT string_agg(' trigger ' || pg_get_triggerdef(t.oid), '' ORDER BY t.tgname)
                          FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '')
      FROM pg_class c WHERE c.oid = m.objid)
    WHEN 'pg_proc'::regclass THEN (
      SELECT format('acl=%s comment=%s ', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) x), obj_description(p.oid, 'pg_proc'))
             || CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END
      FROM pg_proc p WHERE p.oid = m.objid)
    WHEN 'pg_type'::regclass THEN (
      SELECT format('acl=%s comment=%s', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(t.typacl) x), obj_description(t.oid, 'pg_type'))
             || coalesce((SELECT string_agg(format(' attr %s %s', a.attname, format_type(a.atttypid, a.atttypmod)), '' ORDER BY a.attnum)
                          FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '')
      FROM pg_type t WHERE t.oid = m.objid)
    WHEN 'pg_namespace'::regclass THEN (
      SELECT format('acl=%s comment=%s', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) x), obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n WHERE n.oid = m.objid)
  END, '')
FROM m ORDER BY 1};
my $upgraded = $node->safe_psql('postgres', $catalog);
my $fresh = $node->safe_psql('fresh', $catalog);
cmp_ok(scalar(split /\n/, $fresh), '>', 40, 'the catalog listing covers the extension\'s objects');
is($upgraded, $fresh, 'the updated database has the objects, comments and privileges of a fresh install');
is($node->safe_psql('postgres', q{SELECT extconfig::regclass[]::text FROM pg_extension WHERE extname = 'driftlock'}),
	$node->safe_psql('fresh', q{SELECT extconfig::regclass[]::text FROM pg_extension WHERE extname = 'driftlock'}),
	'the same tables are dumped with their data');

$node->stop;
$kafka->stop;
done_testing();
