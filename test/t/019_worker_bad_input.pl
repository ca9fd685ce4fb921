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
  load_corpus produce_raw check_corpus source_dir sql_quote count_log_matches);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'bad-input';
my $group = 'bad-input-group';
my $by_id = '5d0c7e1a-3b2f-4c8d-9e6a-00000000beef';
my @names = ('corpus', q{o'brien"; DROP TABLE driftlock.streams; --},
	'ストリーム', 'back\\slash');

my @cases = load_corpus(source_dir() . '/test/corpus/bad_input/cases.txt');
my %reasons = map { ($_->{reason} => 1) } map { @{ $_->{dead} } } @cases;
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

# Each case's outcome at its offset: its dead letter (reason, detail,
# payload and headers kept) or its event, and nothing else
check_corpus($node, $topic, \@cases, \@offsets);

# The worker never crashed and SQL in stream names did nothing
is(join(',', worker_pids($node)), $pid, 'the worker kept its pid: no crash, no restart');
is(count_log_matches($node, qr/terminated by signal|was terminated|server process .* exited with exit code/),
	0, 'no backend or worker terminated abnormally');
is($node->safe_psql('postgres', 'SELECT count(*) FROM driftlock.streams'), '5',
	'driftlock.streams intact');

$node->stop;
$kafka->stop;
done_testing();
