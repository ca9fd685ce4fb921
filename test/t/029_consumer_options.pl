# Kafka worker: the consumer-side settings.
#  1. driftlock.kafka_topic with two topics and a pattern: one worker
#     consumes every partition of the listed and matching topics, none of
#     the others, with offsets per topic; stream ids from message keys
#     (driftlock.kafka_stream_id_source = 'key, header').
#  2. driftlock.kafka_start = latest: what the topic held before is
#     skipped; the start is stored at assignment, so a restart after more
#     messages arrived skips nothing.
#  3. driftlock.kafka_start = a time stamp: the partition starts where the
#     broker's offset lookup by time says, never before the time.
#  4. driftlock.kafka_strip_schema_header: Confluent-framed JSON scores like
#     the same JSON unframed (driftlock_detect over the unframed payloads),
#     the stream id read after the header; dead letters keep the payload as
#     received; with the setting off, framed JSON is invalid_json.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events produce_raw load_messages check_anomalies
  check_exactly_once check_offsets_at_end check_stream_events sql_quote);
use Digest::MD5 qw(md5_hex);
use IPC::Run ();
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $config = '{"warmup": 30, "alpha": 0.05}';
my $kafka = start_mock_kafka(topics => {
	orders => 2, audit => 1, 'logs-app' => 1, 'logs-web' => 2,    # consumed
	other  => 1, logsx => 1,                                       # not consumed
	late   => 2, stamped => 1, framed => 2, 'framed-off' => 1 });

my $node = worker_node('consumer_options', $kafka, conf => {
	'driftlock.kafka_topic'            => ' orders ,audit,^logs-.* ',
	'driftlock.kafka_group_id'         => 'multi',
	'driftlock.kafka_stream_id_source' => 'key, header',
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$node->safe_psql('postgres',
	"INSERT INTO driftlock.streams (name, config) SELECT s, '$config' FROM unnest(ARRAY["
	  . join(', ', map { sql_quote($_) } qw(s-orders0 s-orders1 s-audit s-app s-web0 s-web1
		  s-other s-late0 s-late1 s-stamp s-framed s-plain)) . ']) s');

# Reload with new settings; when the topic or group changes, wait for the
# worker to consume anew.  Returns the log offset from before.
sub reconfigure
{
	my ($conf, $consuming) = @_;
	my $offset = -s $node->logfile;
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = " . sql_quote($conf->{$_}) . "\n" } sort keys %$conf));
	$node->reload;
	ok($node->wait_for_log(qr/driftlock kafka worker 0 consuming \Q$consuming\E from/, $offset),
		"the worker reconnects: consuming $consuming");
	return $offset;
}

# ---- 1. two topics and a pattern, stream ids from keys ---------------------

is($node->safe_psql('postgres', 'SHOW driftlock.kafka_topic'), 'orders, audit, ^logs-.*',
	'kafka_topic is shown in its canonical form (items trimmed)');
ok($node->wait_for_log(
		qr/driftlock kafka worker 0 consuming topics "orders", "audit", "\^logs-\.\*" from/),
	'the worker logs the topics and the pattern it consumes');

my @rows;
my %ev = (every => 47);
produce_events($kafka, 'orders', 0, \@rows, stream => 's-orders0', key => 's-orders0',
	payloads => [ event_payloads(count => 120, seed => 'orders0', %ev) ]);
# no key: the header, the second source, names the stream
produce_events($kafka, 'orders', 1, \@rows, stream => 's-orders1',
	payloads => [ event_payloads(count => 120, seed => 'orders1', %ev) ],
	headers => ['X-Stream-Id=s-orders1']);
produce_events($kafka, 'audit', 0, \@rows, stream => 's-audit', key => 's-audit',
	payloads => [ event_payloads(count => 100, seed => 'audit', %ev) ]);
# key and header: the key, the first source, wins
produce_events($kafka, 'audit', 0, \@rows, stream => 's-audit', key => 's-audit',
	payloads => [ event_payloads(count => 20, seed => 'audit-more', quiet => 100) ],
	headers => ['X-Stream-Id=s-orders1']);
produce_events($kafka, 'logs-app', 0, \@rows, stream => 's-app', key => 's-app',
	payloads => [ event_payloads(count => 120, seed => 'app', %ev) ]);
produce_events($kafka, 'logs-web', 0, \@rows, stream => 's-web0', key => 's-web0',
	payloads => [ event_payloads(count => 80, seed => 'web0', %ev) ]);
produce_events($kafka, 'logs-web', 1, \@rows, stream => 's-web1', key => 's-web1',
	payloads => [ event_payloads(count => 80, seed => 'web1', %ev) ]);
# neither listed nor matched by ^logs-.*
my @ignored;
produce_events($kafka, $_, 0, \@ignored, stream => 's-other', key => 's-other',
	payloads => [ event_payloads(count => 20, seed => "ignored-$_") ])
  for qw(other logsx);

ok(wait_offsets($node, 'multi', \@rows, 90), 'every partition of the two topics and the pattern is consumed');
load_messages($node, 'multi_rows', \@rows);
check_exactly_once($node, 'multi_rows', 'multi', 'several topics');
check_anomalies($node, 'multi_rows', $config, 'several topics');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT topic, ',' ORDER BY topic) FROM driftlock.kafka_offsets WHERE group_id = 'multi'}),
	'audit,logs-app,logs-web,orders', 'offsets are stored per topic, for the consumed topics only');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id
