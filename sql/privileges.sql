--
-- Privileges: the whole matrix of who may do what, for three roles:
--
--   regress_dl_owner  a superuser that creates the extension and so owns its
--                     objects: the reference, allowed everything
--   regress_dl_admin  a login role, member of driftlock_admin
--   regress_dl_plain  an ordinary login role
--
-- and, at the end, regress_dl_reporting, a role the owner's default
-- privileges (ALTER DEFAULT PRIVILEGES) favour, for a second installation.
--
-- Every action is tried for real (a refused one shows its permission error),
-- then the catalogue is printed: every grant on every object of the
-- extension, and the SECURITY DEFINER functions with their settings, so
-- that any change of privileges shows up as a diff of this file.
--
-- Not preloaded here (pg_regress), driftlock.metrics and the other metrics
-- functions raise "driftlock must be loaded via shared_preload_libraries"
-- (SQLSTATE 55000) once past the privilege checks, as documented; that error
-- instead of a permission error is what shows a role may call them.  Their
-- rows, read and reset by such roles, are tested in test/t/020_metrics.pl.
--
\set VERBOSITY terse

CREATE ROLE regress_dl_owner SUPERUSER;
CREATE ROLE regress_dl_admin LOGIN;
CREATE ROLE regress_dl_plain LOGIN;

SET ROLE regress_dl_owner;
CREATE EXTENSION driftlock;
RESET ROLE;
GRANT driftlock_admin TO regress_dl_admin;

-- every relation of the extension belongs to the owner
SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner
FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock');

-- data to read, written by the owner: one row in every table
SET ROLE regress_dl_owner;
INSERT INTO driftlock.streams (id, name, config)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'regress-priv', '{"warmup": 4}');
INSERT INTO driftlock.anomalies (stream_id, kafka_topic, kafka_partition, kafka_offset, payload, score)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'events', 0, 1, 'anomalous payload', 9.5);
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload)
VALUES ('events', 0, 2, 'invalid_json', '{"X-Stream-Id": "regress-priv"}', 'dead payload');
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
VALUES ('regress-group', 'events', 0, 3);
ANALYZE driftlock.streams, driftlock.anomalies, driftlock.dead_letters, driftlock.kafka_offsets;
RESET ROLE;

-- ===========================================================================
-- The member of driftlock_admin: manages streams, reads and writes every
-- table, observes, may reset the metrics
-- ===========================================================================
SET ROLE regress_dl_admin;

-- driftlock_observe, all three overloads: learns and saves the state
SELECT (driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 1 ok'::text)).warm;
SELECT (driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 2 ok'::bytea)).warm;
SELECT (driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, '{"job": 3}'::jsonb)).warm;
SELECT (driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 4 ok'::text)).warm;

-- driftlock_replay_dead_letters: reads, replays and deletes dead letters
-- (this one names no stream here: it stays)
SELECT * FROM driftlock_replay_dead_letters();

-- reads every table, payloads included
SELECT name, config FROM driftlock.streams;
SELECT kafka_offset, convert_from(payload, 'UTF8') AS payload, score FROM driftlock.anomalies;
SELECT kafka_offset, reason, headers, convert_from(payload, 'UTF8') AS payload FROM driftlock.dead_letters;
SELECT group_id, topic, partition, next_offset FROM driftlock.kafka_offsets;
SELECT stream_id, length(state) > 0 AS has_state, events FROM driftlock.stream_state;
SELECT tablename, attname FROM pg_stats
WHERE schemaname = 'driftlock' AND attname = 'payload' ORDER BY tablename;

-- changes streams: INSERT, UPDATE, DELETE, TRUNCATE
INSERT INTO driftlock.streams (name) VALUES ('regress-admin') RETURNING name, config;
UPDATE driftlock.streams SET config = '{"warmup": 10}' WHERE name = 'regress-admin' RETURNING name, config;
DELETE FROM driftlock.streams WHERE name = 'regress-admin' RETURNING name;
BEGIN;
TRUNCATE driftlock.streams, driftlock.anomalies, driftlock.stream_state, driftlock.incidents,
         driftlock.suppressions, driftlock.feedback;
SELECT count(*) AS streams_left FROM driftlock.streams;
ROLLBACK;

-- writes the other tables and uses their sequences
BEGIN;
INSERT INTO driftlock.anomalies (stream_id, payload)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'x') RETURNING convert_from(payload, 'UTF8') AS payload;
UPDATE driftlock.anomalies SET score = 1 WHERE kafka_offset = 1 RETURNING kafka_offset, score;
DELETE FROM driftlock.anomalies WHERE kafka_offset = 1 RETURNING kafka_offset;
INSERT INTO driftlock.dead_letters (reason) VALUES ('unknown_stream') RETURNING reason;
UPDATE driftlock.dead_letters SET detail = 'seen' WHERE kafka_offset = 2 RETURNING kafka_offset, detail;
DELETE FROM driftlock.dead_letters WHERE kafka_offset = 2 RETURNING kafka_offset;
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset)
VALUES ('regress-group', 'events', 1, 7) RETURNING partition, next_offset;
UPDATE driftlock.kafka_offsets SET next_offset = 4 WHERE partition = 0 RETURNING partition, next_offset;
WITH d AS (DELETE FROM driftlock.kafka_offsets RETURNING partition) SELECT partition FROM d ORDER BY partition;
UPDATE driftlock.stream_state SET events = events RETURNING events;
DELETE FROM driftlock.stream_state RETURNING events;
SELECT nextval('driftlock.anomalies_id_seq') > 0 AS anomalies_seq,
       nextval('driftlock.dead_letters_id_seq') > 0 AS dead_letters_seq;
