-- sql/parts/0.2.0-privileges.sql -- privileges on what 0.2.0 adds
--
-- The last part of the upgrade script from 0.1.0, and so of the install
-- script of 0.2.0 (see the Makefile).  An update must not touch what users
-- granted on the objects they already had, so it takes away only what the
-- running role's default privileges (ALTER DEFAULT PRIVILEGES) gave the new
-- objects, then grants on them what 0.1.0's script grants on its own:
-- everyone reads what holds no payload, driftlock_admin does the rest.
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT DISTINCT pg_catalog.format('REVOKE ALL ON %s %s FROM %s CASCADE', o.kind, o.name,
                   CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END)
        FROM (
            SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                   c.oid::pg_catalog.regclass::text AS name, c.relowner AS owner, c.relacl AS acl
            FROM pg_catalog.pg_class c
            WHERE c.oid IN ('driftlock.incidents'::regclass, 'driftlock.incidents_id_seq'::regclass,
                            'driftlock.suppressions'::regclass, 'driftlock.suppressions_id_seq'::regclass,
                            'driftlock.feedback'::regclass, 'driftlock.feedback_id_seq'::regclass,
                            'driftlock.open_incidents'::regclass,
                            'driftlock.stream_state_changes'::regclass)
            UNION ALL
            SELECT 'FUNCTION', p.oid::pg_catalog.regprocedure::text, p.proowner,
                   coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
            FROM pg_catalog.pg_proc p
            WHERE p.oid IN ('driftlock_pattern(text, jsonb)'::regprocedure,
                            'driftlock_pattern(bytea, jsonb)'::regprocedure,
                            'driftlock_pattern(jsonb, jsonb)'::regprocedure,
                            'driftlock_mark_normal(bigint)'::regprocedure,
                            'driftlock_mark_normal_incident(bigint)'::regprocedure,
                            'driftlock_suppress(uuid, bigint, timestamptz, text)'::regprocedure,
                            'driftlock_unsuppress(uuid, bigint)'::regprocedure,
                            'driftlock_resolve_incidents()'::regprocedure,
                            'driftlock_streams_changed()'::regprocedure,
                            'driftlock_purge(interval)'::regprocedure,
                            'driftlock_replay_dead_letters(text, uuid)'::regprocedure)
        ) o
        CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
        WHERE a.grantee <> o.owner
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

GRANT SELECT (learn_only) ON driftlock.streams TO PUBLIC;
GRANT SELECT ON driftlock.open_incidents, driftlock.suppressions TO PUBLIC;
GRANT SELECT (id, stream_id, incident_key, pattern_id, pattern, status, severity, anomalies,
              max_score, min_p_value, first_seen, last_seen, first_event, last_event,
              kafka_topic, kafka_partition, kafka_first_offset, kafka_last_offset,
              top_anomaly_id, opened_at, resolved_at, updated_at)
    ON driftlock.incidents TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    driftlock_pattern(text, jsonb), driftlock_pattern(bytea, jsonb), driftlock_pattern(jsonb, jsonb)
    TO PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON
    driftlock.incidents, driftlock.suppressions, driftlock.feedback
    TO driftlock_admin;
GRANT SELECT ON driftlock.open_incidents TO driftlock_admin;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE
    driftlock.incidents_id_seq, driftlock.suppressions_id_seq, driftlock.feedback_id_seq
    TO driftlock_admin;
GRANT EXECUTE ON FUNCTION
    driftlock_mark_normal(bigint), driftlock_mark_normal_incident(bigint),
    driftlock_suppress(uuid, bigint, timestamptz, text), driftlock_unsuppress(uuid, bigint),
    driftlock_resolve_incidents(), driftlock_purge(interval),
    driftlock_replay_dead_letters(text, uuid)
    TO driftlock_admin;
