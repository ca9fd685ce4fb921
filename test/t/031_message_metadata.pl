# Kafka worker: anomalies and dead letters carry their message's timestamp
# with its type, key and headers, exactly: key bytes (non-UTF-8, NUL, empty,
# null, over the 64 KiB cap), headers in order with null, binary and
# repeated ones, create-time timestamps to the millisecond, and timestamps
# PostgreSQL cannot hold as none.  Also the dead letter of a message whose
# anomaly row fails (insert_failed), and an anomaly of driftlock_observe(),
# which has none of them.
use strict;
use warnings;

use Digest::MD5;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets event_payloads
  produce_raw sql_quote);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'meta';
my $group = 'meta-group';

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('message_metadata', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
# A trigger rejects the anomaly row of the message keyed "poison": its
# batch fails, is retried message by message, and the message becomes an
# insert_failed dead letter (dead_letter_failed in kafka_worker.c).  It
# reads the key the worker writes, so it also checks that the row has it.
$node->safe_psql('postgres', q{
INSERT INTO driftlock.streams (name, config) VALUES ('m', '{"warmup": 30, "alpha": 0.05}');
CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kafka_key = 'poison'::bytea THEN
        RAISE EXCEPTION 'anomaly row keyed poison rejected by trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reject_poison BEFORE INSERT ON driftlock.anomalies
    FOR EACH ROW EXECUTE FUNCTION reject_poison();
});

my $base_ms  = 1700000000123;          # 2023-11-14 22:13:20.123 UTC
my $far_ms   = 9000000000000000;       # year 287,000-odd: PostgreSQL holds it
my $huge_ms  = '9223372036854775807';  # INT64_MAX ms: beyond PostgreSQL's range
my $long_key = join('', map { chr($_ % 251) } 0 .. 69999);   # 70,000 bytes, NULs included

# Bytes no event of the stream looks like: an anomaly for sure.
sub blob
{
	my ($seed) = @_;
	return join('', map { pack('H*', Digest::MD5::md5_hex("$seed:$_")) } 0 .. 39);
}

# The messages, in offset order: { payload, key (undef: null), timestamp
# (ms; undef: librdkafka's now), headers => [[name, value (undef: null)]],
# expect => 'anomaly' | reason | undef (anything: a verdict) }.
my @cases;
my @normal = event_payloads(count => 200, seed => 'meta', every => 1000000);
my $n = 0;
sub normal_messages
{
	my ($count) = @_;
	for (1 .. $count)
	{
		push @cases, { payload => $normal[$n], key => "k$n", timestamp => $base_ms + 1000 * $n,
			headers => [ [ 'X-Stream-Id', 'm' ], [ 'X-Seq', "$n" ] ] };
		$n++;
	}
	return;
}

normal_messages(100);
# a key of bytes that are not UTF-8 (a NUL among them), headers in a given
# order with a null value, a binary value and a repeated name
push @cases, { payload => blob('a1'), key => "\x00\xff\xfe\x80 key", timestamp => $base_ms + 500_000,
	headers => [ [ 'trace', 'abc' ], [ 'X-Stream-Id', 'm' ], [ 'X-Null', undef ],
		[ 'X-Bin', "\xff\x00\x01" ], [ 'dup', '2' ], [ 'dup', '1' ] ],
	expect => 'anomaly' };
normal_messages(20);
# an empty key (not null), a timestamp far in the future
push @cases, { payload => blob('a2'), key => '', timestamp => $far_ms,
	headers => [ [ 'X-Stream-Id', 'm' ] ], expect => 'anomaly' };
normal_messages(20);
# a null key, a timestamp PostgreSQL cannot hold, a key-less header list
push @cases, { payload => blob('a3'), key => undef, timestamp => $huge_ms,
	headers => [ [ 'X-Stream-Id', 'm' ] ], expect => 'anomaly' };
normal_messages(20);
# a key over the cap
push @cases, { payload => blob('a4'), key => $long_key, timestamp => $base_ms + 900_000,
	headers => [ [ 'X-Stream-Id', 'm' ] ], expect => 'anomaly' };
normal_messages(20);
# its anomaly row is rejected: an insert_failed dead letter
push @cases, { payload => blob('a5'), key => 'poison', timestamp => $base_ms + 950_000,
	headers => [ [ 'X-Stream-Id', 'm' ], [ 'X-Null', undef ] ], expect => 'insert_failed' };
normal_messages(5);
# dead letters
push @cases, { payload => '{"x": 1}', key => $long_key, timestamp => $base_ms + 990_000,
	headers => [ [ 'X-Stream-Id', 'nosuch' ], [ 'X-Bin', "\x00" ] ], expect => 'unknown_stream' };
push @cases, { payload => '{"x": 2}', key => "\xc3\x28", timestamp => $huge_ms,
	headers => [], expect => 'missing_stream_id' };
push @cases, { payload => '{"x": 3}', key => '', timestamp => $far_ms,
	headers => [ [ 'X-Null', undef ] ], expect => 'missing_stream_id' };
push @cases, { payload => '{"x": 4}', key => undef, timestamp => undef,
	headers => [ [ 'X-Stream-Id', '' ] ], expect => 'invalid_stream_id' };
normal_messages(5);

my @offsets = produce_raw($kafka, $topic, 0, \@cases);
is(join(',', @offsets), join(',', 0 .. $#cases), 'messages produced in order');
ok(wait_offsets($node, $group, [ [ $topic, 0, $#cases ] ], 180), 'the worker consumed them all');

# What the row must hold: the key's first 64 KiB as hex (or NULL), the
# headers as jsonb's text (or NULL), the timestamp in ms and its type (or
# NULL for none, or for one beyond PostgreSQL's range).
sub json_string
{
	my ($s) = @_;
	return '"\\\\x' . unpack('H*', $s) . '"' if $s =~ /[^\x20-\x7e]/;
	$s =~ s/(["\\])/\\$1/g;
	return qq{"$s"};
}

sub expected
{
	my ($c) = @_;
	my $key = defined $c->{key} ? unpack('H*', substr($c->{key}, 0, 65536)) : 'NULL';
	my $headers = @{ $c->{headers} }
	  ? '[' . join(', ', map {
			'{"key": ' . json_string($_->[0]) . ', "value": '
			  . (defined $_->[1] ? json_string($_->[1]) : 'null') . '}'
		} @{ $c->{headers} }) . ']'
	  : 'NULL';
	my $ts = !defined $c->{timestamp} ? 'now'
	  : $c->{timestamp} eq $huge_ms ? 'NULL|NULL'
	  : "$c->{timestamp}|create_time";
	return "$key|$headers|$ts";
}

# offset => the columns of its row in the format of expected()
sub rows_by_offset
{
	my ($table, $headers, $reason) = @_;
	my $out = $node->safe_psql('postgres', qq{
SELECT kafka_offset, $reason coalesce(encode(kafka_key, 'hex'), 'NULL'), coalesce(${headers}::text, 'NULL'),
       coalesce((extract(epoch FROM kafka_timestamp) * 1000)::bigint::text, 'NULL'),
       coalesce(kafka_timestamp_type, 'NULL')
FROM driftlock.$table WHERE kafka_topic = } . sql_quote($topic));
	return map { split /\|/, $_, 2 } split /\n/, $out;
}
my %anomaly = rows_by_offset('anomalies', 'kafka_headers', '');
my %dead = rows_by_offset('dead_letters', 'headers', 'reason,');

# a timestamp librdkafka set at production: recent, create time
sub now_ok
{
	my ($got, $want) = @_;
	return $got eq $want unless $want =~ /\|now$/;
	my ($prefix, $ms, $type) = $got =~ /^(.*)\|(\d+)\|(\w+)$/ or return 0;
	return "$prefix|now" eq $want && $type eq 'create_time' && abs($ms / 1000 - time) < 3600;
}

my ($checked, $bad) = (0, 0);
for my $off (0 .. $#cases)
{
	my $c = $cases[$off];
	my $want = expected($c);
	if (($c->{expect} // '') eq 'anomaly')
	{
		ok(exists $anomaly{$off}, "offset $off is an anomaly");
	}
	elsif (defined $c->{expect})
	{
		ok(exists $dead{$off} && $dead{$off} =~ /^\Q$c->{expect}\E\|/,
			"offset $off: dead letter $c->{expect}") or diag($dead{$off} // 'no dead letter');
		if (exists $dead{$off})
		{
			(my $got = $dead{$off}) =~ s/^\w+\|//;
			ok(now_ok($got, $want), "offset $off: the dead letter's timestamp, key and headers")
			  or diag("got  $got\nwant $want");
		}
		ok(!exists $anomaly{$off}, "offset $off has no anomaly");
	}
	next unless exists $anomaly{$off};
	$checked++;
	next if now_ok($anomaly{$off}, $want);
	$bad++;
	diag("offset $off: got  $anomaly{$off}\n             want $want");
}
# every anomaly is checked, those of ordinary messages (alpha 0.05) too
is(scalar(keys %anomaly), $checked, 'every anomaly is of a message produced here');
is($bad, 0, "every anomaly ($checked) carries its message's timestamp, key and headers exactly");
is(scalar(keys %dead), scalar(grep { ($_->{expect} // 'anomaly') ne 'anomaly' } @cases),
	'no other dead letter');

# the stored key of the dead letter is the cap's size
is($node->safe_psql('postgres', q{
SELECT string_agg(octet_length(kafka_key)::text, ',' ORDER BY kafka_offset)
FROM driftlock.dead_letters WHERE reason = 'unknown_stream'}), '65536', 'a key is kept up to 64 KiB');

# ---- an event not from Kafka: none of them
$node->safe_psql('postgres', q{
INSERT INTO driftlock.streams (name, config) VALUES ('o', '{"warmup": 30, "alpha": 0.05}')});
my $observe = join(",\n", map { '(' . sql_quote($_) . ')' } @normal[0 .. 59]);
is($node->safe_psql('postgres', qq{
SELECT count(driftlock_observe(s.id, e.p))
FROM driftlock.streams s, (VALUES $observe) AS e (p) WHERE s.name = 'o'}), '60', 'observed 60 events');
$node->safe_psql('postgres', qq{
SELECT driftlock_observe(id, decode(@{[ sql_quote(unpack('H*', blob('o1'))) ]}, 'hex'))
FROM driftlock.streams WHERE name = 'o'});
is($node->safe_psql('postgres', q{
SELECT count(*), count(*) FILTER (WHERE kafka_topic IS NULL AND kafka_timestamp IS NULL
    AND kafka_timestamp_type IS NULL AND kafka_key IS NULL AND kafka_headers IS NULL)
FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
WHERE s.name = 'o' AND a.payload = decode(} . sql_quote(unpack('H*', blob('o1'))) . q{, 'hex')}),
	'1|1', "driftlock_observe()'s anomaly has no Kafka metadata");

$node->stop;
$kafka->stop;
done_testing();