TRUNCATE driftlock.dead_letters, driftlock.kafka_offsets;
ROLLBACK;

-- the detection functions and the metrics, as every role
SELECT (driftlock_score(ARRAY['a', 'b'], 'c')).warm;
SELECT (driftlock_score('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 5 ok'::text)).warm;
SELECT (driftlock_detect(x ORDER BY x)).warm FROM (VALUES ('a'), ('b')) t(x);
EXPLAIN (COSTS OFF) SELECT * FROM driftlock.metrics;
-- past the privilege checks: the error is the missing preload
SELECT * FROM driftlock.metrics;
SELECT driftlock_prometheus();
SELECT driftlock_metrics_reset();

-- but is no owner: no TRIGGER (a trigger would run as the Kafka worker's
-- superuser), no DDL, no objects of its own in the schema
CREATE FUNCTION pg_temp.regress_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER regress_trigger BEFORE INSERT ON driftlock.anomalies
    FOR EACH ROW EXECUTE FUNCTION pg_temp.regress_trigger();
CREATE TRIGGER regress_trigger BEFORE INSERT ON driftlock.streams
    FOR EACH ROW EXECUTE FUNCTION pg_temp.regress_trigger();
ALTER TABLE driftlock.streams DROP CONSTRAINT streams_config_valid;
ALTER TABLE driftlock.anomalies DISABLE TRIGGER ALL;
CREATE TABLE driftlock.regress_admin_table (a int);
DROP FUNCTION pg_temp.regress_trigger();
RESET ROLE;

-- ===========================================================================
-- The ordinary role: detection functions, the stream list, the metrics
-- ===========================================================================
SET ROLE regress_dl_plain;

-- driftlock_score against a baseline given inline, with and without config
SELECT (v).warm, (v).is_anomaly, (v).explanation IS NOT NULL AS explained
FROM driftlock_score(ARRAY['job 1 ok', 'job 2 ok', 'job 3 ok'], 'job 4 ok') v;
SELECT (v).warm, (v).is_anomaly, (v).explanation IS NOT NULL AS explained
FROM driftlock_score(ARRAY['job 1 ok', 'job 2 ok', 'job 3 ok'], 'job 4 ok', '{"warmup": 2}') v;

