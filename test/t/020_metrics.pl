# Metrics: the driftlock.metrics view and driftlock_prometheus() against
# the tables after a run of the Kafka worker (events, anomalies, per-stream
# rows and the driftlock.metrics_max_streams overflow, dead letters per
# reason, consumer lag, the batch histogram); the text passes promtool;
# prometheus-postgres-exporter with contrib/prometheus-postgres-exporter/
# queries.yaml serves the same values; who may read and reset; what the
# counters survive (worker SIGTERM, clean restart with metrics_save) and what
# they do not (reset, crash restart, clean restart with metrics_save off);
# without preloading the view is a clear error.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka worker_node poll_until wait_offsets
  event_payloads produce_events kcat_produce_opts worker_pids sql_quote
  source_dir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run ();
use Time::HiRes ();

my $topic  = 'metrics-events';
my $group  = 'metrics-group';
my $config = '{"warmup": 30, "alpha": 0.05}';
# a name that needs escaping in the Prometheus text format
my $alpha = 'alpha "q" \\ x';
my $alpha_prom = 'alpha \\"q\\" \\\\ x';

# gauges: current state, not counts
my @gauges = qw(driftlock_kafka_consumer_lag driftlock_detectors_active driftlock_detector_cache_bytes
  driftlock_incidents_open driftlock_stats_reset_time_seconds);
my $not_gauge = 'metric NOT IN (' . join(', ', map { sql_quote($_) } @gauges) . ')';
my $counted = "$not_gauge AND metric <> 'driftlock_worker_restarts_total'";

# the exporter, if started: stopped at the end whatever happens
my $exporter;
END { $exporter->kill_kill if $exporter && $exporter->pumpable; }

my $kafka = start_mock_kafka(topics => { $topic => 2 });
my $node = worker_node('metrics', $kafka, conf => {
	'restart_after_crash'               => 'on',
	'driftlock.kafka_topic'             => $topic,
	'driftlock.kafka_group_id'          => $group,
	'driftlock.kafka_stream_id_header'  => 'X-Stream-Id',
	'driftlock.kafka_stream_id_field'   => 'metadata.stream_id',
	'driftlock.metrics_max_streams'     => '2' });
my $started_at = time;

