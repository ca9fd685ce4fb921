-- sql/parts/privileges.sql -- who may do what, for the current version
--
-- The last part of the install script and of every upgrade script (see the
-- Makefile): it takes every privilege on the extension's objects away and
-- grants exactly these, so a new and an updated database end up alike.
--
-- Ordinary roles (PUBLIC) may call the detection functions and read the
-- stream list (id, name, config, created_at, learn_only), the metrics, the
-- incidents (but for their explanation, which quotes a payload) and the
-- suppressions.  They cannot change streams, nor read anomalies, dead
-- letters, feedback, offsets or detector state, which hold event payloads.
-- Members of driftlock_admin manage streams, read and write every table,
-- observe events, give feedback, suppress patterns and reset the metrics.
-- The role is cluster-wide: it is created if missing and is not dropped by
-- DROP EXTENSION.
--
-- Every privilege is granted explicitly below, after taking away whatever
-- the installing role's default privileges (ALTER DEFAULT PRIVILEGES) gave
-- the new objects: a common "GRANT SELECT ON TABLES TO reporting" would
-- otherwise let that role read event payloads, and "REVOKE EXECUTE ON
-- FUNCTIONS FROM PUBLIC" would take the detection functions from ordinary
-- roles.  So this section comes last, once every object exists.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'driftlock_admin') THEN
        CREATE ROLE driftlock_admin NOLOGIN;
    END IF;
END
$$;

-- Every privilege on the extension's objects held by a role other than the
-- object's owner goes, those PostgreSQL gives by default (EXECUTE on
-- functions and USAGE on types to PUBLIC) included.
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT DISTINCT pg_catalog.format('REVOKE ALL ON %s %s FROM %s CASCADE', o.kind, o.name,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END)
        FROM (
            SELECT 'SCHEMA' AS kind, pg_catalog.quote_ident(n.nspname) AS name, n.nspowner AS owner,
                   coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner)) AS acl, d.refobjid
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_namespace n ON n.oid = d.objid
            WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.deptype = 'e'
            UNION ALL
            SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   c.oid::pg_catalog.regclass::text, c.relowner, c.relacl, d.refobjid
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_class c ON c.oid = d.objid
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'e'
            UNION ALL
            SELECT 'FUNCTION', p.oid::pg_catalog.regprocedure::text, p.proowner,
                   coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)), d.refobjid
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_proc p ON p.oid = d.objid
            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e'
            UNION ALL
            SELECT 'TYPE', t.oid::pg_catalog.regtype::text, t.typowner,
                   coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner)), d.refobjid
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_type t ON t.oid = d.objid
            WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.deptype = 'e'
        ) o
        CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
        WHERE o.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'driftlock')
          AND a.grantee <> o.owner
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

-- Then exactly these.  Functions not named here (driftlock_observe,
-- driftlock_metrics_reset, feedback, suppressions, and the aggregate's
-- support functions, which the aggregate calls with its owner's rights) are
-- their owner's alone.
GRANT USAGE ON SCHEMA driftlock TO PUBLIC;
GRANT USAGE ON TYPE driftlock.verdict TO PUBLIC;
GRANT SELECT (id, name, config, created_at, learn_only) ON driftlock.streams TO PUBLIC;
GRANT SELECT ON driftlock.metrics, driftlock.open_incidents, driftlock.suppressions TO PUBLIC;
GRANT SELECT (id, stream_id, incident_key, pattern_id, pattern, status, severity, anomalies,
              max_score, min_p_value, first_seen, last_seen, first_event, last_event,
              kafka_topic, kafka_partition, kafka_first_offset, kafka_last_offset,
              top_anomaly_id, opened_at, resolved_at, updated_at)
    ON driftlock.incidents TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    driftlock_config_check(jsonb),
    driftlock_detect(text), driftlock_detect(text, jsonb),
    driftlock_detect(bytea), driftlock_detect(bytea, jsonb),
    driftlock_detect(jsonb), driftlock_detect(jsonb, jsonb),
    driftlock_score(text[], text, jsonb),
    driftlock_score(uuid, text), driftlock_score(uuid, bytea), driftlock_score(uuid, jsonb),
    driftlock_pattern(text, jsonb), driftlock_pattern(bytea, jsonb), driftlock_pattern(jsonb, jsonb),
    driftlock_compare(text[], text[], integer, bigint),
    driftlock_metrics(), driftlock_prometheus()
    TO PUBLIC;

GRANT USAGE ON SCHEMA driftlock TO driftlock_admin;
-- Not ALL: TRIGGER would let an admin run code as the Kafka worker, which
-- connects as the bootstrap superuser.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON
    driftlock.streams, driftlock.anomalies, driftlock.dead_letters,
    driftlock.kafka_offsets, driftlock.stream_state,
    driftlock.incidents, driftlock.suppressions, driftlock.feedback
    TO driftlock_admin;
GRANT SELECT ON driftlock.open_incidents TO driftlock_admin;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE
    driftlock.anomalies_id_seq, driftlock.dead_letters_id_seq, driftlock.incidents_id_seq,
    driftlock.suppressions_id_seq, driftlock.feedback_id_seq
    TO driftlock_admin;
GRANT EXECUTE ON FUNCTION
    driftlock_observe(uuid, text), driftlock_observe(uuid, bytea), driftlock_observe(uuid, jsonb),
    driftlock_metrics_reset(),
    driftlock_mark_normal(bigint), driftlock_mark_normal_incident(bigint),
    driftlock_suppress(uuid, bigint, timestamptz, text), driftlock_unsuppress(uuid, bigint),
    driftlock_resolve_incidents()
    TO driftlock_admin;
