-- contrib/pg_partman/before_restore.sql -- prepare an empty database for
-- the restore of a dump taken after partition_anomalies.sql
--
--   createdb app
--   psql -d app -f before_restore.sql
--   psql -d app -v ON_ERROR_STOP=1 -f dump.sql        (or pg_restore -d app)
--
-- The dump creates driftlock.anomalies as the partitioned table it had
-- become, but its CREATE EXTENSION driftlock comes first and would create
-- the extension's plain table of that name.  This creates the extension,
-- at the version of the dump, and takes that table away, so the dump's
-- own comes in its place (with its partitions, rows and foreign keys);
-- CREATE EXTENSION IF NOT EXISTS in the dump then does nothing, and the
-- rows of the extension's other tables and the sequence's position are
-- restored into them as usual.  Run it before pg_partman is created (the
-- dump creates pg_partman and its configuration).

\set ON_ERROR_STOP on
BEGIN;
CREATE EXTENSION driftlock VERSION '0.2.0';
ALTER EXTENSION driftlock DROP TABLE driftlock.anomalies;
ALTER SEQUENCE driftlock.anomalies_id_seq OWNED BY NONE;
-- CASCADE: feedback's foreign key to it, which the dumped database no
-- longer had either
DROP TABLE driftlock.anomalies CASCADE;
COMMIT;
