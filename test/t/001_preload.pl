# driftlock loaded through shared_preload_libraries: restart-only settings are
# real postmaster settings, and kafka_properties stays hidden from
# non-superusers (pg_settings, pg_show_all_settings(), SHOW, SHOW ALL,
# current_setting(), pg_file_settings) and out of the server log (on reload,
# and when the worker or librdkafka rejects the value).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Never put the secret into SQL text: the test cluster logs every statement.
my $secret   = 's3cret';
my $props    = "security.protocol=SASL_SSL;sasl.username=app;sasl.password=$secret";
my $props_v2 = "security.protocol=SASL_SSL;sasl.username=app;sasl.password=${secret}-rotated";

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'driftlock'
driftlock.kafka_properties = '$props'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION driftlock');
pass('CREATE EXTENSION with the library preloaded');

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(name || '=' || context, ',' ORDER BY name) FROM pg_settings
WHERE name IN ('driftlock.database', 'driftlock.kafka_restart_interval', 'driftlock.kafka_workers')}),
	'driftlock.database=postmaster,driftlock.kafka_restart_interval=postmaster,driftlock.kafka_workers=postmaster',
	'restart-only settings are postmaster settings when preloaded');
# kafka_properties has no pg_settings row (see below): SET tells its context
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{SET driftlock.kafka_properties = 'x=y'});
like($stderr, qr/parameter "driftlock.kafka_properties" cannot be changed without restarting the server/,
	'kafka_properties is a postmaster setting when preloaded');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_settings
WHERE name LIKE 'driftlock.%' AND context = 'sighup'}),
	'26', 'the other twenty-six settings are reloadable');

is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props, 'a superuser sees kafka_properties');

$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_plain LOGIN;
CREATE ROLE regress_reader LOGIN;
GRANT pg_read_all_settings TO regress_reader;
CREATE ROLE regress_monitor LOGIN;
GRANT pg_monitor TO regress_monitor;
});

is( $node->safe_psql(
		'postgres', q{
SET ROLE regress_plain;
SELECT count(*) FROM pg_settings WHERE name = 'driftlock.kafka_properties'}),
	'0', 'kafka_properties is absent from pg_settings for a non-superuser');

is( $node->safe_psql(
		'postgres', q{
SET ROLE regress_plain;
SELECT count(*) FROM pg_settings WHERE name LIKE 'driftlock.%'}),
	'30', 'a non-superuser sees the other settings');

($ret, $stdout, $stderr) =
  $node->psql('postgres', 'SET ROLE regress_plain; SHOW driftlock.kafka_properties');
isnt($ret, 0, 'SHOW kafka_properties fails for a non-superuser');
like($stderr, qr/must be superuser or have privileges of pg_read_all_settings|permission denied to examine "driftlock.kafka_properties"/,
	'SHOW kafka_properties: permission error');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'SHOW does not reveal the secret');

($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE regress_plain; SELECT current_setting('driftlock.kafka_properties')});
isnt($ret, 0, 'current_setting(kafka_properties) fails for a non-superuser');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'current_setting does not reveal the secret');

# Members of pg_read_all_settings (and so of pg_monitor, which monitoring
# agents often use) see which properties are set, every value masked
my $masked = 'security.protocol=********;sasl.username=********;sasl.password=********';
for my $role ('regress_reader', 'regress_monitor')
{
	is($node->safe_psql('postgres', "SET ROLE $role; SHOW driftlock.kafka_properties"),
		$masked, "$role: SHOW kafka_properties masks every value");
	is($node->safe_psql('postgres', "SET ROLE $role; SELECT current_setting('driftlock.kafka_properties')"),
		$masked, "$role: current_setting(kafka_properties) masks every value");
	my $all = $node->safe_psql('postgres',
		"SELECT string_agg(s::text, E'\\n') FROM pg_settings s", extra_params => [ '-U', $role ]);
	like($all, qr/driftlock\.kafka_topic/, "$role: pg_settings lists the other driftlock settings");
	unlike($all, qr/driftlock\.kafka_properties|\Q$secret\E/,
		"$role: pg_settings has no row for kafka_properties (its reset_val would be unmasked)");
	($ret, $stdout, $stderr) = $node->psql('postgres', 'SHOW ALL', extra_params => [ '-U', $role ]);
	unlike($stdout . $stderr, qr/\Q$secret\E/, "$role: SHOW ALL does not reveal the secret");
}

($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE regress_plain; SELECT current_setting('driftlock.kafka_properties', true)});
isnt($ret, 0, 'current_setting(kafka_properties, missing_ok) fails too');
like($stderr, qr/must be superuser or have privileges of pg_read_all_settings|permission denied to examine "driftlock.kafka_properties"/,
	'current_setting(kafka_properties, missing_ok): permission error');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'current_setting(..., true) does not reveal the secret');

