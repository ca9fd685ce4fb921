--
-- The driftlock schema: tables, columns, constraints, indexes, comments,
-- privileges, pg_dump registration, and DROP EXTENSION.
--
CREATE EXTENSION driftlock;

SELECT table_name, table_type
FROM information_schema.tables
WHERE table_schema = 'driftlock'
ORDER BY table_name;

SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = 'driftlock'
ORDER BY table_name, ordinal_position;

SELECT conrelid::regclass AS table_name, conname, contype,
       pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE connamespace = 'driftlock'::regnamespace
  AND contype <> 'n'  -- NOT NULL constraints: rows from PostgreSQL 18 on (nullability is above)
ORDER BY conrelid::regclass::text, conname;

SELECT tablename, indexname, indexdef
FROM pg_indexes
WHERE schemaname = 'driftlock'
ORDER BY tablename, indexname;

-- every table and column is documented
SELECT c.relname, a.attname
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'driftlock'::regnamespace AND c.relkind = 'r'
  AND col_description(c.oid, a.attnum) IS NULL;
SELECT relname
FROM pg_class
WHERE relnamespace = 'driftlock'::regnamespace AND relkind = 'r'
  AND obj_description(oid, 'pg_class') IS NULL;

-- the config check function is in the extension's schema
SELECT p.oid::regprocedure AS function, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p
WHERE p.proname = 'driftlock_config_check';

-- rows of every table (and the sequences) are dumped by pg_dump
SELECT unnest(extconfig)::regclass::text AS dumped
FROM pg_extension
WHERE extname = 'driftlock'
ORDER BY 1;

-- privileges: ordinary roles read stream names, driftlock_admin does the rest
CREATE ROLE regress_driftlock_user;
SELECT rel,
       has_table_privilege('regress_driftlock_user', rel, 'SELECT') AS user_select,
       has_table_privilege('driftlock_admin', rel, 'SELECT') AS admin_select,
       has_table_privilege('driftlock_admin', rel, 'INSERT, UPDATE, DELETE') AS admin_write
FROM unnest(ARRAY['driftlock.streams', 'driftlock.anomalies', 'driftlock.dead_letters',
                  'driftlock.kafka_offsets', 'driftlock.stream_state']) AS rel
ORDER BY rel;
SELECT col, has_column_privilege('regress_driftlock_user', 'driftlock.streams', col, 'SELECT') AS user_select
FROM unnest(ARRAY['id', 'name', 'config', 'created_at']) AS col;
SELECT has_schema_privilege('regress_driftlock_user', 'driftlock', 'USAGE') AS user_usage,
       has_schema_privilege('regress_driftlock_user', 'driftlock', 'CREATE') AS user_create;
SET ROLE regress_driftlock_user;
SELECT id IS NOT NULL, name FROM driftlock.streams;
INSERT INTO driftlock.streams (name) VALUES ('not allowed');
SELECT count(*) FROM driftlock.anomalies;
RESET ROLE;

-- Failing rows contain generated ids and timestamps: report errors tersely
\set VERBOSITY terse

-- streams
INSERT INTO driftlock.streams (name) VALUES ('payments')
RETURNING name, config, id IS NOT NULL AS has_id, created_at IS NOT NULL AS has_created_at;
INSERT INTO driftlock.streams (name) VALUES ('payments');
INSERT INTO driftlock.streams (name) VALUES ('');
INSERT INTO driftlock.streams (name) VALUES (repeat('x', 201));
INSERT INTO driftlock.streams (name, config) VALUES ('nullconfig', NULL);
-- a configuration the check function rejects never reaches the table
DO $$
BEGIN
    INSERT INTO driftlock.streams (name, config) VALUES ('badconfig', '{"no_such_key": 1}');
    RAISE NOTICE 'unknown configuration key was accepted';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'unknown configuration key rejected';
END
$$;