my %id;
for my $s ($alpha, 'beta', 'gamma')
{
	$id{$s} = $node->safe_psql('postgres',
		'INSERT INTO driftlock.streams (name, config) VALUES (' . sql_quote($s)
		  . ", '$config') RETURNING id");
}

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# value of a global metric (labels '{}' unless given)
sub metric
{
	my ($name, $labels) = @_;
	return q1('SELECT value FROM driftlock.metrics WHERE metric = ' . sql_quote($name)
		  . ' AND stream_id IS NULL AND labels = ' . sql_quote($labels // '{}') . '::jsonb');
}

# every row of the metrics matching $where, one per line
sub snapshot
{
	my ($where) = @_;
	return q1(qq{
SELECT string_agg(format('%s %s %s = %s', metric, stream_id, labels, value), E'\\n'
                  ORDER BY metric, stream_id, labels::text)
FROM driftlock.metrics WHERE $where});
}

# ---------------------------------------------------------------------------
# The settings
is(q1(q{
SELECT string_agg(format('%s=%s/%s/%s', name, setting, boot_val, context), ' ' ORDER BY name)
FROM pg_settings WHERE name IN ('driftlock.metrics_max_streams', 'driftlock.metrics_save')}),
	'driftlock.metrics_max_streams=2/1000/postmaster driftlock.metrics_save=on/on/sighup',
	'metrics_max_streams: default 1000, restart-only; metrics_save: default on, reload');

# ---------------------------------------------------------------------------
# A run: alpha on partition 0 and beta on partition 1 first (they take the
# two per-stream slots), then gamma (overflow) and dead letters of two reasons
my @rows;
produce_events($kafka, $topic, 0, \@rows, stream => $alpha,
	payloads => [ event_payloads(count => 150, seed => 'alpha', every => 47) ],
	headers => ["X-Stream-Id=$alpha"]);
produce_events($kafka, $topic, 1, \@rows, stream => 'beta',
	payloads => [ event_payloads(count => 150, seed => 'beta', every => 47) ],
	headers => ['X-Stream-Id=beta']);
ok(wait_offsets($node, $group, \@rows), 'the first two streams are consumed');

produce_events($kafka, $topic, 0, \@rows, stream => 'gamma',
	payloads => [ event_payloads(count => 100, seed => 'gamma', every => 31) ],
	headers => ['X-Stream-Id=gamma']);
my @dead = (
	[ 'unknown_stream', '{"x": 1}', ['X-Stream-Id=nosuch'] ],
	[ 'unknown_stream', '{"metadata": {"stream_id": "ghost"}}', [] ],
	[ 'invalid_json', 'not json {', [] ],
	[ 'invalid_json', '{"a": ', [] ],
	[ 'invalid_json', '[1, 2', [] ]);
for my $d (@dead)
{
	produce_events($kafka, $topic, 1, \@rows, stream => undef,
		payloads => [ $d->[1] ], headers => $d->[2]);
}
ok(wait_offsets($node, $group, \@rows), 'the offsets reach the end of both partitions');
is(q1('SELECT count(*) FROM driftlock.dead_letters'), scalar(@dead), 'the dead letters are there');

# driftlock_observe() counts too
my @observed = event_payloads(count => 5, seed => 'observed');
q1(join('', map { "SELECT driftlock_observe('$id{$alpha}', " . sql_quote($_) . ");\n" } @observed));

my $events = @rows - @dead + @observed;
note("$events events, " . q1('SELECT count(*) FROM driftlock.anomalies') . ' anomalies');

# ---------------------------------------------------------------------------
# The counters equal the tables
is(metric('driftlock_events_processed_total'), $events,
	'events_processed_total = messages - dead letters + driftlock_observe() calls');
is(metric('driftlock_events_processed_total'),
	q1('SELECT sum(events) FROM driftlock.stream_state'),
	'events_processed_total = the events the stream detectors saw');
cmp_ok(q1('SELECT count(*) FROM driftlock.anomalies'), '>', 0, 'the run found anomalies');
is(metric('driftlock_anomalies_detected_total'), q1('SELECT count(*) FROM driftlock.anomalies'),
	'anomalies_detected_total = rows of driftlock.anomalies');
cmp_ok(q1('SELECT count(*) FROM driftlock.incidents'), '>', 0, 'the anomalies opened incidents');
is(q1(q{SELECT sum(value) FROM driftlock.metrics WHERE metric = 'driftlock_incidents_total'}),
	q1('SELECT count(*) FROM driftlock.incidents'),
	'incidents_total, summed over the severity bands = rows of driftlock.incidents');
is(q1(q{SELECT sum(value) FROM driftlock.metrics WHERE metric = 'driftlock_incidents_open'}),
	q1(q{SELECT count(*) FROM driftlock.incidents WHERE status = 'open'}),
	'incidents_open = open rows of driftlock.incidents');

is(q1(q{
SELECT string_agg(format('%s %s %s %s', stream_id, labels->>'stream', e.value, a.value), E'\n'
                  ORDER BY labels->>'stream')
FROM driftlock.metrics e
JOIN driftlock.metrics a USING (stream_id, labels)
WHERE e.metric = 'driftlock_stream_events_total' AND a.metric = 'driftlock_stream_anomalies_total'}),
	q1(qq{
SELECT string_agg(format('%s %s %s %s', s.id, s.name, st.events,
                         (SELECT count(*) FROM driftlock.anomalies a WHERE a.stream_id = s.id)),
                  E'\\n' ORDER BY s.name)
FROM driftlock.streams s JOIN driftlock.stream_state st ON st.stream_id = s.id
WHERE s.name IN (} . sql_quote($alpha) . q{, 'beta')}),
	'per-stream rows for the first two streams: their events and anomalies, named in labels');
is(q1(q{SELECT count(*) FROM driftlock.metrics WHERE stream_id IS NOT NULL AND labels ? 'stream'
        AND metric IN ('driftlock_stream_events_total', 'driftlock_stream_anomalies_total')}),
	'4', 'no per-stream rows beyond metrics_max_streams = 2');
is(metric('driftlock_stream_overflow_events_total'), '100',
	'stream_overflow_events_total counts the third stream\'s events');
is(metric('driftlock_stream_overflow_anomalies_total'),
	q1("SELECT count(*) FROM driftlock.anomalies WHERE stream_id = '$id{gamma}'"),
	'stream_overflow_anomalies_total counts the third stream\'s anomalies');
is(q1(q{
SELECT (SELECT sum(value) FROM driftlock.metrics WHERE metric IN
          ('driftlock_stream_events_total', 'driftlock_stream_overflow_events_total'))
     = (SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_events_processed_total')
   AND (SELECT sum(value) FROM driftlock.metrics WHERE metric IN
          ('driftlock_stream_anomalies_total', 'driftlock_stream_overflow_anomalies_total'))
     = (SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_anomalies_detected_total')}),
	't', 'per-stream rows plus overflow add up to the global counters');

is(q1(q{
SELECT string_agg(format('%s=%s', labels->>'reason', value), ' ' ORDER BY labels->>'reason')
FROM driftlock.metrics WHERE metric = 'driftlock_dead_letters_total'}),
	q1(q{
SELECT string_agg(format('%s=%s', r, (SELECT count(*) FROM driftlock.dead_letters d WHERE d.reason = r)),
                  ' ' ORDER BY r)
FROM unnest(ARRAY['payload_too_large', 'missing_stream_id', 'invalid_stream_id', 'unknown_stream',
                  'invalid_json', 'detector_error', 'insert_failed', 'retention_gap', 'stream_limit', 'invalid_otlp']) r}),
	'dead_letters_total: one row per reason, equal to driftlock.dead_letters');
is(q1(q{
SELECT string_agg(format('%s=%s', labels->>'table', value), ' ' ORDER BY labels->>'table')
FROM driftlock.metrics WHERE metric = 'driftlock_rows_purged_total'}),
	'anomalies=0 dead_letters=0 feedback=0 incidents=0 suppressions=0',
	'rows_purged_total: one row per table, at 0 without driftlock.retention');
is(metric('driftlock_dead_letter_payloads_dropped_total'), '0',
	'dead_letter_payloads_dropped_total: under driftlock.dead_letter_rate_limit every payload is kept');
is(q1('SELECT count(*) FROM driftlock.dead_letters WHERE payload IS NULL'), '0', 'and the rows have them');

ok(poll_until($node, q{
SELECT string_agg(format('%s/%s=%s', labels->>'topic', labels->>'partition', value), ' '
                  ORDER BY labels->>'partition')
FROM driftlock.metrics WHERE metric = 'driftlock_kafka_consumer_lag'},
		"$topic/0=0 $topic/1=0", 20), 'consumer lag: a row per owned partition, down to 0');

# the histogram
is(metric('driftlock_batch_duration_seconds_count'), metric('driftlock_batches_total'),
	'batch_duration_seconds_count = batches_total');
cmp_ok(metric('driftlock_batches_total'), '>', 0, 'batches were counted');
cmp_ok(metric('driftlock_batch_duration_seconds_sum'), '>', 0, 'batch durations were summed');
is(q1(q{
WITH b AS (
  SELECT CASE WHEN labels->>'le' = '+Inf' THEN 'Infinity'::float8 ELSE (labels->>'le')::float8 END AS le,
         value
  FROM driftlock.metrics WHERE metric = 'driftlock_batch_duration_seconds_bucket')
SELECT format('%s %s %s %s', count(*) >= 2, max(le) = 'Infinity',
              bool_and(value >= coalesce(prev, 0)),
              max(value) FILTER (WHERE le = 'Infinity')
                = (SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_batch_duration_seconds_count'))
FROM (SELECT le, value, lag(value) OVER (ORDER BY le) AS prev FROM b) x}),
	't t t t', 'histogram buckets: cumulative, non-decreasing, +Inf = _count');

cmp_ok(metric('driftlock_detector_cache_misses_total'), '>=', 3, 'a cache miss per stream at least');
cmp_ok(metric('driftlock_detector_cache_hits_total'), '>', 0, 'cache hits');
is(metric('driftlock_detectors_active'), '3', 'detectors_active: the three streams\' detectors');
is(q1(q{SELECT value BETWEEN extract(epoch FROM pg_postmaster_start_time()) - 5 AND extract(epoch FROM now())
        FROM driftlock.metrics WHERE metric = 'driftlock_stats_reset_time_seconds'}),
	't', 'stats_reset_time_seconds: the server start');
is(q1(q{SELECT count(*) FROM driftlock.metrics WHERE labels IS NULL OR value IS NULL
          OR (stream_id IS NULL) = (metric LIKE 'driftlock\_stream\_%' AND metric NOT LIKE '%overflow%')}),
	'0', 'labels and value never NULL; stream_id set exactly on the per-stream rows');

# ---------------------------------------------------------------------------
# driftlock_prometheus()
my $prom = q1('SELECT driftlock_prometheus()') . "\n";
like($prom, qr/^driftlock_events_processed_total $events$/m, 'prometheus text: events_processed_total');
like($prom, qr/^# TYPE driftlock_batch_duration_seconds histogram$/m, 'prometheus text: the histogram');
like($prom, qr/^driftlock_batch_duration_seconds_bucket\{le="\+Inf"\} \d+$/m, 'prometheus text: the +Inf bucket');
like($prom, qr/^driftlock_stream_events_total\{[^}]*stream="\Q$alpha_prom\E"[^}]*\} 155$/m,
	'prometheus text: a stream name with quotes and a backslash, escaped');
like($prom, qr/^driftlock_dead_letters_total\{reason="invalid_json"\} 3$/m, 'prometheus text: dead letters by reason');
like($prom, qr/^driftlock_rows_purged_total\{table="dead_letters"\} 0$/m, 'prometheus text: rows purged by table');
{
	my %families;
	for my $m (split /\n/, q1('SELECT DISTINCT metric FROM driftlock.metrics'))
	{
		$m =~ s/_(bucket|sum|count)$// if $m =~ /^driftlock_batch_duration_seconds_/;
		$families{$m} = 1;
	}
	my @missing = grep {
		$prom !~ /^# HELP \Q$_\E \S/m || $prom !~ /^# TYPE \Q$_\E (counter|gauge|histogram)$/m
	} sort keys %families;
	is("@missing", '', 'prometheus text: # HELP and # TYPE for each family of the view');
	# families with no sample yet (driftlock_messages_lost_total) have theirs too
	my @types = $prom =~ /^# TYPE (\S+) /mg;
	my %seen;
	is(join(' ', grep { $seen{$_}++ } @types), '', 'and one # TYPE line per family');
}
SKIP:
{
	skip 'promtool not installed (Debian package prometheus)', 1
	  unless grep { -x "$_/promtool" } split /:/, $ENV{PATH};
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'promtool', 'check', 'metrics' ], '<', \$prom, '>', \$out, '2>', \$err);
	ok($ok, 'promtool check metrics accepts driftlock_prometheus()') or diag("$out$err");
}

# ---------------------------------------------------------------------------
# Privileges
q1(q{CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN IN ROLE driftlock_admin});

# contrib/node_exporter_textfile.sh, as bob, into a textfile directory
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ source_dir() . '/contrib/node_exporter_textfile.sh', '-d', $dir, '--',
			'-h', $node->host, '-p', $node->port, '-U', 'bob', '-d', 'postgres' ],
		'<', \'', '>', \$out, '2>', \$err);
	ok($ok, 'node_exporter_textfile.sh succeeds') or diag($err);
	opendir(my $dh, $dir) or die "cannot open $dir: $!";
	my @files = sort grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	is("@files", 'driftlock.prom', 'it leaves driftlock.prom and no temporary file');
	is(-f "$dir/driftlock.prom" ? slurp_file("$dir/driftlock.prom") : '', $prom,
		'driftlock.prom holds driftlock_prometheus()');
}
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM driftlock.metrics}, extra_params => [ '-U', 'bob' ]),
	't', 'a role without grants reads driftlock.metrics');
