# Kafka worker: the bad-input corpus of OpenTelemetry logs batches
# (test/corpus/bad_otlp/cases.txt).  Two instances read the same kinds of
# hostile batches, one in otlp_proto and one in otlp_json, each case
# produced to the topic of its format.  Each message must end as its
# records' events, its records' dead letters (each holding that record
# alone), one whole-message dead letter, or nothing, with its payload and
# headers kept, while the workers keep running (same pid throughout),
# consume every offset, and driftlock.streams stays intact.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets worker_pids poll_until
  load_corpus produce_raw check_corpus source_dir sql_quote count_log_matches stored_offsets);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $group = 'bad-otlp-group';
my @formats = qw(proto json);
my %topic = map { ($_ => "bad-otlp-$_") } @formats;
my $by_id = '5d0c7e1a-3b2f-4c8d-9e6a-00000000beef';
my @names = ('svc', 'hdr', 'keyed', '42', "caf\xef\xbf\xbd",
	q{o'brien"; DROP TABLE driftlock.streams; --}, 'by-id');

my @cases = load_corpus(source_dir() . '/test/corpus/bad_otlp/cases.txt');
my %cases;
for my $c (@cases)
{
	die "case $c->{name} has no format line (proto or json)\n"
	  unless defined $c->{format} && $topic{ $c->{format} };
	push @{ $cases{ $c->{format} } }, $c;
}
my %reasons = map { ($_->{reason} => 1) } map { @{ $_->{dead} } } @cases;
note(scalar(@cases) . ' cases, dead-letter reasons: ' . join(' ', sort keys %reasons));
for my $f (@formats)
{
	cmp_ok(scalar @{ $cases{$f} }, '>=', 25, "the corpus holds at least 25 kinds of bad otlp_$f");
}

# How many log records a batch holds, by the worker's decoder
# (test/tools/otlp_render; a Confluent header stripped first, as the
# workers here do)
sub record_count
{
	my ($f, $payload) = @_;
	my $file = PostgreSQL::Test::Utils::tempdir() . '/batch';
	$payload = substr($payload, 5) if length($payload) >= 5 && substr($payload, 0, 1) eq "\x00";
	PostgreSQL::Test::Utils::append_to_file($file, $payload);
	my ($out, $err) = ('', '');
	IPC::Run::run([ source_dir() . '/test/tools/otlp_render', '-e', $f, $file ], '>', \$out, '2>', \$err)
	  or die "otlp_render failed: $err\n";
	return scalar(() = $out =~ /\n/g);
}

my $kafka = start_mock_kafka(topics => { map { ($_ => 1) } values %topic });
my (%node, %pid);
for my $f (@formats)
{
	$node{$f} = worker_node("bad_otlp_$f", $kafka, conf => {
		'driftlock.kafka_topic'               => $topic{$f},
		'driftlock.kafka_group_id'            => $group,
		'driftlock.kafka_format'              => "otlp_$f",
		'driftlock.kafka_stream_id_source'    => 'header, key',
		'driftlock.kafka_stream_id_header'    => 'X-Stream-Id',
		'driftlock.kafka_max_payload_bytes'   => '262144',
		'driftlock.kafka_strip_schema_header' => 'on' });
	# bytes, not characters: the names are UTF-8 like the corpus file
	$node{$f}->safe_psql('postgres',
		'INSERT INTO driftlock.streams (name) VALUES ' . join(', ', map { '(' . sql_quote($_) . ')' } @names));
	$node{$f}->safe_psql('postgres', "UPDATE driftlock.streams SET id = '$by_id' WHERE name = 'by-id'");
}
for my $f (@formats)
{
	ok(poll_until($node{$f},
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'", '1', 60),
		"$f: the worker is running");
	($pid{$f}) = worker_pids($node{$f});
}

my %offsets;
for my $f (@formats)
{
	$offsets{$f} = [ produce_raw($kafka, $topic{$f}, 0, $cases{$f}) ];
}
for my $f (@formats)
{
	my $last = $offsets{$f}[-1];
	ok(wait_offsets($node{$f}, $group, [ [ $topic{$f}, 0, $last ] ], 120),
		"$f: the worker consumed every case");
	is({ stored_offsets($node{$f}, $group, $topic{$f}) }->{0}, $last + 1,
		"$f: its next offset is the one after the last case");
}

for my $f (@formats)
{
	my $n = $node{$f};
	# Each case's outcome at its offset: dead letters (reason, record
	# index, detail, payload and headers kept), events, or nothing
	my $dead = check_corpus($n, $topic{$f}, $cases{$f}, $offsets{$f}, $f);
	note("$f: $dead dead letters");

	# A record's dead letter holds that record alone, as a batch of the
	# same encoding (the SQL json type cannot take \u0000: another escape instead)
	my $single = $f eq 'json'
	  ? q{json_array_length(replace(convert_from(payload, 'UTF8'), '\u0000', '\u0001')::json
	        #> '{resourceLogs,0,scopeLogs,0,logRecords}') = 1}
	  : q{get_byte(payload, 0) = 10};    # LogsData.resource_logs
	is($n->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE NOT ($single)) FROM driftlock.dead_letters
WHERE kafka_record_index IS NOT NULL}), '0',
		"$f: each record dead letter is a one-record otlp_$f batch");

	# ... which replays like a message: once the stream "nobody" exists,
	# every record dead letter of it is scored there (its headers and key
	# read again), and the records of other unknown streams stay
	my ($of_nobody, $others) = split /\|/, $n->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE detail LIKE '%"nobody"%'), count(*) FILTER (WHERE detail NOT LIKE '%"nobody"%')
FROM driftlock.dead_letters WHERE reason = 'unknown_stream'});
	cmp_ok($of_nobody, '>', 0, "$f: records of the stream nobody are dead letters");
	# a record's dead letter is one record; a whole message's, those of its
	# case (its header or key named nobody for all of them)
	my $nobody_records = 0;
	for my $line (split /\n/, $n->safe_psql('postgres', q{
SELECT kafka_offset, kafka_record_index IS NULL FROM driftlock.dead_letters
WHERE reason = 'unknown_stream' AND detail LIKE '%"nobody"%'}))
	{
		my ($off, $whole) = split /\|/, $line;
		if ($whole ne 't')
		{
			$nobody_records++;
			next;
		}
		my ($i) = grep { $offsets{$f}[$_] == $off } 0 .. $#{ $offsets{$f} };
		$nobody_records += record_count($f, $cases{$f}[$i]{payload});
	}
	$n->safe_psql('postgres', "INSERT INTO driftlock.streams (name) VALUES ('nobody')");
	my ($replayed, $remaining, $waiting) = (0, '', 1);
	my $deadline = time() + 30;
	while ($waiting > 0 && time() < $deadline)
	{
		my ($r, $rem, $w) = split /\|/, $n->safe_psql('postgres',
			"SELECT replayed, remaining, waiting FROM driftlock_replay_dead_letters('unknown_stream')");
		($replayed, $remaining, $waiting) = ($replayed + $r, $rem, $w);
		sleep 1 if $waiting > 0;
	}
	is("$replayed|$remaining|$waiting", "$of_nobody|$others|0",
		"$f: each record dead letter of nobody replayed, the $others of other streams remain");
	is($n->safe_psql('postgres', q{
SELECT st.events FROM driftlock.streams s JOIN driftlock.stream_state st ON st.stream_id = s.id
WHERE s.name = 'nobody'}), $nobody_records, "$f: nobody's detector learnt each of those records once");

	# The workers never crashed and SQL in stream names did nothing
	is(join(',', worker_pids($n)), $pid{$f}, "$f: the worker kept its pid: no crash, no restart");
	is(count_log_matches($n, qr/terminated by signal|was terminated|server process .* exited with exit code/),
		0, "$f: no backend or worker terminated abnormally");
	is($n->safe_psql('postgres', 'SELECT count(*) FROM driftlock.streams'), scalar(@names) + 1,
		"$f: driftlock.streams intact");
}

$node{$_}->stop for @formats;
$kafka->stop;
done_testing();