-- anomalies: one row per Kafka message; events from SQL have no position
INSERT INTO driftlock.anomalies (stream_id, kafka_topic, kafka_partition, kafka_offset, payload, score)
SELECT id, 'events', 0, 42, '\x7b7d', 0.99 FROM driftlock.streams WHERE name = 'payments';
INSERT INTO driftlock.anomalies (stream_id, kafka_topic, kafka_partition, kafka_offset, payload, score)
SELECT id, 'events', 0, 42, '\x7b7d', 0.98 FROM driftlock.streams WHERE name = 'payments';
INSERT INTO driftlock.anomalies (stream_id, kafka_topic, kafka_partition, kafka_offset, payload)
SELECT id, 'events', 1, 42, '\x7b7d' FROM driftlock.streams WHERE name = 'payments';
INSERT INTO driftlock.anomalies (stream_id, payload)
SELECT id, '\x01' FROM driftlock.streams WHERE name = 'payments';
INSERT INTO driftlock.anomalies (stream_id, payload)
SELECT id, '\x01' FROM driftlock.streams WHERE name = 'payments';
INSERT INTO driftlock.anomalies (stream_id, payload)
VALUES ('00000000-0000-0000-0000-000000000000', '\x01');
INSERT INTO driftlock.anomalies (stream_id)
SELECT id FROM driftlock.streams WHERE name = 'payments';
SELECT kafka_topic, kafka_partition, kafka_offset, payload, score
FROM driftlock.anomalies ORDER BY id;

-- dead letters: fixed reason codes, one row per Kafka message
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, detail, headers, payload)
VALUES ('events', 0, 7, 'invalid_json', 'unexpected end of input', '{"X-Stream-Id": "payments"}', '\x7b');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason)
VALUES ('events', 0, 7, 'unknown_stream');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason)
VALUES ('events', 0, 8, 'no_such_reason');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason)
SELECT 'events', 1, n, r
FROM unnest(ARRAY['payload_too_large', 'missing_stream_id', 'invalid_stream_id', 'unknown_stream',
                  'invalid_json', 'detector_error', 'insert_failed', 'retention_gap', 'stream_limit', 'invalid_otlp']) WITH ORDINALITY AS t(r, n);
SELECT reason, count(*) FROM driftlock.dead_letters GROUP BY reason ORDER BY reason;

-- log records of an OpenTelemetry batch: a dead letter each, and at most one
-- for the whole message (NULLS NOT DISTINCT)
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_record_index, reason)
VALUES ('otlp', 0, 1, 0, 'unknown_stream'), ('otlp', 0, 1, 1, 'missing_stream_id'),
       ('otlp', 0, 2, NULL, 'invalid_otlp');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_record_index, reason)
VALUES ('otlp', 0, 1, 1, 'unknown_stream');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_record_index, reason)
VALUES ('otlp', 0, 2, NULL, 'insert_failed');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_record_index, reason)
VALUES ('otlp', 0, 3, -1, 'unknown_stream');
DELETE FROM driftlock.dead_letters WHERE kafka_topic = 'otlp';

-- kafka offsets and stream state
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
VALUES ('driftlock-api', 'events', 0, 43);
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
VALUES ('driftlock-api', 'events', 0, 44);
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
VALUES ('driftlock-api', 'events', 0, 44)
ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset;
SELECT group_id, topic, partition, next_offset FROM driftlock.kafka_offsets;
INSERT INTO driftlock.stream_state (stream_id, state)
SELECT id, '\x00' FROM driftlock.streams WHERE name = 'payments';
SELECT events FROM driftlock.stream_state;

\set VERBOSITY default

-- deleting a stream deletes its anomalies and state
DELETE FROM driftlock.streams WHERE name = 'payments';
SELECT (SELECT count(*) FROM driftlock.anomalies) AS anomalies,
       (SELECT count(*) FROM driftlock.stream_state) AS states;

-- DROP EXTENSION removes everything but the cluster-wide role
DROP EXTENSION driftlock;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'driftlock';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'driftlock%';
SELECT count(*) AS admin_roles FROM pg_roles WHERE rolname = 'driftlock_admin';

-- the install script copes with an existing driftlock_admin role and with
-- a schema other than public for the functions
CREATE SCHEMA regress_dl;
CREATE EXTENSION driftlock SCHEMA regress_dl;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'streams_config_valid';
SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proname = 'driftlock_config_check';
-- the Kafka workers' stream lookups are invalidated by any change of streams
SELECT tgname, tgrelid::regclass, tgtype
FROM pg_trigger WHERE tgrelid = 'driftlock.streams'::regclass AND NOT tgisinternal;
SELECT regress_dl.driftlock_streams_changed();
BEGIN;
INSERT INTO driftlock.streams (name) VALUES ('regress-trigger');
UPDATE driftlock.streams SET config = '{"alpha": 0.02}' WHERE name = 'regress-trigger';
DELETE FROM driftlock.streams WHERE name = 'regress-trigger';
ROLLBACK;

DROP EXTENSION driftlock;
DROP SCHEMA regress_dl;

DROP ROLE regress_driftlock_user;