-- driftlock_score against a stream's saved state, all three overloads: it is
-- SECURITY DEFINER, so the role needs no access to driftlock.stream_state
SELECT (v).warm, (v).is_anomaly, (v).explanation IS NOT NULL AS explained
FROM driftlock_score('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 5 ok'::text) v;
SELECT (v).warm, (v).is_anomaly, (v).explanation IS NOT NULL AS explained
FROM driftlock_score('00000000-0000-4000-8000-0000000000a1'::uuid, 'job 5 ok'::bytea) v;
SELECT (v).warm, (v).is_anomaly, (v).explanation IS NOT NULL AS explained
FROM driftlock_score('00000000-0000-4000-8000-0000000000a1'::uuid, '{"job": 5}'::jsonb) v;
-- an unknown stream is an error, not a permission error
SELECT driftlock_score('00000000-0000-0000-0000-000000000000'::uuid, 'x'::text);

-- driftlock_detect as an aggregate and as a window function, every payload type
SELECT (driftlock_detect(x ORDER BY i)).warm
FROM (VALUES (1, 'a 1'), (2, 'a 2'), (3, 'a 3')) t(i, x);
SELECT (driftlock_detect(x, '{"warmup": 2}' ORDER BY i)).warm
FROM (VALUES (1, 'a 1'), (2, 'a 2'), (3, 'a 3')) t(i, x);
SELECT (driftlock_detect(x::bytea ORDER BY i)).warm, (driftlock_detect(x::bytea, '{"warmup": 2}' ORDER BY i)).warm
FROM (VALUES (1, 'a 1'), (2, 'a 2'), (3, 'a 3')) t(i, x);
SELECT (driftlock_detect(x ORDER BY i)).warm, (driftlock_detect(x, '{"warmup": 2}' ORDER BY i)).warm
FROM (VALUES (1, '{"a": 1}'::jsonb), (2, '{"a": 2}'), (3, '{"a": 3}')) t(i, x);
SELECT i, (driftlock_detect(x, '{"warmup": 2}') OVER (ORDER BY i)).warm
FROM (VALUES (1, 'a 1'), (2, 'a 2'), (3, 'a 3')) t(i, x) ORDER BY i;

-- driftlock_compare and driftlock_config_check
SELECT permutations_run, ncd IS NOT NULL AS has_ncd, p_value IS NOT NULL AS has_p_value
FROM driftlock_compare(ARRAY['job 1 ok', 'job 2 ok', 'job 3 ok'], ARRAY['job 4 ok'], 9, 1);
SELECT permutations_run FROM driftlock_compare(ARRAY['job 1 ok', 'job 2 ok'], ARRAY['job 4 ok']);
SELECT driftlock_config_check('{"warmup": 2}');

-- the stream list: every column of driftlock.streams
SELECT id, name, config, created_at IS NOT NULL AS has_created_at FROM driftlock.streams;

-- driftlock.metrics: the view and its function pass the privilege checks
-- (EXPLAIN checks them without running the function) ...
EXPLAIN (COSTS OFF) SELECT * FROM driftlock.metrics;
-- ... and reading it fails only for the missing preload, as does the export
SELECT * FROM driftlock.metrics;
SELECT driftlock_prometheus();

-- refused: every write on driftlock.streams, and locking its rows
INSERT INTO driftlock.streams (name) VALUES ('regress-plain');
UPDATE driftlock.streams SET config = '{}';
UPDATE driftlock.streams SET name = name;
DELETE FROM driftlock.streams;
TRUNCATE driftlock.streams;
SELECT name FROM driftlock.streams FOR SHARE;
SELECT name FROM driftlock.streams FOR UPDATE;
BEGIN;
LOCK TABLE driftlock.streams IN ACCESS SHARE MODE;
ROLLBACK;

-- refused: every read of the tables holding payloads, offsets and state,
-- even of columns other than the payload
SELECT payload FROM driftlock.anomalies;
SELECT stream_id, score FROM driftlock.anomalies;
SELECT count(*) FROM driftlock.anomalies;
SELECT payload FROM driftlock.dead_letters;
SELECT reason, headers FROM driftlock.dead_letters;
SELECT count(*) FROM driftlock.dead_letters;
SELECT state FROM driftlock.stream_state;
SELECT events FROM driftlock.stream_state;
SELECT next_offset FROM driftlock.kafka_offsets;
EXPLAIN (COSTS OFF) SELECT * FROM driftlock.anomalies;
COPY driftlock.anomalies TO STDOUT;
COPY driftlock.dead_letters (payload) TO STDOUT;
-- nor through the planner statistics (pg_stats hides unreadable columns)
SELECT tablename, attname FROM pg_stats
WHERE schemaname = 'driftlock' ORDER BY tablename, attname;