like($node->safe_psql('postgres', q{SELECT driftlock_prometheus()}, extra_params => [ '-U', 'bob' ]),
	qr/^driftlock_events_processed_total $events$/m, 'and driftlock_prometheus()');
{
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT driftlock_metrics_reset()",
		extra_params => [ '-U', 'bob' ]);
	isnt($ret, 0, 'a role outside driftlock_admin cannot reset the metrics');
	like($err, qr/ERROR:  42501:/, 'permission denied (42501)');
}
is(metric('driftlock_events_processed_total'), $events, 'the failed reset changed nothing');

# ---------------------------------------------------------------------------
# prometheus-postgres-exporter with the contrib queries file, as bob
SKIP:
{
	skip 'prometheus-postgres-exporter not installed', 3
	  unless grep { -x "$_/prometheus-postgres-exporter" } split /:/, $ENV{PATH};
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $queries = source_dir() . '/contrib/prometheus-postgres-exporter/queries.yaml';
	my ($out, $err) = ('', '');
	local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=bob dbname=postgres sslmode=disable',
		$node->host, $node->port);
	$exporter = IPC::Run::start(
		[ 'prometheus-postgres-exporter', "--web.listen-address=127.0.0.1:$port",
			"--extend.query-path=$queries", '--disable-default-metrics',
			'--disable-settings-metrics' ],
		'<', \'', '>', \$out, '2>', \$err);
	my $body = '';
	my $deadline = Time::HiRes::time() + 20;
	while (Time::HiRes::time() < $deadline)
	{
		my $res = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$port/metrics");
		$body = $res->{content} // '';
		last if $res->{success} && $body =~ /^driftlock_counter_value/m;
		Time::HiRes::sleep(0.2);
	}
	$exporter->kill_kill;
	like($body,
		qr/^driftlock_counter_value\{[^}]*metric="driftlock_events_processed_total"[^}]*\} $events$/m,
		'the exporter serves events_processed_total')
	  or diag("exporter log:\n$err");
	like($body,
		qr/^driftlock_counter_value\{[^}]*metric="driftlock_stream_events_total"[^}]*stream="\Q$alpha_prom\E"[^}]*\} 155$/m,
		'the exporter serves a per-stream counter with the stream name');
	like($body,
		qr/^driftlock_gauge_value\{[^}]*metric="driftlock_kafka_consumer_lag"[^}]*partition="1"[^}]*topic="\Q$topic\E"[^}]*\} 0$/m,
		'the exporter serves the consumer lag as a gauge');
}

