# Kafka worker: the bad-input corpus (test/corpus/bad_input/cases.txt).
# Every case is produced, in file order, to a one-partition topic; each must
# end as a verdict on the stream it names or as a dead letter with the
# reason it names, with its payload and headers kept, while the worker keeps
# running (same pid throughout) and driftlock.streams stays intact.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets worker_pids poll_until
  load_corpus produce_raw source_dir sql_quote count_log_matches);
use Digest::MD5 qw(md5_hex);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'bad-input';
my $group = 'bad-input-group';
my $by_id = '5d0c7e1a-3b2f-4c8d-9e6a-00000000beef';
my @names = ('corpus', q{o'brien"; DROP TABLE driftlock.streams; --},
	'ストリーム', 'back\\slash');

my @cases = load_corpus(source_dir() . '/test/corpus/bad_input/cases.txt');
my %reasons = map { ($_->{reason} => 1) } grep { $_->{expect} eq 'dead' } @cases;
note(scalar(@cases) . ' cases, dead-letter reasons: ' . join(' ', sort keys %reasons));
cmp_ok(scalar @cases, '>=', 30, 'the corpus holds at least 30 kinds of bad input');

my $kafka = start_mock_kafka(topics => { $topic => 1 });
my $node = worker_node('bad_input', $kafka, conf => {
	'driftlock.kafka_topic'             => $topic,
	'driftlock.kafka_group_id'          => $group,
	'driftlock.kafka_stream_id_source'  => 'header, key, json',
	'driftlock.kafka_stream_id_header'  => 'X-Stream-Id',
	'driftlock.kafka_stream_id_field'   => 'meta.stream',
	'driftlock.kafka_max_payload_bytes' => '262144',
	'driftlock.kafka_strip_schema_header' => 'on' });
# bytes, not characters: the names are UTF-8 like the corpus file
$node->safe_psql('postgres',
	'INSERT INTO driftlock.streams (name) VALUES ' . join(', ', map { '(' . sql_quote($_) . ')' } @names)
	  . ", (" . sql_quote('by-id') . ")");
$node->safe_psql('postgres', "UPDATE driftlock.streams SET id = '$by_id' WHERE name = 'by-id'");
ok(poll_until($node,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'", '1', 60),
	'the worker is running');
my ($pid) = worker_pids($node);

my @offsets = produce_raw($kafka, $topic, 0, \@cases);
my @rows = map { [ $topic, 0, $_ ] } @offsets;
ok(wait_offsets($node, $group, \@rows, 120), 'the worker consumed every case');

# What the worker left at each offset
my %dead;
for my $line (split /\n/, $node->safe_psql('postgres', q{
SELECT kafka_offset, reason, encode(convert_to(coalesce(detail, ''), 'UTF8'), 'hex'),
       payload IS NULL, coalesce(md5(payload), ''), coalesce(length(payload), -1),
       coalesce(jsonb_array_length(headers), -1), coalesce(headers @> '[{"truncated": true}]', false)
FROM driftlock.dead_letters WHERE kafka_topic = } . sql_quote($topic)))
{
	my ($off, $reason, $detail, $null, $md5, $len, $nheaders, $truncated) = split /\|/, $line, -1;
	$dead{$off} = { reason => $reason, detail => pack('H*', $detail), null => $null eq 't',
		md5 => $md5, len => $len, nheaders => $nheaders, truncated => $truncated eq 't' };
}

my %events;
for my $i (0 .. $#cases)
{
	my $c = $cases[$i];
	my $d = $dead{ $offsets[$i] };
	if ($c->{expect} eq 'event')
	{
		$events{ $c->{stream} }++;
		ok(!$d, "$c->{name}: scored, no dead letter")
		  or diag("dead letter $d->{reason}: $d->{detail}");
		next;
	}
	if (!ok($d && $d->{reason} eq $c->{reason}, "$c->{name}: dead letter $c->{reason}"))
	{
		diag($d ? "got $d->{reason}: $d->{detail}" : 'no dead letter');
		next;
	}
	if (defined $c->{detail})
	{
		ok(index($d->{detail}, $c->{detail}) >= 0, "$c->{name}: the detail names the problem")
		  or diag("detail: $d->{detail}");
	}
	my $payload = $c->{payload};
	if (!defined $payload)
	{
		ok($d->{null}, "$c->{name}: null payload kept as null");
	}
	else
	{
		my $kept = substr($payload, 0, 65536);
		ok(!$d->{null} && $d->{len} == length($kept) && $d->{md5} eq md5_hex($kept),
			"$c->{name}: payload kept (" . length($kept) . " bytes)");
	}
	my $n = scalar @{ $c->{headers} };
	if ($d->{truncated})
	{
		ok($n > 100 && $d->{nheaders} < $n, "$c->{name}: headers kept, truncated at 64 KiB")
		  or diag("$d->{nheaders} headers recorded, $n sent");
	}
	else
	{
		# a message without headers has null headers
		is($d->{nheaders}, $n == 0 ? -1 : $n, "$c->{name}: headers kept");
	}
}

# No message is counted twice or lost: dead letters + events = messages
is(scalar(keys %dead), scalar(grep { $_->{expect} eq 'dead' } @cases),
	'exactly one dead letter per dead case');
my $state = join("\n", sort split /\n/, $node->safe_psql('postgres', q{
SELECT format('%s=%s', s.name, coalesce(st.events, 0))
FROM driftlock.streams s LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id}));
my %want = (%events);
$want{$_} //= 0 for (@names, 'by-id');
is($state, join("\n", sort map { "$_=$want{$_}" } keys %want),
	"each stream's detector counted exactly its cases")
  or diag("stream_state: $state");

# The worker never crashed and SQL in stream names did nothing
is(join(',', worker_pids($node)), $pid, 'the worker kept its pid: no crash, no restart');
is(count_log_matches($node, qr/terminated by signal|was terminated|server process .* exited with exit code/),
	0, 'no backend or worker terminated abnormally');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.streams'), '5',
	'driftlock.streams intact');

$node->stop;
$kafka->stop;
done_testing();