-- refused: every write of the other tables, and their sequences
INSERT INTO driftlock.anomalies (stream_id, payload) VALUES ('00000000-0000-4000-8000-0000000000a1', 'x');
UPDATE driftlock.anomalies SET score = 0;
DELETE FROM driftlock.anomalies;
TRUNCATE driftlock.anomalies;
INSERT INTO driftlock.dead_letters (reason) VALUES ('unknown_stream');
DELETE FROM driftlock.dead_letters;
INSERT INTO driftlock.kafka_offsets VALUES ('g', 't', 0, 0);
UPDATE driftlock.kafka_offsets SET next_offset = 0;
INSERT INTO driftlock.stream_state (stream_id, state) VALUES ('00000000-0000-4000-8000-0000000000a1', '\x00');
UPDATE driftlock.stream_state SET state = '\x00';
DELETE FROM driftlock.stream_state;
SELECT nextval('driftlock.anomalies_id_seq');
SELECT last_value FROM driftlock.dead_letters_id_seq;

-- refused: driftlock_observe (all three overloads), driftlock_metrics_reset,
-- driftlock_replay_dead_letters
SELECT driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'x'::text);
SELECT driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'x'::bytea);
SELECT driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, '{}'::jsonb);
SELECT driftlock_metrics_reset();
SELECT driftlock_replay_dead_letters();

-- refused: objects of its own in the schema
CREATE TABLE driftlock.regress_plain_table (a int);
CREATE VIEW driftlock.regress_plain_view AS SELECT 1 AS a;
RESET ROLE;

-- scoring by the ordinary role read the saved state and changed nothing:
-- still the four events the admin observed, no new anomaly
SELECT events FROM driftlock.stream_state;
SELECT count(*) AS anomalies FROM driftlock.anomalies;

-- ===========================================================================
-- The catalogue
-- ===========================================================================

-- what each role may do with each relation (table-level; "(columns)" when
-- only some columns are granted)
SELECT c.oid::regclass AS relation, c.relkind, r.role,
       string_agg(CASE WHEN has_table_privilege(r.role, c.oid, p.priv) THEN p.priv
                       ELSE p.priv || ' (columns)' END, ', ' ORDER BY p.n) AS privileges
FROM pg_class c
CROSS JOIN (VALUES ('regress_dl_plain'), ('regress_dl_admin'), ('regress_dl_owner')) r(role)
CROSS JOIN (VALUES (1, 'SELECT'), (2, 'INSERT'), (3, 'UPDATE'), (4, 'DELETE'), (5, 'TRUNCATE'),
                   (6, 'REFERENCES'), (7, 'TRIGGER')) p(n, priv)
WHERE c.relnamespace = 'driftlock'::regnamespace AND c.relkind IN ('r', 'v')
  AND (has_table_privilege(r.role, c.oid, p.priv)
       OR (p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
           AND has_any_column_privilege(r.role, c.oid, p.priv)))
GROUP BY c.oid, c.relkind, r.role
ORDER BY c.oid::regclass::text, r.role DESC;
SELECT c.oid::regclass AS sequence, r.role,
       string_agg(p.priv, ', ' ORDER BY p.n) AS privileges
FROM pg_class c
CROSS JOIN (VALUES ('regress_dl_plain'), ('regress_dl_admin'), ('regress_dl_owner')) r(role)
CROSS JOIN (VALUES (1, 'USAGE'), (2, 'SELECT'), (3, 'UPDATE')) p(n, priv)
WHERE c.relnamespace = 'driftlock'::regnamespace AND c.relkind = 'S'
  AND has_sequence_privilege(r.role, c.oid, p.priv)
