--
-- driftlock.metrics and friends without shared_preload_libraries (as
-- pg_regress runs): a clear error saying how to fix it.  The counters
-- themselves are tested with the worker, in test/t/020_metrics.pl.
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

SELECT * FROM driftlock.metrics;
SELECT driftlock_prometheus();
SELECT driftlock_metrics_reset();

-- who may do what
SELECT has_table_privilege('public', 'driftlock.metrics', 'SELECT') AS public_reads_metrics,
       has_function_privilege('public', 'driftlock_prometheus()', 'EXECUTE') AS public_exports,
       has_function_privilege('public', 'driftlock_metrics_reset()', 'EXECUTE') AS public_resets,
       has_function_privilege('driftlock_admin', 'driftlock_metrics_reset()', 'EXECUTE') AS admin_resets;

-- driftlock_observe works without preloading; it just counts nothing
INSERT INTO driftlock.streams (name) VALUES ('no-metrics');
SELECT (driftlock_observe(id, 'an event'::text)).warm FROM driftlock.streams;

DROP EXTENSION driftlock;