# ---------------------------------------------------------------------------
# A worker's SIGTERM: it comes back and the counters are unchanged
my $before = snapshot($counted);
my $restarts = metric('driftlock_worker_restarts_total');
my ($pid) = worker_pids($node);
q1("SELECT pg_terminate_backend($pid)");
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker' AND pid <> $pid",
		'1', 30), 'the worker comes back after SIGTERM');
ok(poll_until($node, q{SELECT count(*) FROM driftlock.metrics WHERE metric = 'driftlock_kafka_consumer_lag' AND value = 0},
		'2', 15), 'consumer lag rows again for both partitions once it owns them');
is(snapshot($counted), $before, 'the counters survive the worker\'s SIGTERM');
is(metric('driftlock_worker_restarts_total'), $restarts + 1, 'worker_restarts_total counts the restart');

# the new worker adds to them
produce_events($kafka, $topic, 1, \@rows, stream => 'beta',
	payloads => [ event_payloads(count => 10, seed => 'beta-more') ], headers => ['X-Stream-Id=beta']);
ok(wait_offsets($node, $group, \@rows, 30), 'messages after the restart are consumed');
$events += 10;
is(metric('driftlock_events_processed_total'), $events, 'events_processed_total goes on from where it was');
is(q1("SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_stream_events_total' AND stream_id = '$id{beta}'"),
	q1("SELECT events FROM driftlock.stream_state WHERE stream_id = '$id{beta}'"),
	'and so does the stream\'s row');

