# Kafka worker: settings reloaded with pg_reload_conf() -- kafka_topic,
# kafka_enabled off then on, kafka_stream_id_header.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $group = 'hup-group';
my $kafka = start_mock_kafka(topics => { 'topic-a' => 1, 'topic-b' => 1 });
my $node = worker_node('sighup', $kafka, conf => {
	'driftlock.kafka_topic'            => 'topic-a',
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres', q{INSERT INTO driftlock.streams (name) VALUES ('h1')});

my @payloads = event_payloads(count => 200, seed => 'hup');
my @rows;
produce_events($kafka, 'topic-a', 0, \@rows, stream => 'h1',
	payloads => [ @payloads[ 0 .. 19 ] ], headers => ['X-Stream-Id=h1']);
ok(wait_offsets($node, $group, \@rows), 'topic-a consumed');

# Set and reload; return once new sessions see the value, then give the
# worker a moment to take its turn
sub reload_with
{
	my ($name, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'; SELECT pg_reload_conf()");
	poll_until($node, "SELECT current_setting('$name')", $value, 30)
	  or die "$name not reloaded";
	Time::HiRes::sleep(1);
	return;
}

my $events = q{SELECT coalesce(sum(events), 0) FROM driftlock.stream_state};
my $offset_of = sub {
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$group' AND topic = '$topic'");
};

# kafka_topic
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "ALTER SYSTEM SET driftlock.kafka_topic = 'topic-b'; SELECT pg_reload_conf()");
ok($node->wait_for_log(qr/driftlock kafka worker 0 consuming topic "topic-b"/, $log_offset),
	'the worker switches to topic-b');
produce_events($kafka, 'topic-b', 0, \@rows, stream => 'h1',
	payloads => [ @payloads[ 20 .. 39 ] ], headers => ['X-Stream-Id=h1']);
my @ignored;
produce_events($kafka, 'topic-a', 0, \@ignored, stream => 'h1',
	payloads => [ @payloads[ 40 .. 49 ] ], headers => ['X-Stream-Id=h1']);
ok(wait_offsets($node, $group, \@rows), 'topic-b consumed');
is($offset_of->('topic-a'), '20', 'topic-a no longer consumed');
is($node->safe_psql('postgres', $events), '40', '40 messages processed');

# kafka_enabled off: messages wait; on: they are consumed
reload_with('driftlock.kafka_enabled', 'off');
produce_events($kafka, 'topic-b', 0, \@rows, stream => 'h1',
	payloads => [ @payloads[ 50 .. 59 ] ], headers => ['X-Stream-Id=h1']);
Time::HiRes::sleep(3);
is($offset_of->('topic-b'), '20', 'nothing consumed while kafka_enabled is off');
reload_with('driftlock.kafka_enabled', 'on');
ok(wait_offsets($node, $group, \@rows, 30), 'consumption resumes when kafka_enabled is on again');
is($node->safe_psql('postgres', $events), '50', '50 messages processed');

# kafka_stream_id_header
reload_with('driftlock.kafka_stream_id_header', 'X-Alt');
produce_events($kafka, 'topic-b', 0, \@rows, stream => 'h1',
	payloads => [ @payloads[ 60 .. 69 ] ], headers => ['X-Alt=h1']);
ok(wait_offsets($node, $group, \@rows, 30), 'messages with the new header consumed');
is($node->safe_psql('postgres', $events), '60', 'and resolved with the new header');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.dead_letters'), '0', 'no dead letter');

$node->stop;
$kafka->stop;
done_testing();
