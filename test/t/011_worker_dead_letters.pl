# Kafka worker: every dead-letter reason a producer can cause, with the
# message's position, headers and payload; consumption goes on after them.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets
  kcat_produce_opts event_payloads sql_quote);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'dead';
my $group = 'dl-group';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('dead_letters', $kafka, conf => {
	'driftlock.kafka_topic'             => $topic,
	'driftlock.kafka_group_id'          => $group,
	'driftlock.kafka_stream_id_header'  => 'X-Stream-Id',
	'driftlock.kafka_stream_id_field'   => 'metadata.stream_id',
	'driftlock.kafka_max_payload_bytes' => '80000' });
$node->safe_psql('postgres', q{INSERT INTO driftlock.streams (name) VALUES ('s1')});

my $big = ('A' x 40000) . ('B' x 60000);
my $normal = (event_payloads(count => 1, seed => 'dl'))[0];

# [reason, payload, headers (kcat -H), expected headers (JSON text or a
#  regexp for the value of the single header), expected payload]
my @cases = (
	[ 'payload_too_large', $big, ['X-Stream-Id=s1'],
		'[{"key": "X-Stream-Id", "value": "s1"}]', substr($big, 0, 65536) ],
	[ 'missing_stream_id', '{"a": 1}', [ 'X-Trace=t1', 'X-Null' ],
		'[{"key": "X-Trace", "value": "t1"}, {"key": "X-Null", "value": null}]' ],
	[ 'invalid_stream_id', '{"x": "empty header"}', ['X-Stream-Id='],
		'[{"key": "X-Stream-Id", "value": ""}]' ],
	[ 'invalid_stream_id', '{"x": "long header"}', [ 'X-Stream-Id=' . ('s' x 256) ],
		'[{"key": "X-Stream-Id", "value": "' . ('s' x 256) . '"}]' ],
	[ 'invalid_stream_id', '{"x": "not UTF-8"}', ["X-Stream-Id=\xff\xfeab"],
		qr/ff.*fe/i ],
	[ 'invalid_stream_id', '{"metadata": {"stream_id": 42}}', [], '[]' ],
	[ 'invalid_stream_id', '{"metadata": {"stream_id": ""}}', [], '[]' ],
	[ 'unknown_stream', '{"x": "unknown name"}', ['X-Stream-Id=nosuch'],
		'[{"key": "X-Stream-Id", "value": "nosuch"}]' ],
	[ 'unknown_stream', '{"x": "unknown id"}',
		['X-Stream-Id=00000000-0000-4000-8000-000000000000'],
		'[{"key": "X-Stream-Id", "value": "00000000-0000-4000-8000-000000000000"}]' ],
	[ 'unknown_stream', '{"metadata": {"stream_id": "ghost"}}', [], '[]' ],
	[ 'invalid_json', "not json \xc3\x28 \x00 {", [], '[]' ],
);

for my $c (@cases)
{
	kcat_produce_opts($kafka->bootstrap, $topic, [ $c->[1] ], headers => $c->[2]);
}
# a valid message after the dead letters
kcat_produce_opts($kafka->bootstrap, $topic, [$normal], headers => ['X-Stream-Id=s1']);
my $end = scalar(@cases) + 1;

ok(wait_offsets($node, $group, [ [ $topic, 0, $end - 1 ] ]),
	'the worker consumes past the dead letters');

is($node->safe_psql('postgres', "SELECT count(*) FROM driftlock.dead_letters"),
	scalar(@cases), 'one dead letter per bad message');
is($node->safe_psql('postgres', q{
SELECT st.events FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id
WHERE s.name = 's1'}), '1', 'the valid message after them reached the detector');

for my $off (0 .. $#cases)
{
	my ($reason, $payload, undef, $headers, $stored) = @{ $cases[$off] };
	$stored //= $payload;
	my $row = $node->safe_psql('postgres', qq{
SELECT reason, kafka_topic, kafka_partition, coalesce(headers, '[]')::text,
       encode(payload, 'hex'), jsonb_typeof(headers->0->'value'), headers->0->>'value'
FROM driftlock.dead_letters WHERE kafka_offset = $off});
	my ($got_reason, $got_topic, $got_part, $got_headers, $got_hex, $vtype, $value) =
	  split /\|/, $row, -1;
	is("$got_reason $got_topic $got_part", "$reason $topic 0", "offset $off: reason $reason");
	if (ref $headers)
	{
		is($vtype, 'string', "offset $off: a non-UTF-8 header value is kept as a string");
		like($value // '', $headers, "offset $off: non-UTF-8 header value hex-escaped");
	}
	else
	{
		is($got_headers, $headers, "offset $off: headers");
	}
	ok($got_hex eq unpack('H*', $stored), "offset $off: payload bytes")
	  or diag('length ' . length($got_hex) / 2 . ', expected ' . length($stored));
}

$node->stop;
$kafka->stop;
done_testing();