GROUP BY c.oid, r.role
ORDER BY c.oid::regclass::text, r.role DESC;
SELECT role, has_schema_privilege(role, 'driftlock', 'USAGE') AS schema_usage,
       has_schema_privilege(role, 'driftlock', 'CREATE') AS schema_create
FROM (VALUES ('regress_dl_plain'), ('regress_dl_admin'), ('regress_dl_owner')) r(role)
ORDER BY role DESC;

-- which role may execute each function of the extension
SELECT p.oid::regprocedure AS function, p.prokind,
       has_function_privilege('regress_dl_plain', p.oid, 'EXECUTE') AS plain,
       has_function_privilege('regress_dl_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('regress_dl_owner', p.oid, 'EXECUTE') AS owner
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock')
ORDER BY p.oid::regprocedure::text;

-- Every grant on every object of the extension (the schema, its relations
-- and their columns, functions, types), defaults included, except the
-- owner's own.  PUBLIC gets: USAGE on the schema and the type, SELECT on
-- driftlock.metrics and on the columns of driftlock.streams, EXECUTE on the
-- functions ordinary roles call.  Kept as a view: the end of this file
-- compares it after a second installation.
CREATE TEMP VIEW regress_extension_grants AS
WITH ext AS (
    SELECT d.classid, d.objid
    FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock')
), acl AS (
    SELECT 'schema' AS kind, n.nspname::text AS object, n.nspowner AS owner,
           aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
    FROM ext JOIN pg_namespace n ON ext.classid = 'pg_namespace'::regclass AND n.oid = ext.objid
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END,
           c.oid::regclass::text, c.relowner,
           aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)))
    FROM ext JOIN pg_class c ON ext.classid = 'pg_class'::regclass AND c.oid = ext.objid
    UNION ALL
    SELECT 'column', c.oid::regclass::text || '.' || a.attname, c.relowner, aclexplode(a.attacl)
    FROM ext JOIN pg_class c ON ext.classid = 'pg_class'::regclass AND c.oid = ext.objid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE a.attacl IS NOT NULL
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, p.proowner,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
    FROM ext JOIN pg_proc p ON ext.classid = 'pg_proc'::regclass AND p.oid = ext.objid
    UNION ALL
    SELECT 'type', t.oid::regtype::text, t.typowner,
           aclexplode(coalesce(t.typacl, acldefault('T', t.typowner)))
    FROM ext JOIN pg_type t ON ext.classid = 'pg_type'::regclass AND t.oid = ext.objid
    -- array types and tables' row types: members from PostgreSQL 17 on,
    -- with the privileges of what they belong to
    WHERE t.typcategory <> 'A'
      AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
)
SELECT kind, object,
       CASE WHEN (a).grantee = 0 THEN 'PUBLIC' ELSE (a).grantee::regrole::text END AS grantee,
       string_agg((a).privilege_type || CASE WHEN (a).is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                  ', ' ORDER BY (a).privilege_type) AS privileges
FROM acl
WHERE (a).grantee <> owner
GROUP BY kind, object, (a).grantee;
SELECT * FROM regress_extension_grants ORDER BY kind, object, grantee;
CREATE TEMP TABLE regress_grants_first AS SELECT * FROM regress_extension_grants;

-- TRIGGER (and REFERENCES) are granted to no one but the owner
SELECT c.oid::regclass AS relation, (a).privilege_type,
       CASE WHEN (a).grantee = 0 THEN 'PUBLIC' ELSE (a).grantee::regrole::text END AS grantee
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.relnamespace = 'driftlock'::regnamespace
  AND (a).privilege_type IN ('TRIGGER', 'REFERENCES') AND (a).grantee <> c.relowner;
SELECT count(*) AS admin_trigger_privileges
FROM pg_class c
WHERE c.relnamespace = 'driftlock'::regnamespace AND c.relkind IN ('r', 'v')
  AND has_table_privilege('driftlock_admin', c.oid, 'TRIGGER');

