# Streams on demand (driftlock.kafka_auto_create_streams): unknown stream
# names become streams with driftlock.kafka_stream_template and their
# messages are scored as a clean driftlock_detect run would; two workers
# creating the same names at once make one stream each; a UUID naming
# nothing stays an unknown_stream dead letter; past
# driftlock.kafka_max_streams the messages are stream_limit dead letters;
# with the setting off, unknown names are unknown_stream as before.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $template = '{"warmup": 30, "alpha": 0.05}';
my ($scored, $race) = ('ondemand', 'ondemand-race');
my $group = 'ondemand-group';

my $kafka = start_mock_kafka(topics => { $scored => 4, $race => 4 });
my (@scored_rows, @race_rows);

# Every race name on every partition, in the same order: the two workers
# reach each name at about the same time
my @race_names = map { "race-$_" } 0 .. 39;
for my $p (0 .. 3)
{
	produce_events($kafka, $race, $p, \@race_rows, stream => $_,
		payloads => ["{\"host\": \"$_\", \"p\": $p}"], headers => ["X-Stream-Id=$_"])
	  for @race_names;
}
# A scored stream per partition, named by its producer only
for my $p (0 .. 3)
{
	produce_events($kafka, $scored, $p, \@scored_rows, stream => "svc-$p",
		payloads => [ event_payloads(count => 500, seed => "svc-$p") ],
		headers => ["X-Stream-Id=svc-$p"]);
}

my $node = worker_node('auto_create', $kafka, conf => {
	'driftlock.kafka_topic'               => "$scored, $race",
	'driftlock.kafka_group_id'            => $group,
	'driftlock.kafka_stream_id_header'    => 'X-Stream-Id',
	'driftlock.kafka_workers'             => '2',
	'driftlock.kafka_auto_create_streams' => 'on',
	'driftlock.kafka_stream_template'     => $template });
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub metric
{
	my ($name, $reason) = @_;
	my $where = defined $reason ? " AND labels->>'reason' = '$reason'" : '';
	return q1("SELECT value FROM driftlock.metrics WHERE metric = '$name'$where");
}

# A UUID that names no stream, and a name too long for driftlock.streams
my $uuid = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6';
my $long = 'x' x 201;
produce_events($kafka, $scored, 0, \@scored_rows, stream => $uuid,
	payloads => ['{"msg": "by id"}'], headers => ["X-Stream-Id=$uuid"]);
produce_events($kafka, $scored, 0, \@scored_rows, stream => $long,
	payloads => ['{"msg": "too long"}'], headers => ["X-Stream-Id=$long"]);

ok(wait_offsets($node, $group, [ @scored_rows, @race_rows ], 120), 'every partition consumed to the end');

is(q1("SELECT count(*) FROM driftlock.streams"), '44', 'a stream per name: 40 race names and 4 services');
is(q1("SELECT count(DISTINCT name) FROM driftlock.streams WHERE name LIKE 'race-%'"), '40',
	'every race name has its stream');
is(q1("SELECT count(*) FROM driftlock.streams WHERE config = '$template'::jsonb AND NOT learn_only"), '44',
	'each with the template as its config');
is(metric('driftlock_streams_created_total'), '44',
	'driftlock_streams_created_total counts each stream once, whichever worker won');
is(metric('driftlock_events_processed_total'), 4 * 40 + 4 * 500,
	'every message of a created stream was scored, none was lost to a race');
is(q1("SELECT string_agg(reason, ',' ORDER BY kafka_offset) FROM driftlock.dead_letters"),
	'unknown_stream,unknown_stream',
	'a UUID naming nothing and a name longer than 200 characters stay unknown_stream dead letters');
is(q1("SELECT count(*) FROM driftlock.dead_letters WHERE detail LIKE '%\"$uuid\"%'"), '1',
	'the UUID is named in its dead letter');
unlike(slurp_file($node->logfile), qr/duplicate key value|creating a stream failed|retrying a batch/,
	'no batch failed on a race');

my @svc = grep { $_->[3] =~ /^svc-/ } @scored_rows;
load_messages($node, 'produced', \@svc);
check_anomalies($node, 'produced', $template, 'created streams');

# Set and reload; return once new sessions see the value, then give the
# workers a moment to take their turn
sub reload_with
{
	my ($name, $value) = @_;
	q1("ALTER SYSTEM SET $name = '$value'; SELECT pg_reload_conf()");
	poll_until($node, "SELECT current_setting('$name')", $value, 30)
	  or die "$name not reloaded";
	Time::HiRes::sleep(1);
	return;
}

# The limit: 3 more streams, then stream_limit dead letters.  One partition,
# so one worker: the count is exact.
reload_with('driftlock.kafka_max_streams', '47');
produce_events($kafka, $scored, 1, \@scored_rows, stream => "limit-$_",
	payloads => ['{"msg": "limited"}'], headers => ["X-Stream-Id=limit-$_"]) for 0 .. 9;
ok(wait_offsets($node, $group, \@scored_rows, 60), 'the limited names consumed');
is(q1("SELECT string_agg(name, ',' ORDER BY name) FROM driftlock.streams WHERE name LIKE 'limit-%'"),
	'limit-0,limit-1,limit-2', 'streams created up to driftlock.kafka_max_streams');
is(q1("SELECT count(*) FROM driftlock.streams"), '47', 'driftlock.streams holds the limit');
is(q1("SELECT count(*) || ' ' || min(detail) FROM driftlock.dead_letters WHERE reason = 'stream_limit'"),
	'7 driftlock.streams has driftlock.kafka_max_streams (47) streams or more; no stream is created for this name.',
	'the other names are stream_limit dead letters that say the limit and the setting');
is(metric('driftlock_dead_letters_total', 'stream_limit'), '7', 'counted in driftlock_dead_letters_total');
is(metric('driftlock_streams_created_total'), '47', 'and the three created in driftlock_streams_created_total');

# Deleting streams makes room again (counted anew in each batch)
q1("DELETE FROM driftlock.streams WHERE name LIKE 'race-%'");
produce_events($kafka, $scored, 2, \@scored_rows, stream => 'again',
	payloads => ['{"msg": "room again"}'], headers => ['X-Stream-Id=again']);
ok(wait_offsets($node, $group, \@scored_rows, 60), 'the message after the clean-up consumed');
is(q1("SELECT count(*) FROM driftlock.streams WHERE name = 'again'"), '1',
	'after a DELETE, streams are created again');

# Off: unknown names are unknown_stream dead letters as before
reload_with('driftlock.kafka_auto_create_streams', 'off');
produce_events($kafka, $scored, 3, \@scored_rows, stream => 'off-0',
	payloads => ['{"msg": "off"}'], headers => ['X-Stream-Id=off-0']);
ok(wait_offsets($node, $group, \@scored_rows, 60), 'the message sent with the setting off consumed');
is(q1("SELECT count(*) FROM driftlock.streams WHERE name = 'off-0'"), '0', 'no stream created when off');
is(q1("SELECT reason FROM driftlock.dead_letters WHERE detail LIKE '%\"off-0\"%'"), 'unknown_stream',
	'an unknown_stream dead letter instead');

$node->stop;
$kafka->stop;
done_testing();
