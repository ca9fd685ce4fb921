# Failover when the standby lacks the primary's last batches.  The worker
# commits batches without waiting for replication, and commits their
# offsets to Kafka once they are flushed locally; a promoted standby that
# did not receive the last batches finds the group's Kafka offsets beyond
# its own.  They bear its own system identifier (the standby is a copy of
# the primary), so it must process those messages again rather than skip
# to them (kafka_consumer.c).  The test cuts replication, lets the primary
# process more and commit it to Kafka, kills the primary and promotes the
# standby: the standby ends with every message processed exactly once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node wait_offsets poll_until
  event_payloads produce_events load_messages check_anomalies
  check_exactly_once worker_pids);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic  = 'failover';
my $group  = 'failover-group';
my $config = '{"warmup": 30, "alpha": 0.05}';
my $kafka = start_mock_kafka(topics => { $topic => 2 });
my %payloads = map { ("s$_" => [ event_payloads(count => 600, seed => "fo$_", every => 29) ]) } 0 .. 1;
my @rows;
sub produce_range
{
	my ($from, $to) = @_;
	produce_events($kafka, $topic, $_, \@rows, stream => "s$_",
		payloads => [ @{ $payloads{"s$_"} }[ $from .. $to ] ], headers => ["X-Stream-Id=s$_"])
	  for 0 .. 1;
	return;
}

my $primary = worker_node('primary', $kafka, init => { allows_streaming => 1 }, conf => {
	'driftlock.kafka_topic'            => $topic,
	'driftlock.kafka_group_id'         => $group,
	'driftlock.kafka_stream_id_header' => 'X-Stream-Id' });
$primary->safe_psql('postgres',
	qq{INSERT INTO driftlock.streams (name, config) VALUES ('s0', '$config'), ('s1', '$config')});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

produce_range(0, 299);
ok(wait_offsets($primary, $group, \@rows, 60), 'the primary processed the first 300 per partition');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker'}), '0', 'no worker runs on the standby');
unlike(slurp_file($standby->logfile), qr/driftlock kafka worker \d+ consuming/,
	'the standby never consumed');

# Cut replication, let the primary go on alone
$standby->safe_psql('postgres', q{ALTER SYSTEM SET primary_conninfo = ''; SELECT pg_reload_conf()});
ok(poll_until($standby, 'SELECT count(*) FROM pg_stat_wal_receiver', '0', 30), 'replication cut');
produce_range(300, 449);
ok(wait_offsets($primary, $group, \@rows, 60), 'the primary processed 150 more per partition');
# stopping the worker commits its offsets to Kafka synchronously: then the
# group's Kafka offsets are surely past what the standby has
my ($pid) = worker_pids($primary);
$primary->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(poll_until($primary, qq{SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'driftlock kafka worker' AND pid <> $pid}, '1', 30), 'its worker restarted');
$primary->stop('immediate');

# Promote the standby; more messages come meanwhile
my $log_at = -s $standby->logfile;
$standby->promote;
produce_range(450, 599);
ok(wait_offsets($standby, $group, \@rows, 120), 'the promoted standby consumed to the end');
my $log = slurp_file($standby->logfile, $log_at);
like($log, qr/driftlock will process failover\[\d\] again from offset 300: the group's Kafka offset 450 was committed by this system before a failover/,
	'it processed again what only the old primary had');

load_messages($standby, 'produced', \@rows);
check_exactly_once($standby, 'produced', $group, 'promoted standby');
check_anomalies($standby, 'produced', $config, 'promoted standby');

$standby->stop;
$kafka->stop;
done_testing();