-- every function with its security and settings; a SECURITY DEFINER one
-- must fix its search_path (schemas no ordinary role can write to, pg_temp
-- last) and be read-only (STABLE)
SELECT p.proname, oidvectortypes(p.proargtypes) AS arguments,
       p.prosecdef, p.provolatile, p.proconfig
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock')
ORDER BY p.proname, arguments;
SELECT p.oid::regprocedure AS unsafe_security_definer, p.proconfig
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'driftlock')
  AND p.prosecdef
  AND (p.proconfig IS NULL
       OR NOT ('search_path=pg_catalog, pg_temp' = ANY (p.proconfig))
       OR p.provolatile = 'v');
-- no SECURITY DEFINER function anywhere in the schemas of the extension
-- (driftlock and the extension's schema) lacks a fixed search_path
SELECT p.oid::regprocedure AS security_definer_without_search_path
FROM pg_proc p
WHERE p.pronamespace IN ('driftlock'::regnamespace,
                         (SELECT extnamespace FROM pg_extension WHERE extname = 'driftlock'))
  AND p.prosecdef
  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%');

-- ===========================================================================
-- The same privileges whatever the installing role's default privileges:
-- the install script revokes what ALTER DEFAULT PRIVILEGES gave its objects
-- and grants every privilege explicitly.  A reporting role that gets SELECT
-- on every new table (a common setup) must not read payloads, and taking
-- EXECUTE on new functions from PUBLIC must not take the detection functions
-- from ordinary roles.
-- ===========================================================================
DROP EXTENSION driftlock;
CREATE ROLE regress_dl_reporting LOGIN;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT ALL ON TABLES TO regress_dl_reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT ALL ON SEQUENCES TO regress_dl_reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT ALL ON FUNCTIONS TO regress_dl_reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT ALL ON SCHEMAS TO regress_dl_reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT ALL ON TYPES TO regress_dl_reporting;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner REVOKE USAGE ON TYPES FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_dl_owner GRANT TRIGGER ON TABLES TO driftlock_admin;
SET ROLE regress_dl_owner;
CREATE EXTENSION driftlock;
INSERT INTO driftlock.streams (id, name)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'regress-priv');
INSERT INTO driftlock.anomalies (stream_id, payload)
VALUES ('00000000-0000-4000-8000-0000000000a1', 'anomalous payload');
RESET ROLE;

-- grants that differ from the first installation (none)
(SELECT 'only now' AS installation, * FROM regress_extension_grants
 EXCEPT SELECT 'only now', * FROM regress_grants_first)
UNION ALL
(SELECT 'only before', * FROM regress_grants_first
 EXCEPT SELECT 'only before', * FROM regress_extension_grants)
ORDER BY 1, 2, 3, 4;

SET ROLE regress_dl_reporting;
SELECT payload FROM driftlock.anomalies;
SELECT state FROM driftlock.stream_state;
INSERT INTO driftlock.streams (name) VALUES ('regress-reporting');
SELECT driftlock_observe('00000000-0000-4000-8000-0000000000a1'::uuid, 'x'::text);
SELECT driftlock_metrics_reset();
SELECT driftlock_replay_dead_letters();
CREATE TABLE driftlock.regress_reporting_table (a int);
RESET ROLE;
SET ROLE regress_dl_plain;
SELECT (driftlock_score(ARRAY['a 1', 'a 2'], 'a 3')).warm;
SELECT (driftlock_score('00000000-0000-4000-8000-0000000000a1'::uuid, 'a 3'::text)).warm;
SELECT (driftlock_detect(x ORDER BY x)).warm FROM (VALUES ('a 1'), ('a 2')) t(x);
SELECT permutations_run FROM driftlock_compare(ARRAY['a 1', 'a 2'], ARRAY['b 1'], 0);
SELECT driftlock_config_check('{}');
EXPLAIN (COSTS OFF) SELECT * FROM driftlock.metrics;
SELECT name FROM driftlock.streams;
RESET ROLE;

-- clean up: the roles go (with the default privileges), driftlock_admin
-- stays (cluster-wide)
DROP EXTENSION driftlock;
DROP OWNED BY regress_dl_owner;
REVOKE driftlock_admin FROM regress_dl_admin;
DROP ROLE regress_dl_plain, regress_dl_admin, regress_dl_reporting, regress_dl_owner;
