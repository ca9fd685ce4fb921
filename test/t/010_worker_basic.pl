# Kafka worker: stream resolution by header and by JSON field, by name and
# by UUID, header over field; anomalies recorded with their Kafka position
# and exact payload; the worker visible in pg_stat_activity.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events load_messages check_anomalies check_incidents
  check_exactly_once);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic  = 'driftlock-events';    # the default topic
my $group  = 'driftlock-api';       # the default group id
my $config = '{"warmup": 30, "alpha": 0.05}';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('basic', $kafka, conf => {
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	'driftlock.kafka_stream_id_field'  => 'metadata.stream_id' });

my %id;
for my $s (qw(alpha beta gamma delta epsilon eta))
{
	$id{$s} = $node->safe_psql('postgres',
		"INSERT INTO driftlock.streams (name, config) VALUES ('$s', '$config') RETURNING id");
}

ok($node->wait_for_log(
		qr/driftlock kafka worker 0 consuming topic "\Q$topic\E" from "\Q@{[$kafka->bootstrap]}\E" as group "\Q$group\E"/),
	'the worker logs what it consumes');

my @rows;
# header, stream name
produce_events($kafka, $topic, 0, \@rows, stream => 'alpha',
	payloads => [ event_payloads(count => 150, seed => 'alpha', every => 47) ],
	headers => ['X-Stream-Id=alpha']);
# JSON field, stream UUID
produce_events($kafka, $topic, 0, \@rows, stream => 'beta',
	payloads => [ event_payloads(count => 150, seed => 'beta', every => 47, stream_id => $id{beta}) ]);
# header, upper-case stream UUID
produce_events($kafka, $topic, 0, \@rows, stream => 'gamma',
	payloads => [ event_payloads(count => 150, seed => 'gamma', every => 47) ],
	headers => [ 'X-Stream-Id=' . uc $id{gamma} ]);
# header and field: the header wins
produce_events($kafka, $topic, 0, \@rows, stream => 'delta',
	payloads => [ event_payloads(count => 60, seed => 'delta', every => 47, stream_id => $id{epsilon}) ],
	headers => ['X-Stream-Id=delta']);
# JSON field, stream name
produce_events($kafka, $topic, 0, \@rows, stream => 'eta',
	payloads => [ event_payloads(count => 60, seed => 'eta', every => 47, stream_id => 'eta') ]);

ok(wait_offsets($node, $group, \@rows), 'the offsets reach the end of the topic');
load_messages($node, 'produced', \@rows);
check_exactly_once($node, 'produced', $group, 'resolution');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM driftlock.stream_state WHERE stream_id = '$id{epsilon}'"),
	'0', 'the stream named by the JSON field got nothing when the header named another');
check_anomalies($node, 'produced', $config, 'resolution');
check_incidents($node, 'produced', $config, 'resolution');

is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies
WHERE kafka_topic = 'driftlock-events' AND kafka_partition = 0 AND kafka_offset >= 0
  AND score IS NOT NULL AND p_value IS NOT NULL AND detected_at IS NOT NULL}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.anomalies'),
	'every anomaly has its Kafka position, score and p-value');

# pg_stat_activity
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s|%s|%s', backend_type, datname, coalesce(query, '') <> ''), ',')
FROM pg_stat_activity WHERE backend_type LIKE 'driftlock%'}),
	'driftlock kafka worker|postgres|t',
	'pg_stat_activity shows the worker, its database and a non-empty activity');
is($node->safe_psql('postgres', q{
SELECT application_name FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'}),
	'driftlock kafka worker 0', 'the worker\'s application_name is "driftlock kafka worker 0"');

# Messages arriving while the worker is idle are picked up promptly
my @more = @rows;
produce_events($kafka, $topic, 0, \@more, stream => 'alpha',
	payloads => [ event_payloads(count => 5, seed => 'alpha-more') ],
	headers => ['X-Stream-Id=alpha']);
ok(wait_offsets($node, $group, \@more, 10), 'messages produced later are consumed within 10 s');

$node->stop;
unlike(slurp_file($node->logfile), qr/(PANIC|TRAP|terminated by signal)/,
	'no crash in the server log');

$kafka->stop;
done_testing();
