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


# ---------------------------------------------------------------------------
# Helpers for the Kafka worker tests (test/t/01x_worker_*.pl)
#
#   my $node = worker_node('basic', $kafka, conf => { 'driftlock.kafka_topic' => 'events' });
#   my @rows;        # [topic, partition, offset, stream, payload] of every message produced
#   produce_events($kafka, 'events', 0, \@rows, stream => 's1',
#       payloads => [ event_payloads(count => 200, seed => 's1') ],
#       headers => ['X-Stream-Id=s1']);
#   ok(wait_offsets($node, 'driftlock-api', \@rows), 'all messages processed');
#   load_messages($node, 'produced', \@rows);
#   check_anomalies($node, 'produced', '{"warmup": 30}', 'clean-run anomalies');
# ---------------------------------------------------------------------------
package DriftlockTest;

use Digest::MD5 ();

push @EXPORT_OK, qw(worker_node poll_until wait_offsets kcat_produce_opts
  event_payloads produce_events load_messages check_anomalies check_incidents
  check_exactly_once check_offsets_at_end check_stream_events wait_committed
  wait_worker_replaced restart_after_postmaster_kill worker_pids log_since
  count_log_matches sql_quote stored_offsets WORKER_PROPERTIES);

# librdkafka settings the mock cluster needs (see the file header)
use constant WORKER_PROPERTIES => 'session.timeout.ms=6000;heartbeat.interval.ms=500';