WHERE s.name = 's-other'}), '0', 'the topics outside the list and the pattern were not read');
ok(poll_until($node, q{
SELECT string_agg(DISTINCT labels->>'topic', ',' ORDER BY labels->>'topic')
FROM driftlock.metrics WHERE metric = 'driftlock_kafka_consumer_lag'},
		'audit,logs-app,logs-web,orders', 20), 'the lag metric has the partitions of every topic');
ok(poll_until($node, q{
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker'
  AND query = 'waiting for messages on topics "orders", "audit", "^logs-.*"'}, '1', 20),
	'pg_stat_activity names the topics and the pattern');

# ---- 2. kafka_start = latest --------------------------------------------------

my @late;
for my $p (0, 1)
{
	produce_events($kafka, 'late', $p, \@late, stream => "s-late$p", key => "s-late$p",
		payloads => [ event_payloads(count => 60, seed => "late-old-$p") ]);
}
my $log = reconfigure({ 'driftlock.kafka_topic' => 'late', 'driftlock.kafka_group_id' => 'late-group',
		'driftlock.kafka_start' => 'latest' }, 'topic "late"');
for my $p (0, 1)
{
	ok($node->wait_for_log(qr/driftlock kafka worker 0 starts late\[$p\] at offset 60 \(driftlock\.kafka_start = 'latest'\)/, $log),
		"latest: late[$p] starts at its end, offset 60");
}
ok(poll_until($node, q{
SELECT string_agg(format('%s:%s/%s', partition, next_offset, checkpoint_offset), ' ' ORDER BY partition)
FROM driftlock.kafka_offsets WHERE group_id = 'late-group'}, '0:60/60 1:60/60', 30),
	'latest: the start is stored at assignment, before any message');
for my $p (0, 1)
{
	produce_events($kafka, 'late', $p, \@late, stream => "s-late$p", key => "s-late$p",
		payloads => [ event_payloads(count => 40, seed => "late-new-$p") ]);
}
ok(wait_offsets($node, 'late-group', \@late), 'latest: the new messages are consumed');
load_messages($node, 'late_new', [ grep { $_->[2] >= 60 } @late ]);
check_stream_events($node, 'late_new', 'latest: the detectors saw only the messages produced after the start');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM driftlock.anomalies WHERE kafka_topic = 'late' AND kafka_offset < 60}) . '/'
	  . $node->safe_psql('postgres', q{SELECT count(*) FROM driftlock.dead_letters WHERE kafka_topic = 'late'}),
	'0/0', 'latest: nothing recorded for the messages before the start');

