# Metrics follow transactions: counts of driftlock_observe() are published
# when the transaction commits, and a rolled-back transaction or savepoint
# takes its counts with it, so the counters equal the rows.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('metrics_xact');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'driftlock'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION driftlock;
INSERT INTO driftlock.streams (name, config) VALUES ('s', '{"warmup": 10}');
});

sub processed
{
	return $node->safe_psql('postgres', q{
SELECT value FROM driftlock.metrics WHERE metric = 'driftlock_events_processed_total'});
}

sub observe_sql
{
	my ($text) = @_;
	return "SELECT driftlock_observe(id, '$text'::text) FROM driftlock.streams;";
}

is(processed(), '0', 'nothing counted yet');

$node->safe_psql('postgres', 'BEGIN;' . observe_sql('a') . 'ROLLBACK;');
is(processed(), '0', 'a rolled-back transaction counts nothing');

$node->safe_psql('postgres', join('',
	'BEGIN;', observe_sql('one'),
	'SAVEPOINT a;', observe_sql('two'), observe_sql('three'), 'ROLLBACK TO SAVEPOINT a;',
	'SAVEPOINT b;', observe_sql('four'),
	'SAVEPOINT c;', observe_sql('five'), 'RELEASE SAVEPOINT c;',
	'SAVEPOINT d;', observe_sql('six'), 'ROLLBACK TO SAVEPOINT d;',
	'RELEASE SAVEPOINT b;', 'COMMIT;'));
is(processed(), '3', 'rolled-back savepoints take their counts with them, released ones keep them');
is($node->safe_psql('postgres', 'SELECT events FROM driftlock.stream_state'), '3',
	'and the counter equals what the stream state saw');

# a PL/pgSQL exception block is a savepoint too
$node->safe_psql('postgres', q{
DO $$
BEGIN
    PERFORM driftlock_observe(id, 'seven'::text) FROM driftlock.streams;
    BEGIN
        PERFORM driftlock_observe(id, 'eight'::text) FROM driftlock.streams;
        RAISE EXCEPTION 'undo eight';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END $$;
});
is(processed(), '4', 'an exception block that catches an error drops its counts');
is($node->safe_psql('postgres', 'SELECT events FROM driftlock.stream_state'), '4',
	'the counter still equals the stream state');

$node->stop;
done_testing();
