-- contrib/pg_partman/partition_anomalies.sql -- driftlock.anomalies as a
-- table partitioned by detected_at, managed by pg_partman 5
--
--   psql -d <driftlock.database> -v partition_interval='1 day' -f partition_anomalies.sql
--
-- Prerequisites (docs/operations.md#partitioning-anomalies-with-pg_partman):
-- the Kafka workers stopped (driftlock.kafka_enabled = off and a reload),
-- driftlock 0.2.0, and pg_partman 5 in schema partman:
--
--   CREATE SCHEMA partman;
--   CREATE EXTENSION pg_partman SCHEMA partman;
--
-- In one transaction, holding an exclusive lock on the table:
--
--   1. driftlock.anomalies leaves the extension (a partitioned table cannot
--      be made from a plain one in place, and the extension's script would
--      create the plain one again): ALTER EXTENSION ... DROP TABLE.  The
--      sequence of its ids stays a member of the extension, with its
--      position.  pg_dump then dumps the new table like any table of yours
--      (see "Backups" in docs/operations.md for the restore).
--   2. feedback.anomaly_id loses its foreign key: a key referencing a
--      partitioned table needs a unique constraint there that includes the
--      partition key, and id alone would not.  The column keeps the id of
--      the anomaly marked normal, which may have been dropped since.
--   3. A partitioned driftlock.anomalies, with the same columns, defaults,
--      checks, comments, indexes, foreign keys and privileges, takes the
--      rows.  The unique keys that do not include detected_at -- the id and
--      the Kafka position (topic, partition, offset, record index) -- are on each
--      partition, made by pg_partman from the template table
--      driftlock.anomalies_template.
--   4. pg_partman creates the partitions, from the oldest anomaly's interval
--      to a few intervals ahead of now; run its maintenance regularly
--      (pg_partman_bgw, or partman.run_maintenance_proc() from cron).
--
-- Retention is then pg_partman's (it drops whole partitions): see the
-- operations guide for how it goes with driftlock.retention.

\set ON_ERROR_STOP on
\if :{?partition_interval}
\else
\set partition_interval '1 day'
\endif

BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension
                   WHERE extname = 'pg_partman' AND split_part(extversion, '.', 1)::int >= 5
                     AND extnamespace = 'partman'::regnamespace) THEN
        RAISE EXCEPTION 'pg_partman 5 is not installed in schema partman'
            USING HINT = 'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;';
    END IF;
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'driftlock.anomalies'::regclass) = 'p' THEN
        RAISE EXCEPTION 'driftlock.anomalies is partitioned already';
    END IF;
    IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'driftlock') <> '0.2.0' THEN
        RAISE EXCEPTION 'this script is for driftlock 0.2.0'
            USING HINT = 'ALTER EXTENSION driftlock UPDATE first.';
    END IF;
END
$$;

LOCK TABLE driftlock.anomalies IN ACCESS EXCLUSIVE MODE;

-- 1. out of the extension; its sequence stays in it
ALTER EXTENSION driftlock DROP TABLE driftlock.anomalies;
ALTER SEQUENCE driftlock.anomalies_id_seq OWNED BY NONE;
-- 2. no foreign key can reference a partitioned anomalies(id)
ALTER TABLE driftlock.feedback DROP CONSTRAINT feedback_anomaly_id_fkey;

-- 3. the partitioned table and its template
ALTER TABLE driftlock.anomalies RENAME TO anomalies_unpartitioned;
CREATE TABLE driftlock.anomalies (LIKE driftlock.anomalies_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (detected_at);
COMMENT ON TABLE driftlock.anomalies IS
'events flagged as anomalous by the detector; at most one row per Kafka message (per log record of an OpenTelemetry batch); partitioned by detected_at (pg_partman)';

CREATE TABLE driftlock.anomalies_template (LIKE driftlock.anomalies_unpartitioned);
ALTER TABLE driftlock.anomalies_template
    ADD PRIMARY KEY (id),
    ADD UNIQUE (kafka_topic, kafka_partition, kafka_offset, kafka_record_index);
COMMENT ON TABLE driftlock.anomalies_template IS
'pg_partman template of the partitions of driftlock.anomalies: their unique keys (id, Kafka position); holds no rows';

-- privileges: driftlock_admin's, as before, and no one else's, whatever
-- the default privileges (ALTER DEFAULT PRIVILEGES) of the role running
-- this gave the new tables
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT DISTINCT pg_catalog.format('REVOKE ALL ON TABLE %s FROM %s', c.oid::pg_catalog.regclass,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END)
        FROM pg_catalog.pg_class c
        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
        WHERE c.oid IN ('driftlock.anomalies'::regclass, 'driftlock.anomalies_template'::regclass)
          AND a.grantee <> c.relowner
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON driftlock.anomalies TO driftlock_admin;

-- 4. the partitions: from the oldest anomaly on
SELECT coalesce(min(detected_at), now())::text AS first_anomaly
FROM driftlock.anomalies_unpartitioned \gset
SELECT partman.create_parent(
    p_parent_table := 'driftlock.anomalies',
    p_control := 'detected_at',
    p_interval := :'partition_interval',
    p_start_partition := :'first_anomaly',
    p_template_table := 'driftlock.anomalies_template');
-- partitions ahead of time even when no anomaly comes for a while, with
-- the parent's privileges and no others
UPDATE partman.part_config SET infinite_time_partitions = true, inherit_privileges = true
WHERE parent_table = 'driftlock.anomalies';
SELECT partman.reapply_privileges('driftlock.anomalies');

INSERT INTO driftlock.anomalies SELECT * FROM driftlock.anomalies_unpartitioned;
DROP TABLE driftlock.anomalies_unpartitioned;

-- the old table's indexes and foreign keys, on the parent
CREATE INDEX anomalies_stream_id_detected_at_idx ON driftlock.anomalies (stream_id, detected_at);
CREATE INDEX anomalies_incident_id_idx ON driftlock.anomalies (incident_id);
CREATE INDEX anomalies_detected_at_idx ON driftlock.anomalies (detected_at);
ALTER TABLE driftlock.anomalies
    ADD CONSTRAINT anomalies_stream_id_fkey FOREIGN KEY (stream_id)
        REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    ADD CONSTRAINT anomalies_incident_id_fkey FOREIGN KEY (incident_id)
        REFERENCES driftlock.incidents (id) ON DELETE SET NULL;

COMMIT;
