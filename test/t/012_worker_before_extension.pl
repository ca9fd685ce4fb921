# Kafka worker started before CREATE EXTENSION: it waits, says so once, and
# consumes (from the earliest offset) soon after the extension appears.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events count_log_matches);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic = 'early';
my $group = 'early-group';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('before_extension', $kafka, no_extension => 1, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });

my $waiting = qr/driftlock kafka worker 0 waiting for CREATE EXTENSION driftlock in database "postgres"/;
ok($node->wait_for_log($waiting), 'the worker says it waits for CREATE EXTENSION');

# messages produced before the extension exists are consumed too
my @rows;
produce_events($kafka, $topic, 0, \@rows, stream => 'early',
	payloads => [ event_payloads(count => 50, seed => 'before') ],
	headers => ['X-Stream-Id=early']);

# Let the worker wait through a few of its checks
Time::HiRes::sleep(3);
is(count_log_matches($node, $waiting), 1, 'the waiting message is logged once');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'}),
	'1', 'the waiting worker is running');

my $log_offset = -s $node->logfile;
my $t0 = Time::HiRes::time();
$node->safe_psql('postgres', q{
BEGIN;
CREATE EXTENSION driftlock;
INSERT INTO driftlock.streams (name) VALUES ('early');
COMMIT;});

ok($node->wait_for_log(qr/driftlock kafka worker 0 consuming topic "\Q$topic\E"/, $log_offset),
	'the worker starts consuming after CREATE EXTENSION');
my $delay = Time::HiRes::time() - $t0;
cmp_ok($delay, '<', 8, 'within a few seconds of CREATE EXTENSION')
  or diag("took $delay s");

produce_events($kafka, $topic, 0, \@rows, stream => 'early',
	payloads => [ event_payloads(count => 50, seed => 'after') ],
	headers => ['X-Stream-Id=early']);
ok(wait_offsets($node, $group, \@rows), 'messages from before and after are consumed');
is($node->safe_psql('postgres', q{
SELECT st.events FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id
WHERE s.name = 'early'}), '100', 'all 100 reached the detector once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters'),
	'0', 'no dead letter');
is(count_log_matches($node, $waiting), 1, 'still logged once');

$node->stop;
$kafka->stop;
done_testing();