# ---------------------------------------------------------------------------
# A clean restart with metrics_save on
$before = snapshot($not_gauge);
my $reset_time = metric('driftlock_stats_reset_time_seconds');
$node->restart;
is(snapshot($not_gauge), $before, 'the counters survive a clean restart (metrics_save on)');
is(metric('driftlock_stats_reset_time_seconds'), $reset_time, 'and so does stats_reset_time_seconds');

# ---------------------------------------------------------------------------
# Reset, by a member of driftlock_admin
$node->safe_psql('postgres', 'SELECT driftlock_metrics_reset()', extra_params => [ '-U', 'carol' ]);
is(q1("SELECT count(*) FROM driftlock.metrics WHERE $not_gauge AND value <> 0"), '0',
	'driftlock_metrics_reset() (by a driftlock_admin member) zeroes every counter');
is(q1("SELECT count(*) FROM driftlock.metrics WHERE metric = 'driftlock_dead_letters_total'"), '10',
	'the dead-letter rows stay, at 0');
cmp_ok(metric('driftlock_stats_reset_time_seconds'), '>', $reset_time, 'stats_reset_time_seconds moves forward');
is(q1(q{SELECT value BETWEEN extract(epoch FROM now()) - 30 AND extract(epoch FROM now()) + 1
        FROM driftlock.metrics WHERE metric = 'driftlock_stats_reset_time_seconds'}),
	't', 'to the time of the reset');

