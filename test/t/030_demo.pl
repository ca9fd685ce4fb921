# The one-command demo: demo/run.sh --short runs end to end (its own
# PostgreSQL cluster, the mock Kafka, the producer's injected incidents)
# and its report shows every injected incident as an incident, first, with
# its severity and explanation, then the raw anomalies,
# the dead letters, Prometheus lines and how to connect with psql; it
# cleans up after itself.  demo/run.sh --otlp --short does the same with
# OpenTelemetry logs batches: each service's injected records flagged, the
# anomalies with their record index, invalid_otlp and record dead letters.
# Needs the installed extension and "make tools".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(source_dir);
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes ();

my $script = source_dir() . '/demo/run.sh';
ok(-x $script, 'demo/run.sh is executable');

my ($out, $err) = ('', '');
IPC::Run::run([ $script, '--help' ], '<', \'', '>', \$out, '2>', \$err);
like($out, qr/--short.*--otlp.*--keep.*--brokers.*--topic/s, '--help documents the options');

($out, $err) = ('', '');
my $t0 = Time::HiRes::time();
my $ok = IPC::Run::run([ $script, '--short', '--no-build' ],
	'<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(120));
my $secs = Time::HiRes::time() - $t0;
ok($ok, 'demo/run.sh --short exits with status 0')
  or diag("exit status $?\nstdout:\n$out\nstderr:\n$err");
note(sprintf('demo/run.sh --short took %.1f s', $secs));
cmp_ok($secs, '<', 40, 'the short run takes less than 40 s');

like($out, qr/^\s+\[\s*\d+s\] produced\s+\d+\/\d+\s+processed\s+\d+\s+anomalies\s+\d+/m,
	'progress lines while the worker consumes');
like($out, qr/^Events: (\d+) produced, \1 processed by the worker/m,
	'every produced message processed');

# every injected incident reported as one incident of high severity, all of
# its events flagged
like($out, qr/payments: error burst "database timeout"\s+incident, severity (7[5-9]|[89]\d|100), 30 of 30 events flagged/,
	'the payments error burst is a high-severity incident');
like($out, qr/auth: new message "account locked \.\.\."\s+incident, severity (7[5-9]|[89]\d|100), 3 of 3 events flagged/,
	'the new auth message is a high-severity incident');
like($out, qr/search: SQL-injection-looking query\s+incident, severity (7[5-9]|[89]\d|100), 1 of 1 events flagged/,
	'the SQL-injection-looking query is a high-severity incident');
like($out, qr/search: huge nested payload with a blob\s+incident, severity (7[5-9]|[89]\d|100), 1 of 1 events flagged/,
	'the huge payload is a high-severity incident');

# incidents come first, one line each, with the explanation of their most
# significant event
my ($incidents, $anomalies) = $out =~ /^Incidents: (\d+) \(.*\), grouping (\d+) anomalies\.$/m;
ok(defined $incidents, 'the report counts the incidents and the anomalies they group');
cmp_ok($incidents // 0, '<=', 6, 'a handful of incidents: the four injected, at most two false');
like($out, qr/^\s*\d+\. payments\s+\d+ high\s+x30\s+\S+-\S+\s+.*\n\s+why:\s+Anomalous \(p = .*New in it: .*"database"/m,
	'the error burst is one incident of 30 anomalies, with its explanation');
like($out, qr/^\s*\d+\. auth\s+\d+ high\s+x3\s+.*\n\s+why:\s+Anomalous .*New in it: "account", "locked"/m,
	'the new message is one incident of 3 anomalies, with its explanation');
like($out, qr/why:\s+Anomalous .*New in it: "UNION", "SELECT"/,
	'the SQL-injection-looking query is listed with its explanation');
# the four injected incidents are the four most severe
my @top = $out =~ /^\s*\d+\. (\w+)\s+\d+ \w+\s+x(\d+)/mg;
my @top4 = map { "$top[2 * $_] x$top[2 * $_ + 1]" } 0 .. 3;
is_deeply([ sort @top4 ], [ 'auth x3', 'payments x30', 'search x1', 'search x1' ],
	'the injected incidents are the four most severe');
like($out, qr/^Raw anomalies per stream/m, 'then the raw anomalies');

like($out, qr/^\s+missing_stream_id\s+2\s/m, 'dead letters: two messages without a stream header');
like($out, qr/^\s+unknown_stream\s+1\s/m, 'dead letters: one message of an unknown stream');
like($out, qr/^\s+driftlock_events_processed_total \d+$/m, 'Prometheus: events processed');
like($out, qr/^\s+driftlock_incidents_total\{severity="high"\} [4-6]$/m, 'Prometheus: incidents by severity');
like($out, qr/^\s+driftlock_dead_letters_total\{reason="missing_stream_id"\} 2$/m,
	'Prometheus: dead letters by reason');
like($out, qr/psql -h (\/\S+) -p \d+ .*-d postgres/, 'the report says how to connect with psql');

# cleaned up: the temporary directory is gone
my ($dir) = $out =~ /data and socket in (\/tmp\/driftlock-demo\.\w+)/;
ok(defined $dir && !-e $dir, 'the temporary directory is removed')
  or diag('directory: ' . ($dir // 'not found in the output'));

# --otlp: OpenTelemetry logs export batches (driftlock.kafka_format =
# otlp_proto), one event per log record, a stream per service.name
($out, $err) = ('', '');
$t0 = Time::HiRes::time();
$ok = IPC::Run::run([ $script, '--otlp', '--short', '--no-build' ],
	'<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(120));
$secs = Time::HiRes::time() - $t0;
ok($ok, 'demo/run.sh --otlp --short exits with status 0')
  or diag("exit status $?\nstdout:\n$out\nstderr:\n$err");
note(sprintf('demo/run.sh --otlp --short took %.1f s', $secs));
cmp_ok($secs, '<', 30, 'the short OTLP run takes less than 30 s');
like($out, qr/^Messages: (\d+) produced .*, \1 processed by the worker\.$/m,
	'--otlp: every produced message processed');
like($out, qr/^Events: (\d+) log records produced, (\d+) scored by the detectors, 6 dead letters \(5 of single records\)\.$/m,
	'--otlp: the records scored, and the dead letters');
for my $svc (map { "svc-$_" } 0 .. 3)
{
	like($out, qr/^\s+\Q$svc\E\s+3 of 3 injected records flagged \(incident severity \d+/m,
		"--otlp: $svc: its injected records are flagged, each in an incident");
	like($out, qr/^\s+\Q$svc\E\s+\d+ #\d+\s+p=\S+\s+\{"severity":"(ERROR|FATAL)"/m,
		"--otlp: $svc: an anomaly listed with its offset, record index and rendering");
}
like($out, qr/^\s+invalid_otlp\s+1\s+e\.g\. offset 0\/\d+ \(whole message\): The payload is not an OpenTelemetry logs batch in otlp_proto/m,
	'--otlp: the message that is no batch is one invalid_otlp dead letter');
like($out, qr/^\s+unknown_stream\s+5\s+e\.g\. offset 0\/\d+ #0: No stream .* "billing-0"/m,
	'--otlp: each record of the unknown service is a dead letter of its own');
like($out, qr/^\s+driftlock_dead_letters_total\{reason="invalid_otlp"\} 1$/m,
	'--otlp: Prometheus counts the invalid_otlp dead letter');
($dir) = $out =~ /data and socket in (\/tmp\/driftlock-demo\.\w+)/;
ok(defined $dir && !-e $dir, '--otlp: the temporary directory is removed');

done_testing();
