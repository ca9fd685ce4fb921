# test/tools/mock_kafka: a Kafka cluster that kcat (and the worker) can use,
# whose brokers a test can take down and bring back.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use DriftlockTest qw(start_mock_kafka kcat_produce kcat_consume);
use IPC::Run ();
use Test::More;

my $kafka = start_mock_kafka(topics => { 'driftlock-events' => 1, 'other' => 3 });
like($kafka->bootstrap, qr/^127\.0\.0\.1:\d+$/, 'bootstrap servers reported');

kcat_produce($kafka->bootstrap, 'driftlock-events',
	[ 'first', 'second', 'third' ], headers => ['X-Stream-Id=abc']);
my @got = kcat_consume($kafka->bootstrap, 'driftlock-events', format => '%h %s\n');
is_deeply(\@got,
	[ 'X-Stream-Id=abc first', 'X-Stream-Id=abc second', 'X-Stream-Id=abc third' ],
	'messages and headers come back in order');

my ($out, $err) = ('', '');
IPC::Run::run([ 'kcat', '-L', '-b', $kafka->bootstrap, '-t', 'other' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(30));
like($out, qr/topic "other" with 3 partitions/, 'topic created with its partition count');

$kafka->command('down');
my $ok = IPC::Run::run([ 'kcat', '-L', '-b', $kafka->bootstrap, '-m', '2' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(30));
ok(!$ok, 'metadata request fails while the brokers are down');

$kafka->command('up');
$ok = IPC::Run::run([ 'kcat', '-L', '-b', $kafka->bootstrap, '-m', '10' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(30));
ok($ok, 'metadata request succeeds once the brokers are up');

@got = kcat_consume($kafka->bootstrap, 'driftlock-events');
is(scalar @got, 3, 'messages survive a broker outage');

$kafka->stop;
done_testing();
