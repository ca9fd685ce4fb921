# The one-command demo: demo/run.sh --short runs end to end (its own
# PostgreSQL cluster, the mock Kafka, the producer's injected incidents)
# and its report shows the anomalies of every incident with explanations,
# the dead letters, Prometheus lines and how to connect with psql; it
# cleans up after itself.  Needs the installed extension and "make tools".
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
like($out, qr/--short.*--keep.*--brokers.*--topic/s, '--help documents the options');

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

# every injected incident flagged, all of its events
like($out, qr/payments: error burst "database timeout"\s+flagged 30 of 30/,
	'the payments error burst is flagged');
like($out, qr/auth: new message "account locked \.\.\."\s+flagged 3 of 3/,
	'the new auth message is flagged');
like($out, qr/search: SQL-injection-looking query\s+flagged 1 of 1/,
	'the SQL-injection-looking query is flagged');
like($out, qr/search: huge nested payload with a blob\s+flagged 1 of 1/,
	'the huge payload is flagged');

# the most significant anomalies come with their stream and explanation
like($out, qr/^\s*\d+\. payments\s+"charge failed: database timeout"\s+x 30\n.*\n.*\n\s+why:\s+Anomalous \(p = .*New in it: .*"database"/m,
	'the error burst is listed with its explanation');
like($out, qr/^\s*\d+\. auth\s+"account locked after repeated failures"\s+x 3\n.*\n.*\n\s+why:\s+Anomalous .*New in it: "account", "locked"/m,
	'the new message is listed with its explanation');
like($out, qr/why:\s+Anomalous .*New in it: "UNION", "SELECT"/,
	'the SQL-injection-looking query is listed with its explanation');
# the four incidents outrank the ordinary events flagged at alpha
my @top = $out =~ /^\s*\d+\. (\w+)\s+"([^"]+)"/mg;
my %top4;
for (my $i = 0; $i < 8 && $i < @top; $i += 2) { $top4{"$top[$i] $top[$i + 1]"}++; }
is_deeply(\%top4,
	{ 'search query served' => 2, 'payments charge failed: database timeout' => 1,
	  'auth account locked after repeated failures' => 1 },
	'the injected incidents are the four most significant anomalies');

like($out, qr/^\s+missing_stream_id\s+2\s/m, 'dead letters: two messages without a stream header');
like($out, qr/^\s+unknown_stream\s+1\s/m, 'dead letters: one message of an unknown stream');
like($out, qr/^\s+driftlock_events_processed_total \d+$/m, 'Prometheus: events processed');
like($out, qr/^\s+driftlock_dead_letters_total\{reason="missing_stream_id"\} 2$/m,
	'Prometheus: dead letters by reason');
like($out, qr/psql -h (\/\S+) -p \d+ .*-d postgres/, 'the report says how to connect with psql');

# cleaned up: the temporary directory is gone
my ($dir) = $out =~ /data and socket in (\/tmp\/driftlock-demo\.\w+)/;
ok(defined $dir && !-e $dir, 'the temporary directory is removed')
  or diag('directory: ' . ($dir // 'not found in the output'));

done_testing();
