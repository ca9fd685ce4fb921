# driftlock not preloaded: CREATE EXTENSION works, and every setting is
# defined once the library is loaded, restart-only ones as reloadable.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'the library is not preloaded');

$node->safe_psql('postgres', 'CREATE EXTENSION driftlock');
pass('CREATE EXTENSION without preloading');

is( $node->safe_psql(
		'postgres', q{
LOAD 'driftlock';
SELECT count(*) FROM pg_settings
WHERE name LIKE 'driftlock.%' AND short_desc <> '' AND extra_desc <> ''}),
	'30', 'the thirty settings other than kafka_properties show in pg_settings with descriptions');

is( $node->safe_psql(
		'postgres', q{
LOAD 'driftlock';
SELECT string_agg(name || '=' || context, ',' ORDER BY name) FROM pg_settings
WHERE name IN ('driftlock.database', 'driftlock.kafka_workers')}),
	'driftlock.database=sighup,driftlock.kafka_workers=sighup',
	'restart-only settings fall back to sighup without preloading');

# A new session loads the library through the extension's function
is( $node->safe_psql(
		'postgres', q{
SELECT driftlock_config_check('{}');
SELECT setting FROM pg_settings WHERE name = 'driftlock.kafka_topic'}),
	"t\ndriftlock-events", 'calling a function loads the library and its settings');

# Asking for the worker without preloading is a visible mistake
$node->append_conf('postgresql.conf', "driftlock.kafka_enabled = on\n");
$node->reload;
my ($ret, $stdout, $stderr) = $node->psql('postgres', "LOAD 'driftlock'");
is($ret, 0, 'the library still loads with kafka_enabled on');
like($stderr, qr/WARNING:  driftlock\.kafka_enabled is on, but no Kafka worker runs/,
	'a warning says no worker runs without preloading');
like($stderr, qr/HINT:  Add driftlock to shared_preload_libraries/, 'and how to fix it');

$node->safe_psql('postgres', 'DROP EXTENSION driftlock');
pass('DROP EXTENSION');

$node->stop;
done_testing();