# ---------------------------------------------------------------------------
# A crash restart starts from zero
q1(join('', map { "SELECT driftlock_observe('$id{beta}', " . sql_quote($_) . ");\n" } @observed[ 0 .. 2 ]));
is(metric('driftlock_events_processed_total'), '3', 'driftlock_observe() after the reset: 3 events');
$reset_time = metric('driftlock_stats_reset_time_seconds');
($pid) = worker_pids($node);
kill('KILL', $pid);
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker' AND pid <> $pid",
		'1', 60), 'the server restarts after kill -9 of the worker');
is(q1("SELECT count(*) FROM driftlock.metrics WHERE $not_gauge AND value <> 0"), '0',
	'the counters are zero after a crash restart');
cmp_ok(metric('driftlock_stats_reset_time_seconds'), '>', $reset_time,
	'stats_reset_time_seconds: the restart');

# ---------------------------------------------------------------------------
# A clean restart with metrics_save off starts from zero
q1(join('', map { "SELECT driftlock_observe('$id{beta}', " . sql_quote($_) . ");\n" } @observed[ 3 .. 4 ]));
is(metric('driftlock_events_processed_total'), '2', 'driftlock_observe(): 2 events');
q1('ALTER SYSTEM SET driftlock.metrics_save = off');
q1('SELECT pg_reload_conf()');
$node->restart;
is(q1("SELECT count(*) FROM driftlock.metrics WHERE $not_gauge AND value <> 0"), '0',
	'with metrics_save off a clean restart starts from zero');

$node->stop;
unlike(slurp_file($node->logfile), qr/(PANIC|TRAP)/, 'no assertion failure in the server log');

# ---------------------------------------------------------------------------
# Without preloading: a clear error
my $plain = PostgreSQL::Test::Cluster->new('metrics_no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION driftlock');
for my $sql ('SELECT * FROM driftlock.metrics', 'SELECT driftlock_prometheus()',
	'SELECT driftlock_metrics_reset()')
{
	my ($ret, $out, $err) = $plain->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err,
		qr/ERROR:  55000: driftlock must be loaded via shared_preload_libraries\n(.*\n)*HINT:  \S/,
		"without preloading, \"$sql\" fails with 55000 and a hint");
}
is($plain->safe_psql('postgres', q{LOAD 'driftlock'; SHOW driftlock.metrics_max_streams}),
	'1000', 'metrics_max_streams defaults to 1000');
$plain->stop;

$kafka->stop;
done_testing();