# applied once: messages that arrive while the server is down are not skipped
$node->stop;
for my $p (0, 1)
{
	produce_events($kafka, 'late', $p, \@late, stream => "s-late$p", key => "s-late$p",
		payloads => [ event_payloads(count => 30, seed => "late-down-$p") ]);
}
$log = -s $node->logfile;
$node->start;
ok(wait_offsets($node, 'late-group', \@late), 'latest: after a restart, the messages produced meanwhile are consumed');
$node->safe_psql('postgres', 'DROP TABLE late_new');
load_messages($node, 'late_new', [ grep { $_->[2] >= 60 } @late ]);
check_stream_events($node, 'late_new',
	'latest: the stored start decides after a restart: nothing produced meanwhile was skipped');
unlike(slurp_file($node->logfile, $log), qr/starts late\[/, 'latest: not applied again after the restart');

# starting over (docs/operations.md): workers off, the group's rows deleted,
# workers on; this system's own Kafka commits do not count, kafka_start does
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = off\n");
$node->reload;
ok(poll_until($node, q{
SELECT count(*) FROM pg_stat_activity WHERE query = 'disabled (driftlock.kafka_enabled is off)'}, '1', 30),
	'start over: the worker is switched off');
$node->safe_psql('postgres', q{DELETE FROM driftlock.kafka_offsets WHERE group_id = 'late-group'});
$log = -s $node->logfile;
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = on\n");
$node->reload;
ok($node->wait_for_log(qr/driftlock kafka worker 0 starts late\[1\] at offset 130 /, $log)
	  && $node->wait_for_log(qr/driftlock kafka worker 0 starts late\[0\] at offset 130 /, $log),
	'start over: with the rows deleted, latest applies again, at the present end');
ok(poll_until($node, q{
SELECT string_agg(format('%s:%s', partition, next_offset), ' ' ORDER BY partition)
FROM driftlock.kafka_offsets WHERE group_id = 'late-group'}, '0:130 1:130', 30),
	'start over: the new start is stored');

# ---- 3. kafka_start = a time stamp -------------------------------------------

my @stamped;
produce_events($kafka, 'stamped', 0, \@stamped, stream => 's-stamp', key => 's-stamp',
	payloads => [ event_payloads(count => 30, seed => 'stamp-before') ]);
Time::HiRes::sleep(1.2);
my $t = Time::HiRes::time();
my $t_ms = int($t * 1000);
my $t_text = POSIX::strftime('%Y-%m-%d %H:%M:%S', gmtime(int $t)) . sprintf('.%03d+00', $t_ms % 1000);
Time::HiRes::sleep(1.2);
produce_events($kafka, 'stamped', 0, \@stamped, stream => 's-stamp', key => 's-stamp',
	payloads => [ event_payloads(count => 30, seed => 'stamp-after') ]);

# where the broker says the time falls (kcat -Q looks offsets up by time)
my ($qout, $qerr) = ('', '');
IPC::Run::run([ 'kcat', '-Q', '-b', $kafka->bootstrap, '-t', "stamped:0:$t_ms" ],
	'<', \'', '>', \$qout, '2>', \$qerr, IPC::Run::timeout(30))
  or die "kcat -Q failed: $qerr\n";
my ($by_time) = $qout =~ /stamped \[0\] offset (-?\d+)/
  or die "kcat -Q said: $qout$qerr\n";
my $expected_start = $by_time >= 0 ? $by_time : 60;
note($by_time >= 0
	? "the broker puts $t_text at offset $by_time"
	: "the broker answers -1 for $t_text: librdkafka's mock cluster has no time index and "
	  . "answers every lookup by time that way, as a broker does when all messages are older; "
	  . "a real broker gives the first offset at or after the time (30 here)");

$log = reconfigure({ 'driftlock.kafka_topic' => 'stamped', 'driftlock.kafka_group_id' => 'stamped-group',
		'driftlock.kafka_start' => $t_text }, 'topic "stamped"');
ok($node->wait_for_log(qr/driftlock kafka worker 0 starts stamped\[0\] at offset $expected_start \(driftlock\.kafka_start = '\Q$t_text\E'\)/, $log),
	"time stamp: stamped[0] starts where the broker says the time falls (offset $expected_start)");
cmp_ok($expected_start, '>=', 30, 'time stamp: never before the first message at or after it');
produce_events($kafka, 'stamped', 0, \@stamped, stream => 's-stamp', key => 's-stamp',
	payloads => [ event_payloads(count => 30, seed => 'stamp-later') ]);
ok(wait_offsets($node, 'stamped-group', \@stamped), 'time stamp: the partition is consumed to its end');
load_messages($node, 'stamped_rows', [ grep { $_->[2] >= $expected_start } @stamped ]);
check_stream_events($node, 'stamped_rows', 'time stamp: the detector saw the messages from the start on, and only those');

# ---- 4. Confluent Schema Registry framing ------------------------------------

reconfigure({ 'driftlock.kafka_topic' => 'framed', 'driftlock.kafka_group_id' => 'framed-group',
		'driftlock.kafka_start' => 'earliest', 'driftlock.kafka_stream_id_source' => 'json',
		'driftlock.kafka_stream_id_field' => 'metadata.stream_id',
		'driftlock.kafka_strip_schema_header' => 'on' }, 'topic "framed"');

my $frame = "\x00\x00\x00\x00\x2a";    # magic byte 0, schema id 42
my @framed;
my @json = event_payloads(count => 120, seed => 'framed', every => 47, stream_id => 's-framed');
# framed JSON on partition 0, a framed message of an unknown stream in the middle
my @first = produce_raw($kafka, 'framed', 0, [ map { { headers => [], payload => $frame . $_ } } @json[ 0 .. 59 ] ]);
my $unknown = $frame . '{"metadata":{"stream_id":"nobody"},"msg":"framed"}';
my ($dead_offset) = produce_raw($kafka, 'framed', 0, [ { headers => [], payload => $unknown } ]);
my @second = produce_raw($kafka, 'framed', 0, [ map { { headers => [], payload => $frame . $_ } } @json[ 60 .. 119 ] ]);
my @offsets = (@first, @second);
push @framed, [ 'framed', 0, $offsets[$_], 's-framed', $json[$_] ] for 0 .. $#json;
# the same kind of JSON unframed on partition 1: left as it is
produce_events($kafka, 'framed', 1, \@framed, stream => 's-plain',
	payloads => [ event_payloads(count => 120, seed => 'plain', every => 47, stream_id => 's-plain') ]);

ok(wait_offsets($node, 'framed-group', \@framed), 'framing: both partitions consumed');
# the table holds the payloads without the header
load_messages($node, 'framed_rows', \@framed);
check_offsets_at_end($node, 'framed_rows', 'framed-group', 'framing');
check_stream_events($node, 'framed_rows', 'framing: each stream counted its messages, framed or not');
check_anomalies($node, 'framed_rows', $config, 'framing (scores of the unframed JSON)');
# 123 is '{': the JSON's first byte, not the header's 0
is($node->safe_psql('postgres', q{
SELECT count(*) > 0 AND bool_and(get_byte(a.payload, 0) = 123)
FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
WHERE s.name = 's-framed'}), 't', 'framing: anomalies hold the scored JSON, without the header');
is($node->safe_psql('postgres', qq{
SELECT format('%s %s %s', kafka_offset, reason, md5(payload)) FROM driftlock.dead_letters WHERE kafka_topic = 'framed'}),
	"$dead_offset unknown_stream " . md5_hex($unknown),
	'framing: the stream id is read after the header; the dead letter keeps the payload as received');

# with the setting off, the same framed JSON is not JSON
reconfigure({ 'driftlock.kafka_topic' => 'framed-off', 'driftlock.kafka_strip_schema_header' => 'off' },
	'topic "framed-off"');
my ($off_offset) = produce_raw($kafka, 'framed-off', 0, [ { headers => [], payload => $frame . $json[0] } ]);
ok(wait_offsets($node, 'framed-group', [ [ 'framed-off', 0, $off_offset ] ]), 'framing off: consumed');
is($node->safe_psql('postgres', q{
SELECT string_agg(reason, ',') FROM driftlock.dead_letters WHERE kafka_topic = 'framed-off'}),
	'invalid_json', 'framing off: framed JSON is a dead letter invalid_json');

$node->stop;
unlike(slurp_file($node->logfile), qr/(PANIC|TRAP|terminated by signal)/, 'no crash in the server log');
$kafka->stop;
done_testing();