# Every row and column of pg_settings and of the function behind it, read by
# a role that logged in itself (not SET ROLE)
for my $source ('pg_settings', 'pg_show_all_settings()')
{
	my $rows = $node->safe_psql('postgres',
		"SELECT count(*) || E'\\n' || string_agg(s::text, E'\\n') FROM $source s",
		extra_params => [ '-U', 'regress_plain' ]);
	like($rows, qr/^\d{3,}\n/, "$source lists the settings to a non-superuser");
	like($rows, qr/driftlock\.kafka_topic/, "$source lists the other driftlock settings");
	unlike($rows, qr/driftlock\.kafka_properties/, "$source has no row for kafka_properties");
	unlike($rows, qr/\Q$secret\E/, "no column of $source holds the secret");
}
my $sasl_values = q{
SELECT count(*) FROM pg_settings
WHERE setting LIKE '%sasl.password%' OR reset_val LIKE '%sasl.password%'
   OR boot_val LIKE '%sasl.password%'};
is($node->safe_psql('postgres', "SET ROLE regress_plain; $sasl_values"),
	'0', 'no setting, reset_val or boot_val in pg_settings holds the SASL settings');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name LIKE 'driftlock.%'"),
	'30', 'pg_settings lists the other 30 driftlock settings, even to a superuser');

($ret, $stdout, $stderr) = $node->psql('postgres', 'SHOW ALL', extra_params => [ '-U', 'regress_plain' ]);
is($ret, 0, 'SHOW ALL works for a non-superuser');
like($stdout, qr/^driftlock\.kafka_topic\|/m, 'SHOW ALL lists the other driftlock settings');
unlike($stdout, qr/^driftlock\.kafka_properties\|/m, 'SHOW ALL has no line for kafka_properties');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'SHOW ALL does not reveal the secret');

# pg_file_settings shows postgresql.conf as written: superusers only, even
# for members of pg_read_all_settings
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_file_settings
WHERE name = 'driftlock.kafka_properties' AND setting LIKE '%sasl.password=%'}),
	'1', 'pg_file_settings holds the value (seen by a superuser)');
for my $role ('regress_plain', 'regress_reader', 'regress_monitor')
{
	for my $source ('pg_file_settings', 'pg_show_all_file_settings()')
	{
		($ret, $stdout, $stderr) = $node->psql('postgres',
			"SET ROLE $role; SELECT name, setting FROM $source WHERE name LIKE 'driftlock.%'");
		isnt($ret, 0, "$role cannot read $source");
		like($stderr, qr/permission denied for (?:view|function) pg_(?:show_all_)?file_settings/,
			"$role reading $source: permission error");
		unlike($stdout . $stderr, qr/\Q$secret\E/, "$source does not reveal the secret to $role");
	}
}

# Set kafka_properties to $value in postgresql.conf and reload: the
# postmaster logs only that a restart is needed (test $name).  Returns the
# log offset from before the reload.
sub reload_properties
{
	my ($value, $name) = @_;
	my $offset = -s $node->logfile;
	$node->append_conf('postgresql.conf', "driftlock.kafka_properties = '$value'\n");
	$node->reload;
	ok( $node->wait_for_log(
			qr/parameter "driftlock.kafka_properties" cannot be changed without restarting the server/,
			$offset),
		$name);
	return $offset;
}

# Change the secret and reload: the postmaster must not log the new value.
my $log_offset = reload_properties($props_v2, 'reload reports that kafka_properties needs a restart');
is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props, 'the old value stays in effect until restart');

$node->restart;
is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props_v2, 'the new value is in effect after restart');
unlike(slurp_file($node->logfile, $log_offset), qr/\Q$secret\E/,
	'the secret is not in the log of the reload and the restart');

# Failing values.  The postmaster does not validate kafka_properties (no
# check hook); the worker does when it starts, and librdkafka checks each
# property.  None of them may copy the secret into the log, whether it is a
# value of its own or part of a mistyped one (a "," instead of a ";").
my @failing = (
	[
		'an entry without "="',
		"security.protocol=SASL_SSL;sasl.password=${secret}-a;${secret}-b",
		qr/cannot start: invalid driftlock\.kafka_properties\n[^\n]*DETAIL:  Entry 3 of driftlock\.kafka_properties has no "="/
	],
	[
		'a rejected value quoted whole by librdkafka',
		"security.protocol=SASL_SSL;sasl.mechanisms=PLAIN,sasl.password=${secret}-c",
		qr/cannot start: invalid driftlock\.kafka_properties\n[^\n]*DETAIL:  The value of "sasl\.mechanisms" is not valid/
	],
	[
		'a rejected list item quoted by librdkafka',
		"security.protocol=SASL_SSL;debug=security,sasl.password=${secret}-d",
		qr/cannot start: invalid driftlock\.kafka_properties\n[^\n]*DETAIL:  The value of "debug" is not valid/
	],
	[
		'a value librdkafka accepts but cannot use',
		"security.protocol=SASL_PLAINTEXT;sasl.mechanisms=${secret}-e",
		qr/cannot create a Kafka consumer/
	]);
my $enabled = 0;
for my $f (@failing)
{
	my ($what, $value, $logged) = @$f;

	# on reload: only "cannot be changed without restarting"
	$log_offset = reload_properties($value, "failing value ($what): reload reports that a restart is needed");

	# at start: the worker reports the problem
	if (!$enabled)
	{
		$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = on\n");
		$enabled = 1;
	}
	$node->restart;
	ok($node->wait_for_log($logged, $log_offset), "failing value ($what): the worker says why it cannot start");
	unlike(slurp_file($node->logfile, $log_offset), qr/\Q$secret\E/,
		"failing value ($what): the secret is not in the log");
}

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$secret\E/, 'the secret appears nowhere in the server log');

done_testing();
