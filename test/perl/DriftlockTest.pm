# DriftlockTest.pm -- helpers shared by the driftlock TAP tests (test/t).
#
#   my $kafka = DriftlockTest::start_mock_kafka(topics => { events => 1 });
#   $kafka->bootstrap;            # "127.0.0.1:PORT"
#   $kafka->command('down');      # brokers refuse connections; 'up' undoes it
#   kcat_produce($kafka->bootstrap, 'events', ['a', 'b'], headers => ['X-Stream-Id=s1']);
#   my @lines = kcat_consume($kafka->bootstrap, 'events', format => '%h %s\n');
#   $kafka->stop;                 # also done for every running instance at END
#
# Mock cluster quirks: the first consumer-group join takes about 3 s; use
# session.timeout.ms=6000 and heartbeat.interval.ms=500 in consumers.
package DriftlockTest;

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IPC::Run ();
use Time::HiRes ();

our @EXPORT_OK = qw(start_mock_kafka wait_for_file kcat_produce kcat_consume
  source_dir);

my @running;

# Root of the source tree: PGXS's prove_installcheck sets TESTDIR
sub source_dir
{
	return $ENV{TESTDIR} // '.';
}

# Wait until $path exists and is not empty; returns true if it did in time
sub wait_for_file
{
	my ($path, $timeout) = @_;
	my $deadline = Time::HiRes::time() + ($timeout // 30);
	while (Time::HiRes::time() < $deadline)
	{
		return 1 if -s $path;
		Time::HiRes::sleep(0.05);
	}
	return 0;
}

# Start test/tools/mock_kafka.  Options: brokers => N, topics => { name =>
# partitions }, dir => where to put the port file.  Dies if it does not start.
sub start_mock_kafka
{
	my (%opts) = @_;
	my $bin = $ENV{DRIFTLOCK_MOCK_KAFKA} // source_dir() . '/test/tools/mock_kafka';
	die "$bin not found: run \"make tools\"\n" unless -x $bin;

	my $dir = $opts{dir} // File::Temp::tempdir('mock_kafka_XXXX', TMPDIR => 1, CLEANUP => 1);
	my $port_file = "$dir/mock_kafka.port";
	unlink $port_file;

	my @cmd = ($bin, '--brokers', $opts{brokers} // 1, '--port-file', $port_file);
	my $topics = $opts{topics} // {};
	push @cmd, ('--topic', $_, '--partitions', $topics->{$_}) for sort keys %$topics;

	my $self = bless { in => '', out => '', err => '', port_file => $port_file }, 'DriftlockTest::MockKafka';
	$self->{harness} = IPC::Run::start(\@cmd, '<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err});
	push @running, $self;

	die "mock_kafka did not start: $self->{err}\n" unless wait_for_file($port_file, 30);
	open my $fh, '<', $port_file or die "cannot read $port_file: $!\n";
	chomp(my $bootstrap = <$fh>);
	close $fh;
	$self->{bootstrap} = $bootstrap;
	return $self;
}

# Produce one message per element of $messages (no newlines inside)
sub kcat_produce
{
	my ($bootstrap, $topic, $messages, %opts) = @_;
	my @cmd = ('kcat', '-P', '-b', $bootstrap, '-t', $topic,
		map { ('-H', $_) } @{ $opts{headers} // [] });
	push @cmd, ('-p', $opts{partition}) if defined $opts{partition};
	my $in = join('', map { "$_\n" } @$messages);
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($opts{timeout} // 60));
	die "kcat produce failed: $err\n" unless $ok;
	return 1;
}

# Read a topic from the beginning to its end; returns the output lines
sub kcat_consume
{
	my ($bootstrap, $topic, %opts) = @_;
	my @cmd = ('kcat', '-C', '-b', $bootstrap, '-t', $topic, '-e', '-q',
		'-f', $opts{format} // '%s\n');
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($opts{timeout} // 60));
	die "kcat consume failed: $err\n" unless $ok;
	return split /\n/, $out;
}

package DriftlockTest::MockKafka;

use strict;
use warnings;

sub bootstrap { return $_[0]->{bootstrap}; }

# Send a command (down, up) and wait for its acknowledgement
sub command
{
	my ($self, $cmd, $timeout) = @_;
	my %ack = (down => 'brokers down', up => 'brokers up');
	die "unknown mock_kafka command $cmd\n" unless $ack{$cmd};
	my $seen = () = $self->{out} =~ /^\Q$ack{$cmd}\E$/mg;
	$self->{in} .= "$cmd\n";
	my $deadline = Time::HiRes::time() + ($timeout // 10);
	while (Time::HiRes::time() < $deadline)
	{
		$self->{harness}->pump_nb;
		my $now = () = $self->{out} =~ /^\Q$ack{$cmd}\E$/mg;
		return 1 if $now > $seen;
		Time::HiRes::sleep(0.05);
	}
	die "mock_kafka did not acknowledge \"$cmd\"\n";
}

# Stop the tool: "quit", then SIGTERM/SIGKILL if it does not exit in 5 s
sub stop
{
	my ($self) = @_;
	return if $self->{stopped};
	$self->{stopped} = 1;
	my $h = $self->{harness};
	$self->{in} .= "quit\n";
	my $deadline = Time::HiRes::time() + 5;
	while ($h->pumpable && Time::HiRes::time() < $deadline)
	{
		eval { $h->pump_nb; 1 } or last;
		Time::HiRes::sleep(0.05);
	}
	if ($h->pumpable)
	{
		$h->kill_kill(grace => 5);
	}
	else
	{
		eval { $h->finish; 1 };
	}
	return;
}

END
{
	$_->stop for @running;
}

1;