# Quote a string as an SQL literal (standard_conforming_strings is on)
sub sql_quote
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# A node that preloads driftlock and runs the Kafka worker against $kafka.
# Options: conf => { name => value } (values are quoted here; they override
# the defaults), no_extension => 1 (do not CREATE EXTENSION), no_start => 1,
# init => { ... } (options of PostgreSQL::Test::Cluster::init, such as
# allows_streaming => 1 for a primary).
sub worker_node
{
	my ($name, $kafka, %opts) = @_;
	require PostgreSQL::Test::Cluster;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	my %conf = (
		'shared_preload_libraries'   => 'driftlock',
		'driftlock.kafka_enabled'    => 'on',
		'driftlock.kafka_brokers'    => $kafka->bootstrap,
		'driftlock.kafka_properties' => WORKER_PROPERTIES,
		# a killed worker is back in 1 s rather than 5: shorter tests
		'driftlock.kafka_restart_interval' => '1',
		%{ $opts{conf} // {} });
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = " . sql_quote($conf{$_}) . "\n" } sort keys %conf));
	return $node if $opts{no_start};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION driftlock') unless $opts{no_extension};
	return $node;
}

# Run $sql every 0.1 s until its output is $expected (default 't'); gives
# up after $timeout seconds (default 60) and returns false, printing the
# last output.  Connection failures (a restarting server) are retried.
sub poll_until
{
	my ($node, $sql, $expected, $timeout) = @_;
	$expected //= 't';
	my $deadline = Time::HiRes::time() + ($timeout // 60);
	my ($out, $err) = ('', '');
	while (1)
	{
		($out, $err) = ('', '');
		my @cmd = ('psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $sql);
		IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err);
		chomp $out;
		return 1 if $out eq $expected;
		last if Time::HiRes::time() >= $deadline;
		Time::HiRes::sleep(0.1);
	}
	Test::More::diag("poll_until timed out after " . ($timeout // 60)
		  . " s\nquery: $sql\nexpected: $expected\nlast output: $out\nstderr: $err");
	return 0;
}

# Wait until driftlock.kafka_offsets of $group says that every partition
# holding a message of @$rows has been consumed to its end.
sub wait_offsets
{
	my ($node, $group, $rows, $timeout) = @_;
	my %end;
	for my $r (@$rows)
	{
		my $k = "$r->[0]\t$r->[1]";
		$end{$k} = $r->[2] + 1 if !defined $end{$k} || $end{$k} < $r->[2] + 1;
	}
	my @cond = map {
		my ($t, $p) = split /\t/, $_;
		"EXISTS (SELECT FROM driftlock.kafka_offsets WHERE group_id = "
		  . sql_quote($group) . " AND topic = " . sql_quote($t)
		  . " AND partition = $p AND next_offset >= $end{$_})"
	} sort keys %end;
	return poll_until($node, 'SELECT ' . join(' AND ', @cond), 't', $timeout);
}

# Produce @$messages with kcat.  Options: headers => [ 'k=v', 'k' (null
# value) ], partition, key, compression (librdkafka codec name), timeout.
# Messages may hold any bytes except "\x1e", the delimiter used here.
sub kcat_produce_opts
{
	my ($bootstrap, $topic, $messages, %opts) = @_;
	my @cmd = ('kcat', '-P', '-b', $bootstrap, '-t', $topic, '-D', "\x1e",
		map { ('-H', $_) } @{ $opts{headers} // [] });
	push @cmd, ('-p', $opts{partition}) if defined $opts{partition};
	push @cmd, ('-k', $opts{key}) if defined $opts{key};
	push @cmd, ('-X', "compression.codec=$opts{compression}") if $opts{compression};
	for my $m (@$messages)
	{
		die "message holds the delimiter \\x1e\n" if $m =~ /\x1e/;
	}
	my $in = join('', map { "$_\x1e" } @$messages);
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($opts{timeout} // 60));
	die "kcat produce failed: $err\n" unless $ok;
	return 1;
}

# Deterministic ~200-byte JSON log events, about one in $every (default
# 97) after the first $quiet (default 40) unusual.  Options: count, seed,
# every, quiet, stream_id (embedded as "metadata":{"stream_id":...}).
sub event_payloads
{
	my (%o) = @_;
	my $every = $o{every} // 97;
	my $quiet = $o{quiet} // 40;
	my $seed  = $o{seed} // 'events';
	my @svc   = qw(checkout search auth inventory payments);
	my @msg   = ('request completed', 'cache hit for product page',
		'user session refreshed', 'token validated');
	my @out;
	for my $g (0 .. $o{count} - 1)
	{
		my $h = Digest::MD5::md5_hex("$seed:$g");
		my $meta = defined $o{stream_id} ? qq{"metadata":{"stream_id":"$o{stream_id}"},} : '';
		if ($g % $every == $every - 1 && $g > $quiet)
		{
			my $h2 = Digest::MD5::md5_hex("$h:x");
			push @out,
			  sprintf('{%s"level":"error","msg":"FATAL ledger checksum mismatch on shard %d","trace":"%s%s"}',
				$meta, $g % 17, $h, $h2);
		}
		else
		{
			push @out,
			  sprintf('{%s"ts":"2026-11-28T10:%02d:%02d.%03dZ","service":"%s","level":"info","msg":"%s","request_id":"%s","latency_ms":%d,"status":200}',
				$meta, $g % 60, ($g * 7) % 60, $g % 1000, $svc[ $g % 5 ],
				$msg[ int($g / 5) % 4 ], substr($h, 0, 12), hex(substr($h, 12, 3)) % 400);
		}
	}
	return @out;
}

# Produce $opts{payloads} to one partition (with $opts{headers} and the key
# $opts{key}, if given) and record [topic, partition, offset, stream,
# payload] rows in @$rows (offsets follow the rows already recorded for that
# partition: record every message of the partition).
sub produce_events
{
	my ($kafka, $topic, $partition, $rows, %opts) = @_;
	my $next = 0;
	for my $r (@$rows)
	{
		$next = $r->[2] + 1 if $r->[0] eq $topic && $r->[1] == $partition && $r->[2] >= $next;
	}
	kcat_produce_opts($kafka->bootstrap, $topic, $opts{payloads},
		partition => $partition, headers => $opts{headers} // [], key => $opts{key});
	push @$rows, [ $topic, $partition, $next++, $opts{stream}, $_ ] for @{ $opts{payloads} };
	return;
}

# Store the rows of produce_events in table $table of database postgres
sub load_messages
{
	my ($node, $table, $rows) = @_;
	$node->safe_psql('postgres',
		"CREATE TABLE IF NOT EXISTS $table (topic text, part int, off bigint, stream text, payload text, PRIMARY KEY (topic, part, off))");
	for (my $i = 0; $i < @$rows; $i += 1000)
	{
		my $end = $i + 999 < $#$rows ? $i + 999 : $#$rows;
		my $values = join(",\n", map {
			join(', ', '(' . sql_quote($_->[0]), $_->[1], $_->[2], sql_quote($_->[3]),
				sql_quote($_->[4]) . ')')
		} @$rows[ $i .. $end ]);
		$node->safe_psql('postgres', "INSERT INTO $table VALUES $values");
	}
	return;
}

# Compare driftlock.anomalies of the topics in $table with what
# driftlock_detect($config) flags over each stream's messages in offset
# order: same messages, streams, payload bytes, scores and p-values.
# Every stream must sit on one partition.  Runs three tests.
sub check_anomalies
{
	my ($node, $table, $config, $name) = @_;
	my $cfg = sql_quote($config);
	my $res = $node->safe_psql('postgres', qq{
WITH v AS (
  SELECT m.topic, m.part, m.off, s.id AS stream_id, m.payload,
         driftlock_detect(m.payload, ${cfg}::jsonb)
           OVER (PARTITION BY m.stream ORDER BY m.topic, m.part, m.off) AS v
  FROM $table m JOIN driftlock.streams s ON s.name = m.stream),
exp AS (SELECT * FROM v WHERE (v).is_anomaly),
got AS (SELECT * FROM driftlock.anomalies WHERE kafka_topic IN (SELECT topic FROM $table))
SELECT (SELECT count(*) FROM exp), (SELECT count(*) FROM got),
  (SELECT count(*) FROM exp e JOIN got a
     ON (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (e.topic, e.part, e.off)
    AND a.stream_id = e.stream_id AND a.payload = convert_to(e.payload, 'UTF8')
    AND abs(a.score - (e.v).score) < 1e-9 AND abs(a.p_value - (e.v).p_value) < 1e-9),
  (SELECT count(*) FROM (SELECT kafka_topic, kafka_partition, kafka_offset FROM got
     GROUP BY 1, 2, 3 HAVING count(*) > 1) d),
  (SELECT string_agg(format('%s/%s/%s', e.topic, e.part, e.off), ' ' ORDER BY e.topic, e.part, e.off)
     FROM exp e WHERE NOT EXISTS (SELECT FROM got a
       WHERE (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (e.topic, e.part, e.off))),
  (SELECT string_agg(format('%s/%s/%s', a.kafka_topic, a.kafka_partition, a.kafka_offset), ' '
       ORDER BY a.kafka_topic, a.kafka_partition, a.kafka_offset)
     FROM got a WHERE NOT EXISTS (SELECT FROM exp e
       WHERE (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (e.topic, e.part, e.off)))});
	my ($expected, $got, $matching, $dups, $missing, $extra) = split /\|/, $res, -1;
	Test::More::note("$name: $expected anomalies expected, $got recorded");
	Test::More::cmp_ok($expected, '>', 0, "$name: the clean run flags some messages");
	Test::More::is($got, $expected, "$name: as many anomalies as the clean run")
	  or Test::More::diag("missing: $missing\nunexpected: $extra\nduplicated positions: $dups");
	Test::More::is($matching, $expected,
		"$name: every anomaly at the clean run's message, stream, payload, score and p-value");
	return;
}

# The incidents of the topics in $table are those the clean run's anomalies
# make: the clean run (driftlock_detect($config) over each stream's messages
# in offset order) gives each anomaly its incident key; each (stream, key)
# must be one incident (the messages of a test come well within the quiet
# period) holding exactly its anomalies, with their count, smallest p-value,
# highest score and Kafka span, and every anomaly linked to it.  Runs three
# tests.
sub check_incidents
{
	my ($node, $table, $config, $name) = @_;
	my $cfg = sql_quote($config);
	my $res = $node->safe_psql('postgres', qq{
WITH v AS (
  SELECT m.part, m.off, s.id AS stream_id,
         driftlock_detect(m.payload, ${cfg}::jsonb)
           OVER (PARTITION BY m.stream ORDER BY m.topic, m.part, m.off) AS v
  FROM $table m JOIN driftlock.streams s ON s.name = m.stream),
exp AS (
  SELECT stream_id, (v).incident_key AS k, count(*) AS n, min((v).p_value) AS p,
         max((v).score) AS score, min(off) AS first_off, max(off) AS last_off
  FROM v WHERE (v).is_anomaly GROUP BY 1, 2),
got AS (
  SELECT * FROM driftlock.incidents
  WHERE kafka_topic IN (SELECT topic FROM $table))
SELECT (SELECT count(*) FROM exp), (SELECT count(*) FROM got),
  (SELECT count(*) FROM exp e JOIN got i ON (i.stream_id, i.incident_key) = (e.stream_id, e.k)
    AND i.anomalies = e.n AND abs(i.min_p_value - e.p) < 1e-12 AND abs(i.max_score - e.score) < 1e-9
    AND i.kafka_first_offset = e.first_off AND i.kafka_last_offset = e.last_off),
  (SELECT count(*) FROM driftlock.anomalies a JOIN got i ON i.id = a.incident_id
    WHERE a.incident_key = i.incident_key AND a.stream_id = i.stream_id),
  (SELECT count(*) FROM driftlock.anomalies WHERE kafka_topic IN (SELECT topic FROM $table)),
  (SELECT string_agg(format('%s:%s x%s', e.stream_id, e.k, e.n), ' ') FROM exp e
    WHERE NOT EXISTS (SELECT FROM got i WHERE (i.stream_id, i.incident_key) = (e.stream_id, e.k)
                        AND i.anomalies = e.n)),
  (SELECT string_agg(format('%s:%s x%s', i.stream_id, i.incident_key, i.anomalies), ' ') FROM got i
    WHERE NOT EXISTS (SELECT FROM exp e WHERE (i.stream_id, i.incident_key) = (e.stream_id, e.k)
                        AND i.anomalies = e.n))});
	my ($expected, $got, $matching, $linked, $anomalies, $missing, $extra) = split /\|/, $res, -1;
	Test::More::note("$name: $expected incidents expected, $got recorded");
	Test::More::is($got, $expected, "$name: as many incidents as the clean run's (stream, incident key)")
	  or Test::More::diag("missing or miscounted: $missing\nunexpected or miscounted: $extra");
	Test::More::is($matching, $expected,
		"$name: every incident with the clean run's anomaly count, p-value, score and offsets");
	Test::More::is($linked, $anomalies, "$name: every anomaly linked to the incident of its key");
	return;
}

# Every message in $table processed exactly once by group $group: offsets
# at the end of each partition, stream_state.events = messages per stream,
# no dead letter.  Runs three tests.
sub check_exactly_once
{
	my ($node, $table, $group, $name) = @_;
	check_offsets_at_end($node, $table, $group, $name);
	check_stream_events($node, $table, "$name: each stream's detector saw each of its messages once");
	Test::More::is($node->safe_psql('postgres', qq{
SELECT count(*) FROM driftlock.dead_letters WHERE kafka_topic IN (SELECT topic FROM $table)}),
		'0', "$name: no dead letter");
	return;
}

# next_offset of group $group is past the last message in $table of every
# partition.  Runs one test.
sub check_offsets_at_end
{
	my ($node, $table, $group, $name) = @_;
	Test::More::is($node->safe_psql('postgres', qq{
SELECT string_agg(format('%s/%s:%s', t.topic, t.part, o.next_offset), ' ' ORDER BY t.topic, t.part)
FROM (SELECT topic, part, max(off) + 1 AS n FROM $table GROUP BY 1, 2) t
LEFT JOIN driftlock.kafka_offsets o
  ON o.group_id = } . sql_quote($group) . qq{ AND o.topic = t.topic AND o.partition = t.part}),
		$node->safe_psql('postgres', qq{
SELECT string_agg(format('%s/%s:%s', topic, part, n), ' ' ORDER BY topic, part)
FROM (SELECT topic, part, max(off) + 1 AS n FROM $table GROUP BY 1, 2) t}),
		"$name: next_offset = message count for every partition");
	return;
}

# stream_state.events of each stream named in $table equals its messages
# there.  Runs one test, named $test_name.
sub check_stream_events
{
	my ($node, $table, $test_name) = @_;
	Test::More::is($node->safe_psql('postgres', qq{
SELECT string_agg(format('%s:%s', s.name, coalesce(st.events, 0)), ' ' ORDER BY s.name)
FROM (SELECT DISTINCT stream FROM $table) m JOIN driftlock.streams s ON s.name = m.stream
LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id}),
		$node->safe_psql('postgres', qq{
SELECT string_agg(format('%s:%s', stream, n), ' ' ORDER BY stream)
FROM (SELECT stream, count(*) AS n FROM $table GROUP BY 1) m}),
		$test_name);
	return;
}

# Messages group $group has committed (the sum of its next_offset), read
# every few ms through one psql session until at least $from or $timeout
# seconds; returns the last figure seen.  Kills timed with it land within a
# few messages of $from.
sub wait_committed
{
	my ($node, $group, $from, $timeout) = @_;
	my $sql = 'SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '
	  . sql_quote($group);
	my ($in, $out, $err) = ('', '', '');
	my $psql = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout($timeout + 30));
	my $seen = -1;
	my $deadline = Time::HiRes::time() + $timeout;
	while (Time::HiRes::time() < $deadline)
	{
		$out = '';
		$in .= "$sql;\n";
		$psql->pump while $out !~ /\n/;
		($seen) = $out =~ /(\d+)/;
		last if $seen >= $from;
		Time::HiRes::sleep(0.005);
	}
	$psql->kill_kill;
	return $seen;
}

# Whether a worker other than $old_pid runs within $timeout seconds
sub wait_worker_replaced
{
	my ($node, $old_pid, $timeout) = @_;
	return poll_until($node,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker' AND pid <> $old_pid",
		'1', $timeout);
}

# After kill -9 of the postmaster: the orphaned worker $worker_pid must exit
# within 15 s (it is killed if not, so the test can go on), then the node is
# started again, retrying while orphaned backends hold the shared memory.
# Runs two tests.
sub restart_after_postmaster_kill
{
	my ($node, $worker_pid, $name) = @_;
	my $deadline = Time::HiRes::time() + 15;
	Time::HiRes::sleep(0.1) while kill(0, $worker_pid) && Time::HiRes::time() < $deadline;
	if (!Test::More::ok(!kill(0, $worker_pid),
			"$name: the orphaned worker exits within 15 s of the postmaster's death"))
	{
		kill('KILL', $worker_pid);
		Time::HiRes::sleep(0.1) while kill(0, $worker_pid);
	}
	my $started = 0;
	for (1 .. 20)
	{
		last if ($started = $node->start(fail_ok => 1));
		sleep 1;
	}
	Test::More::ok($started, "$name: node restarted after kill -9 of the postmaster");
	return;
}

# { partition => next_offset } of $node's driftlock.kafka_offsets rows for
# $group and $topic
sub stored_offsets
{
	my ($node, $group, $topic) = @_;
	return map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq{
SELECT partition, next_offset FROM driftlock.kafka_offsets
WHERE group_id = } . sql_quote($group) . ' AND topic = ' . sql_quote($topic));
}

# Pids of the running Kafka workers, in worker order
sub worker_pids
{
	my ($node) = @_;
	my $out = $node->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'
ORDER BY application_name});
	return grep { /\d/ } split /\n/, $out;
}

# The server log from byte $offset on
sub log_since
{
	my ($node, $offset) = @_;
	return PostgreSQL::Test::Utils::slurp_file($node->logfile, $offset // 0);
}

# How many lines of the server log from $offset match $re
sub count_log_matches
{
	my ($node, $re, $offset) = @_;
	my $n = () = log_since($node, $offset) =~ /^.*$re.*$/mg;
	return $n;
}


# ---------------------------------------------------------------------------
# Helpers for the tests of production topologies (test/t/024, 025): the
# offsets a group committed to Kafka, and the partitions the workers of a
# node were given, read from its log.
#
#   my %k = kafka_committed($kafka, 'group', 'events', 4);   # { 0 => [offset, metadata], ... }
#   my @r = log_rebalances($node, 'events', $log_offset);     # assigned/revoked lines, in order
#   my %own = current_assignment($node, 'events');            # { partition => worker }
# ---------------------------------------------------------------------------
push @EXPORT_OK, qw(kafka_committed log_rebalances current_assignment log_line_time);

# The offsets group $group committed to Kafka for partitions 0 .. $n - 1 of
# $topic, read with test/tools/kafka_committed (which does not join the
# group): { partition => [offset, metadata] }, offset -1001 when the group
# committed none, metadata undef when the commit carried none.
sub kafka_committed
{
	my ($kafka, $group, $topic, $n) = @_;
	my $bin = source_dir() . '/test/tools/kafka_committed';
	die "$bin not found: run \"make tools\"\n" unless -x $bin;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, '--brokers', $kafka->bootstrap, '--group', $group,
			'--topic', $topic, '--partitions', $n ], '<', \'', '>', \$out, '2>', \$err,
		IPC::Run::timeout(30))
	  or die "kafka_committed failed: $err\n";
	my %committed;
	for my $line (split /\n/, $out)
	{
		my ($p, $off, $meta) = split / /, $line, 3;
		$committed{$p} = [ $off, $meta eq '-' ? undef : $meta ];
	}
	return %committed;
}

# Seconds since the epoch of a server log line (log_line_prefix starts with
# %m, as PostgreSQL::Test::Cluster sets it); only differences are meant.
sub log_line_time
{
	my ($line) = @_;
	my ($y, $mo, $d, $h, $mi, $s, $frac) =
	  $line =~ /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?/
	  or return undef;
	require Time::Local;
	return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) + ($frac // 0);
}

# The "assigned partitions" and "revoked partitions" lines of $node's log
# from byte $offset, for topic $topic, in order: a list of { time, worker,
# what => 'assigned' or 'revoked', parts => { partition => offset } }.
sub log_rebalances
{
	my ($node, $topic, $offset) = @_;
	my @events;
	for my $line (split /\n/, log_since($node, $offset))
	{
		my ($worker, $what, $list) =
		  $line =~ /driftlock kafka worker (\d+) (assigned|revoked) partitions: (.*)$/
		  or next;
		my %parts;
		$parts{$1} = $2 while $list =~ /\Q$topic\E\[(\d+)\]@(-?\d+)/g;
		push @events, { time => log_line_time($line), worker => $worker, what => $what,
			parts => \%parts };
	}
	return @events;
}

# The partitions of $topic the workers of $node hold now, by its log: each
# worker's last "assigned" line unless a "revoked" line came after it.
# Returns { partition => worker }.
sub current_assignment
{
	my ($node, $topic, $offset) = @_;
	my %by_worker;
	for my $e (log_rebalances($node, $topic, $offset))
	{
		$by_worker{ $e->{worker} } = $e->{what} eq 'assigned' ? $e->{parts} : {};
	}
	my %owner;
	for my $w (keys %by_worker)
	{
		$owner{$_} = $w for keys %{ $by_worker{$w} };
	}
	return %owner;
}

# ---------------------------------------------------------------------------
# The hostile-input corpora (test/corpus/bad_input and bad_otlp, format in
# test/corpus/bad_input/README.md), test/tools/produce_raw, which sends any
# bytes, and the check that every case ended as it should.
#
#   my @cases = load_corpus(source_dir() . '/test/corpus/bad_input/cases.txt');
#   my @offsets = produce_raw($kafka, 'bad', 0, \@cases);   # one per case
#   check_corpus($node, 'bad', \@cases, \@offsets);          # after wait_offsets
# ---------------------------------------------------------------------------
push @EXPORT_OK, qw(load_corpus produce_raw check_corpus);

# Decode one quoted token's body: \\ \" \n \r \t \xNN
sub _corpus_unescape
{
	my ($s, $where) = @_;
	my %simple = ('\\' => '\\', '"' => '"', n => "\n", r => "\r", t => "\t");
	$s =~ s{\\(x([0-9A-Fa-f]{2})|.)}{
		defined $2 ? chr(hex $2)
		  : exists $simple{$1} ? $simple{$1}
		  : die "$where: unknown escape \\$1\n"
	}ge;
	return $s;
}

# A value: "null", or tokens "..." and N*"..." concatenated
sub _corpus_value
{
	my ($text, $where) = @_;
	return undef if $text eq 'null';
	my $value = '';
	while ($text =~ /\G\s*(?:(\d+)\*)?"((?:[^"\\]|\\.)*)"/gc)
	{
		$value .= _corpus_unescape($2, $where) x ($1 // 1);
	}
	die "$where: cannot read the value at \"" . substr($text, pos($text) // 0) . "\"\n"
	  unless (pos($text) // 0) == length($text) || substr($text, pos($text)) =~ /^\s*$/;
	return $value;
}

# One expect line of case $c: what the message must end as
sub _corpus_expect
{
	my ($c, $rest, $where) = @_;
	my ($what, $arg) = $rest =~ /^(\S+)\s*(.*)$/ or die "$where: expect what?\n";
	my $dead = @{ $c->{dead} };
	if ($what eq 'event' || $what eq 'events')
	{
		my ($stream, $n) = $what eq 'event' ? ($arg, 1) : $arg =~ /^(.*\S)\s+(\d+)$/
		  or die "$where: expect events \"STREAM\" N\n";
		$c->{events}{ _corpus_value($stream, $where) } += $n;
	}
	elsif ($what eq 'dead' && $arg =~ /^([a-z_]+)$/)
	{
		push @{ $c->{dead} }, { index => undef, reason => $1 };
	}
	elsif ($what eq 'record-dead' && $arg =~ /^(\d+)(?:\.\.(\d+))?\s+([a-z_]+)$/)
	{
		my ($first, $last, $reason) = ($1, $2 // $1, $3);
		die "$where: record range $first..$last is empty\n" if $last < $first;
		push @{ $c->{dead} }, map { { index => $_, reason => $reason } } $first .. $last;
	}
	elsif ($what eq 'nothing' && $arg eq '')
	{
		$c->{nothing} = 1;
	}
	else
	{
		die "$where: expect event \"STREAM\", events \"STREAM\" N, dead REASON, "
		  . "record-dead INDEX[..LAST] REASON or nothing\n";
	}
	$c->{expects}++;
	$c->{last_dead} = [ @{ $c->{dead} }[ $dead .. $#{ $c->{dead} } ] ];    # for detail
	return;
}

# Read a corpus: a list of { name, format, headers => [[name, value]], key,
# payload, size, events => { stream => n }, dead => [ { index (undef: the
# whole message), reason, detail } ], nothing }.  Dies on any mistake in the
# file, so a broken case cannot pass unnoticed.
sub load_corpus
{
	my ($file) = @_;
	open my $fh, '<:raw', $file or die "cannot read $file: $!\n";
	my (@cases, %seen);
	while (my $line = <$fh>)
	{
		chomp $line;
		next if $line =~ /^\s*(#|$)/;
		my $where = "$file:$.";
		my ($kw, $rest) = $line =~ /^(\S+)\s*(.*)$/;
		if ($kw eq 'case')
		{
			die "$where: case $rest appears twice\n" if $seen{$rest}++;
			push @cases, { name => $rest, headers => [], events => {}, dead => [] };
			next;
		}
		die "$where: \"$kw\" before the first case\n" unless @cases;
		my $c = $cases[-1];
		if ($kw eq 'header')
		{
			my ($name, $value) = $rest =~ /^("(?:[^"\\]|\\.)*")\s+(.*)$/
			  or die "$where: header needs a quoted name and a value\n";
			push @{ $c->{headers} }, [ _corpus_value($name, $where), _corpus_value($value, $where) ];
		}
		elsif ($kw eq 'repeat-header')
		{
			die "$where: repeat-header needs a count and a header before it\n"
			  unless $rest =~ /^\d+$/ && @{ $c->{headers} };
			push @{ $c->{headers} }, ($c->{headers}[-1]) x ($rest - 1);
		}
		elsif ($kw eq 'key')
		{
			$c->{key} = _corpus_value($rest, $where);
		}
		elsif ($kw eq 'payload')
		{
			$c->{payload} = _corpus_value($rest, $where);
			$c->{has_payload} = 1;
		}
		elsif ($kw eq 'size')
		{
			$c->{size} = $rest;
		}
		elsif ($kw eq 'format')
		{
			die "$where: format needs a name\n" unless $rest =~ /^\w+$/;
			$c->{format} = $rest;
		}
		elsif ($kw eq 'expect')
		{
			_corpus_expect($c, $rest, $where);
		}
		elsif ($kw eq 'detail')
		{
			# of the dead letters of the expect line just before
			die "$where: detail needs an expect dead or record-dead line just before it\n"
			  unless @{ $c->{last_dead} // [] } && !defined $c->{last_dead}[0]{detail};
			my $detail = _corpus_value($rest, $where);
			$_->{detail} = $detail for @{ $c->{last_dead} };
		}
		else
		{
			die "$where: unknown keyword $kw\n";
		}
	}
	close $fh;
	for my $c (@cases)
	{
		my $what = "$file: case $c->{name}";
		my %index;
		die "$what has no payload line\n" unless $c->{has_payload};
		die "$what has no expect line\n" unless $c->{expects};
		die "$what is " . length($c->{payload} // '') . " bytes, not $c->{size}\n"
		  if defined $c->{size} && length($c->{payload} // '') != $c->{size};
		die "$what: expect nothing goes alone\n" if $c->{nothing} && $c->{expects} > 1;
		die "$what: a whole-message dead letter goes alone\n"
		  if grep({ !defined $_->{index} } @{ $c->{dead} }) && $c->{expects} > 1;
		die "$what: a record has two outcomes\n"
		  if grep { $index{ $_->{index} // '-' }++ } @{ $c->{dead} };
	}
	return @cases;
}

# Runs the tests of a corpus run: the dead letters at each case's offset
# (@$offsets, as produce_raw returned them) are exactly those of its expect
# lines (reason, record index; the detail text when given), each keeps the
# message's headers and its payload (a whole message's as sent, up to 64
# KiB; a record's not empty); no other dead letter of $topic exists; and
# driftlock.stream_state.events of every stream of the node is the sum of
# the events the cases name for it.  $label (optional) prefixes the test
# names.  Returns the number of dead letters expected.
sub check_corpus
{
	my ($node, $topic, $cases, $offsets, $label) = @_;
	my $pre = defined $label ? "$label: " : '';
	require Digest::MD5;
	my %dead;
	for my $line (split /\n/, $node->safe_psql('postgres', q{
SELECT kafka_offset, coalesce(kafka_record_index::text, '-'), reason,
       encode(convert_to(coalesce(detail, ''), 'UTF8'), 'hex'),
       payload IS NULL, coalesce(md5(payload), ''), coalesce(length(payload), -1),
       coalesce(jsonb_array_length(headers), -1), coalesce(headers @> '[{"truncated": true}]', false)
FROM driftlock.dead_letters WHERE kafka_topic = } . sql_quote($topic)))
	{
		my ($off, $index, $reason, $detail, $null, $md5, $len, $nheaders, $truncated) = split /\|/, $line, -1;
		$dead{$off}{$index} = { reason => $reason, detail => pack('H*', $detail), null => $null eq 't',
			md5 => $md5, len => $len, nheaders => $nheaders, truncated => $truncated eq 't' };
	}

	my ($expected, %events) = (0);
	for my $i (0 .. $#$cases)
	{
		my $c = $cases->[$i];
		my $name = "$pre$c->{name}";
		my $got = delete $dead{ $offsets->[$i] } // {};
		$events{$_} += $c->{events}{$_} for keys %{ $c->{events} };
		$expected += @{ $c->{dead} };
		my $want = _corpus_summary(map { [ $_->{index} // '-', $_->{reason} ] } @{ $c->{dead} });
		Test::More::is(_corpus_summary(map { [ $_, $got->{$_}{reason} ] } keys %$got), $want,
			@{ $c->{dead} } ? "$name: dead letters $want" : "$name: no dead letter")
		  or Test::More::diag(join("\n", map { "record $_: $got->{$_}{reason}: $got->{$_}{detail}" }
				  grep { defined } (sort keys %$got)[ 0 .. 4 ]));
		# each expected dead letter that exists, with the row
		my @found = grep { $_->[1] } map { [ $_, $got->{ $_->{index} // '-' } ] } @{ $c->{dead} };
		next unless @found;
		my $whole = !defined $c->{dead}[0]{index};

		if (grep { defined $_->[0]{detail} } @found)
		{
			my @bad = grep { defined $_->[0]{detail} && index($_->[1]{detail}, $_->[0]{detail}) < 0 } @found;
			Test::More::ok(!@bad, "$name: the detail names the problem")
			  or Test::More::diag("detail: $bad[0][1]{detail}");
		}

		my $kept = defined $c->{payload} ? substr($c->{payload}, 0, 65536) : undef;
		my @bad = grep {
			my $d = $_->[1];
			!$whole ? $d->{null} || $d->{len} <= 0
			  : !defined $kept ? !$d->{null}
			  : $d->{null} || $d->{len} != length($kept) || $d->{md5} ne Digest::MD5::md5_hex($kept)
		} @found;
		Test::More::ok(!@bad, "$name: payload kept ("
			  . (!$whole ? 'each record as a batch' : defined $kept ? length($kept) . ' bytes' : 'null') . ')')
		  or Test::More::diag('record ' . ($bad[0][0]{index} // '-') . ": $bad[0][1]{len} bytes, null: $bad[0][1]{null}");

		my $n = scalar @{ $c->{headers} };
		@bad = grep {
			my $d = $_->[1];
			$d->{truncated} ? !($n > 100 && $d->{nheaders} < $n) : $d->{nheaders} != ($n == 0 ? -1 : $n)
		} @found;
		Test::More::ok(!@bad, "$name: headers kept" . ((grep { $_->[1]{truncated} } @found) ? ', truncated at 64 KiB' : ''))
		  or Test::More::diag("$bad[0][1]{nheaders} headers recorded, $n sent");
	}
	Test::More::is(join(' ', sort keys %dead), '', "${pre}no dead letter at an offset of no case");

	# the worker checkpoints once caught up: wait for the counts a while
	my $sql = q{SELECT s.name || '=' || coalesce(st.events, 0)
FROM driftlock.streams s LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id};
	my %want = map { (/^(.*)=\d+$/s)[0] => 0 } split /\n/, $node->safe_psql('postgres', $sql);
	$want{$_} = $events{$_} for keys %events;
	my $want = join("\n", map { "$_=$want{$_}" } sort keys %want);
	my $state = sub { join("\n", sort split /\n/, $node->safe_psql('postgres', $sql)) };
	my $deadline = Time::HiRes::time() + 30;
	Time::HiRes::sleep(0.2) while $state->() ne $want && Time::HiRes::time() < $deadline;
	Test::More::is($state->(), $want, "${pre}each stream's detector counted exactly its events");
	return $expected;
}

# "index:reason ..." of dead letters ([index or '-', reason]), in record
# order, runs of records with one reason as "first..last:reason"
sub _corpus_summary
{
	my @l;
	for my $d (sort { ($a->[0] eq '-' ? -1 : $a->[0]) <=> ($b->[0] eq '-' ? -1 : $b->[0]) } @_)
	{
		if (@l && $d->[0] ne '-' && $l[-1][1] ne '-' && $l[-1][1] == $d->[0] - 1 && $l[-1][2] eq $d->[1])
		{
			$l[-1][1] = $d->[0];
			next;
		}
		push @l, [ $d->[0], $d->[0], $d->[1] ];
	}
	return 'none' unless @l;
	return join ' ', map { ($_->[0] eq $_->[1] ? $_->[0] : "$_->[0]..$_->[1]") . ":$_->[2]" } @l;
}

# Produce the cases (load_corpus) in order to one partition with
# test/tools/produce_raw; returns their offsets.  A case may also give a
# key (bytes; undef or missing: a null key) and a timestamp (create time,
# milliseconds since the Unix epoch; missing: now).
sub produce_raw
{
	my ($kafka, $topic, $partition, $cases) = @_;
	my $bin = source_dir() . '/test/tools/produce_raw';
	die "$bin not found: run \"make tools\"\n" unless -x $bin;
	my $in = '';
	for my $c (@$cases)
	{
		my $len = sub { defined $_[0] ? length $_[0] : -1 };
		$in .= sprintf("message %d %d %d %s\n", scalar @{ $c->{headers} }, $len->($c->{payload}),
			$len->($c->{key}), $c->{timestamp} // 0);
		for my $h (@{ $c->{headers} })
		{
			$in .= sprintf("header %d %d\n", length $h->[0], $len->($h->[1]));
			$in .= $h->[0] . ($h->[1] // '');
		}
		$in .= ($c->{key} // '') . ($c->{payload} // '');
	}
	my ($out, $err) = ('', '');
	IPC::Run::run([ $bin, '--brokers', $kafka->bootstrap, '--topic', $topic,
			'--partition', $partition ], '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120))
	  or die "produce_raw failed: $err\n";
	my @offsets;
	for my $line (split /\n/, $out)
	{
		my ($i, $p, $off) = split / /, $line;
		$offsets[$i] = $off;
	}
	die "produce_raw delivered " . scalar(@offsets) . " of " . scalar(@$cases) . " messages\n"
	  unless @offsets == @$cases;
	return @offsets;
}

1;
