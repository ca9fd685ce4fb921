# driftlock loaded through shared_preload_libraries: restart-only settings are
# real postmaster settings, and kafka_properties stays hidden from
# non-superusers and out of the server log.
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
WHERE name IN ('driftlock.database', 'driftlock.kafka_workers', 'driftlock.kafka_properties')}),
	'driftlock.database=postmaster,driftlock.kafka_properties=postmaster,driftlock.kafka_workers=postmaster',
	'restart-only settings are postmaster settings when preloaded');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_settings
WHERE name LIKE 'driftlock.%' AND context = 'sighup'}),
	'11', 'the other eleven settings are reloadable');

is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props, 'a superuser sees kafka_properties');

$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_plain LOGIN;
CREATE ROLE regress_reader LOGIN;
GRANT pg_read_all_settings TO regress_reader;
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
	'14', 'a non-superuser sees the other settings');

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'SET ROLE regress_plain; SHOW driftlock.kafka_properties');
isnt($ret, 0, 'SHOW kafka_properties fails for a non-superuser');
like($stderr, qr/must be superuser or have privileges of pg_read_all_settings/,
	'SHOW kafka_properties: permission error');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'SHOW does not reveal the secret');

($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE regress_plain; SELECT current_setting('driftlock.kafka_properties')});
isnt($ret, 0, 'current_setting(kafka_properties) fails for a non-superuser');
unlike($stdout . $stderr, qr/\Q$secret\E/, 'current_setting does not reveal the secret');

is($node->safe_psql('postgres', 'SET ROLE regress_reader; SHOW driftlock.kafka_properties'),
	$props, 'a member of pg_read_all_settings sees kafka_properties');

# Change the secret and reload: the postmaster must not log the new value.
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "driftlock.kafka_properties = '$props_v2'\n");
$node->reload;
ok( $node->wait_for_log(
		qr/parameter "driftlock.kafka_properties" cannot be changed without restarting the server/,
		$log_offset),
	'reload reports that kafka_properties needs a restart');
is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props, 'the old value stays in effect until restart');

$node->restart;
is($node->safe_psql('postgres', 'SHOW driftlock.kafka_properties'),
	$props_v2, 'the new value is in effect after restart');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$secret\E/, 'the secret appears nowhere in the server log');

done_testing();
