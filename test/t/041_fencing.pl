# A worker that stalls mid-batch past the group's session timeout loses its
# partitions; when it wakes up, its batch must not commit over the new
# owner's (offset_fence.c).  Two workers of one server share a topic of 2
# partitions.  A trigger on driftlock.dead_letters holds a batch in pg_sleep
# while a flag is set (a dead letter is written before any lock on the
# stream's rows is taken, so the held batch blocks nobody); the test
# SIGSTOPs a worker held there, waits for the other worker to take its
# partition over and process everything, then SIGCONTs it: its batch is
# fenced (rolled back, logged) and it rejoins.  Every message is processed
# once, with the anomalies of a clean run.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies
  check_offsets_at_end check_stream_events log_since);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $topic  = 'fence';
my $group  = 'fence-group';
my $config = '{"warmup": 30, "alpha": 0.05}';
my $kafka = start_mock_kafka(topics => { $topic => 2 });
my %payloads = map { ("f$_" => [ event_payloads(count => 900, seed => "f$_", every => 23) ]) } 0 .. 1;
my @rows;
sub produce_range
{
	my ($from, $to) = @_;
	for my $p (0 .. 1)
	{
		produce_events($kafka, $topic, $p, \@rows, stream => "f$p",
			payloads => [ @{ $payloads{"f$p"} }[ $from .. $to ] ],
			headers => ["X-Stream-Id=f$p"]);
	}
	return;
}

my $node = worker_node('fencing', $kafka, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id',
	'driftlock.kafka_workers'          => '2',
	# a stopped member leaves the group after 6 s without heartbeats; one
	# that does not poll for 8 s leaves it too
	'driftlock.kafka_properties' =>
	  'session.timeout.ms=6000;heartbeat.interval.ms=500;max.poll.interval.ms=8000' });
$node->safe_psql('postgres', qq{
INSERT INTO driftlock.streams (name, config) VALUES ('f0', '$config'), ('f1', '$config');
CREATE TABLE stall (on_ boolean NOT NULL);
INSERT INTO stall VALUES (false);
CREATE FUNCTION stall_batch() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  WHILE (SELECT on_ FROM stall) LOOP PERFORM pg_sleep(0.05); END LOOP;
  RETURN NEW;
END \$\$;
CREATE TRIGGER stall BEFORE INSERT ON driftlock.dead_letters
  FOR EACH ROW EXECUTE FUNCTION stall_batch();});

produce_range(0, 299);
ok(wait_offsets($node, $group, \@rows, 90), 'both partitions consumed');
for my $w (0, 1)
{
	ok(poll_until($node, qq{SELECT count(*) FROM pg_stat_activity
WHERE application_name = 'driftlock kafka worker $w'}, '1', 30), "worker $w runs");
}

# A message of no stream per partition: both workers are held writing its
# dead letter; catch one there
$node->safe_psql('postgres', 'UPDATE stall SET on_ = true');
my @lost;
produce_events($kafka, $topic, $_, \@lost, stream => 'nosuch', payloads => ['{"held": true}'],
	headers => ['X-Stream-Id=nosuch']) for 0 .. 1;
my $stalled = '';
my $deadline = Time::HiRes::time() + 60;
while (Time::HiRes::time() < $deadline && $stalled eq '')
{
	$stalled = $node->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND wait_event = 'PgSleep' LIMIT 1});
	Time::HiRes::sleep(0.05) if $stalled eq '';
}
isnt($stalled, '', 'a worker is asleep in a batch');
my $log_at = -s $node->logfile;
kill 'STOP', $stalled;
$node->safe_psql('postgres', 'UPDATE stall SET on_ = false');
note("stopped worker pid $stalled");
# the held messages took offset 300 of each partition
push @rows, [ $topic, $_, 300, 'nosuch', '{"held": true}' ] for 0 .. 1;
produce_range(301, 599);

# The other worker takes the stalled one's partition and processes it all
ok(wait_offsets($node, $group, \@rows, 120),
	'the other worker took the partition over and processed every message');
like(log_since($node, $log_at), qr/assigned partitions: fence\[0\]\S*, fence\[1\]/,
	'it was assigned both partitions');

# Wake the stalled worker: its batch must be fenced, not committed
kill 'CONT', $stalled;
ok(poll_until($node, q{SELECT 1}, '1', 10), 'server still answers');
my $fenced = 0;
$deadline = Time::HiRes::time() + 60;
while (Time::HiRes::time() < $deadline)
{
	$fenced = log_since($node, $log_at) =~ /driftlock batch fenced: partition fence\[\d\] has a new owner/;
	last if $fenced;
	Time::HiRes::sleep(0.2);
}
ok($fenced, 'the woken worker logs that its batch was fenced');
like(log_since($node, $log_at), qr/DETAIL:  Its stored next offset is 600; this worker last saw 300,/,
	'with the offsets it found');
like(log_since($node, $log_at), qr/rejoining group "fence-group": its batch was fenced and rolled back/,
	'and rejoins the group');

# The group settles again and goes on
produce_range(600, 899);
ok(wait_offsets($node, $group, \@rows, 120), 'every message consumed after the rejoin');
ok(poll_until($node, q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker'}, '2', 30), 'both workers still run');

load_messages($node, 'produced', [ grep { $_->[3] ne 'nosuch' } @rows ]);
check_offsets_at_end($node, 'produced', $group, 'fenced worker');
check_stream_events($node, 'produced', "fenced worker: each stream's detector saw each of its messages once");
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s/%s:%s', kafka_partition, kafka_offset, reason), ' ' ORDER BY kafka_partition)
FROM driftlock.dead_letters}), '0/300:unknown_stream 1/300:unknown_stream',
	'fenced worker: one dead letter per held message');
check_anomalies($node, 'produced', $config, 'fenced worker');

$node->stop;
$kafka->stop;
done_testing();
