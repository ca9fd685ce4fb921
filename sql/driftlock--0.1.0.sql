/* driftlock--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION driftlock" to load this file. \quit

-- Functions live in the extension's schema (public unless CREATE EXTENSION
-- ... SCHEMA says otherwise); tables live in the schema driftlock.
CREATE SCHEMA driftlock;
COMMENT ON SCHEMA driftlock IS 'driftlock streams, anomalies, dead letters, Kafka offsets and detector state';

-- Validates a stream configuration: raises an error naming the unknown key
-- or the wrongly typed value, returns true otherwise.
CREATE FUNCTION driftlock_config_check(config jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'driftlock_config_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION driftlock_config_check(jsonb) IS
'raise an error if a stream configuration has unknown keys or wrongly typed values, else return true';

-- ---------------------------------------------------------------------------
-- Streams: a named sequence of events with its own baseline and settings
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.streams (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL UNIQUE,
    config      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT streams_name_valid CHECK (name <> '' AND length(name) <= 200),
    CONSTRAINT streams_config_valid CHECK (@extschema@.driftlock_config_check(config))
);

COMMENT ON TABLE driftlock.streams IS 'streams of events, each with its own detector baseline and configuration';
COMMENT ON COLUMN driftlock.streams.id IS 'stream id, also accepted as the stream id of a Kafka message';
COMMENT ON COLUMN driftlock.streams.name IS 'unique stream name, 1 to 200 characters';
COMMENT ON COLUMN driftlock.streams.config IS 'detector configuration of the stream, validated by driftlock_config_check()';
COMMENT ON COLUMN driftlock.streams.created_at IS 'when the stream was created';

-- ---------------------------------------------------------------------------
-- Anomalies: events the detector flagged
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.anomalies (
    id                bigserial        PRIMARY KEY,
    stream_id         uuid             NOT NULL REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    detected_at       timestamptz      NOT NULL DEFAULT now(),
    kafka_topic       text,
    kafka_partition   int,
    kafka_offset      bigint,
    payload           bytea            NOT NULL,
    score             double precision,
    p_value           double precision,
    ncd               double precision,
    compression_ratio double precision,
    entropy           double precision,
    confidence        double precision,
    explanation       text,
    -- a Kafka message yields at most one anomaly, whatever the redeliveries
    CONSTRAINT anomalies_kafka_position_key UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

CREATE INDEX anomalies_stream_id_detected_at_idx
    ON driftlock.anomalies (stream_id, detected_at);

COMMENT ON TABLE driftlock.anomalies IS 'events flagged as anomalous by the detector; at most one row per Kafka message';
COMMENT ON COLUMN driftlock.anomalies.id IS 'anomaly id';
COMMENT ON COLUMN driftlock.anomalies.stream_id IS 'stream the event belongs to';
COMMENT ON COLUMN driftlock.anomalies.detected_at IS 'when the anomaly was detected';
COMMENT ON COLUMN driftlock.anomalies.kafka_topic IS 'Kafka topic of the message, null when the event did not come from Kafka';
COMMENT ON COLUMN driftlock.anomalies.kafka_partition IS 'Kafka partition of the message, null when the event did not come from Kafka';
COMMENT ON COLUMN driftlock.anomalies.kafka_offset IS 'Kafka offset of the message, null when the event did not come from Kafka';
COMMENT ON COLUMN driftlock.anomalies.payload IS 'the event as received';
COMMENT ON COLUMN driftlock.anomalies.score IS 'anomaly score of the event';
COMMENT ON COLUMN driftlock.anomalies.p_value IS 'p-value of the score against the stream baseline';
COMMENT ON COLUMN driftlock.anomalies.ncd IS 'normalised compression distance between the event and the baseline';
COMMENT ON COLUMN driftlock.anomalies.compression_ratio IS 'compression ratio of the event';
COMMENT ON COLUMN driftlock.anomalies.entropy IS 'Shannon entropy of the event in bits per byte';
COMMENT ON COLUMN driftlock.anomalies.confidence IS 'confidence of the detection, 0 to 1';
COMMENT ON COLUMN driftlock.anomalies.explanation IS 'human-readable explanation of why the event was flagged';

-- ---------------------------------------------------------------------------
-- Dead letters: Kafka messages that could not be processed
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.dead_letters (
    id               bigserial   PRIMARY KEY,
    received_at      timestamptz NOT NULL DEFAULT now(),
    kafka_topic      text,
    kafka_partition  int,
    kafka_offset     bigint,
    reason           text        NOT NULL,
    detail           text,
    headers          jsonb,
    payload          bytea,
    CONSTRAINT dead_letters_reason_valid CHECK (reason IN (
        'payload_too_large',
        'missing_stream_id',
        'invalid_stream_id',
        'unknown_stream',
        'invalid_json',
        'detector_error',
        'insert_failed')),
    CONSTRAINT dead_letters_kafka_position_key UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

COMMENT ON TABLE driftlock.dead_letters IS 'Kafka messages that could not be processed; at most one row per message';
COMMENT ON COLUMN driftlock.dead_letters.id IS 'dead letter id';
COMMENT ON COLUMN driftlock.dead_letters.received_at IS 'when the message was set aside';
COMMENT ON COLUMN driftlock.dead_letters.kafka_topic IS 'Kafka topic of the message';
COMMENT ON COLUMN driftlock.dead_letters.kafka_partition IS 'Kafka partition of the message';
COMMENT ON COLUMN driftlock.dead_letters.kafka_offset IS 'Kafka offset of the message';
COMMENT ON COLUMN driftlock.dead_letters.reason IS 'why the message was set aside: payload_too_large, missing_stream_id, invalid_stream_id, unknown_stream, invalid_json, detector_error or insert_failed';
COMMENT ON COLUMN driftlock.dead_letters.detail IS 'error message or other detail about the failure';
COMMENT ON COLUMN driftlock.dead_letters.headers IS 'Kafka message headers as a JSON object';
COMMENT ON COLUMN driftlock.dead_letters.payload IS 'message payload, null when it was not kept (for example when too large)';

-- ---------------------------------------------------------------------------
-- Kafka offsets: the next offset to read, committed in the same transaction
-- as the anomalies and dead letters of the messages before it
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.kafka_offsets (
    group_id     text        NOT NULL,
    topic        text        NOT NULL,
    partition    int         NOT NULL,
    next_offset  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

COMMENT ON TABLE driftlock.kafka_offsets IS 'next Kafka offset to consume per consumer group, topic and partition; the source of truth for exactly-once ingestion';
COMMENT ON COLUMN driftlock.kafka_offsets.group_id IS 'Kafka consumer group id (driftlock.kafka_group_id)';
COMMENT ON COLUMN driftlock.kafka_offsets.topic IS 'Kafka topic';
COMMENT ON COLUMN driftlock.kafka_offsets.partition IS 'Kafka partition';
COMMENT ON COLUMN driftlock.kafka_offsets.next_offset IS 'offset of the next message to consume';
COMMENT ON COLUMN driftlock.kafka_offsets.updated_at IS 'when the offset was last advanced';

-- ---------------------------------------------------------------------------
-- Stream state: persisted detector state (baseline) of each stream
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.stream_state (
    stream_id   uuid        PRIMARY KEY REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    state       bytea       NOT NULL,
    events      bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The Kafka worker rewrites a stream's state (tens of kB) with every batch
-- that touches the stream; lz4 compresses it several times faster than the
-- default pglz (which took a sixth of the worker's time).  Builds without lz4
-- keep the default.
DO $$
BEGIN
    ALTER TABLE driftlock.stream_state ALTER COLUMN state SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;
COMMENT ON TABLE driftlock.stream_state IS 'persisted detector state of each stream';
COMMENT ON COLUMN driftlock.stream_state.stream_id IS 'stream the state belongs to';
COMMENT ON COLUMN driftlock.stream_state.state IS 'serialised detector state';
COMMENT ON COLUMN driftlock.stream_state.events IS 'number of events the state has seen';
COMMENT ON COLUMN driftlock.stream_state.updated_at IS 'when the state was last saved';

-- Rows of these tables are user data: pg_dump must dump them (and the
-- sequences' positions) although the tables belong to the extension.
SELECT pg_catalog.pg_extension_config_dump('driftlock.streams', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.anomalies', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.anomalies_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.dead_letters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.kafka_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.stream_state', '');

-- ==== detector types and functions ====

-- The verdict the detector gives one event (see docs/detector.md).
CREATE TYPE driftlock.verdict AS (
    is_anomaly boolean,
    warm boolean,
    score double precision,
    p_value double precision,
    ncd double precision,
    compression_ratio double precision,
    entropy double precision,
    confidence double precision,
    explanation text
);
COMMENT ON TYPE driftlock.verdict IS 'The verdict of the driftlock detector on one event';

-- driftlock_detect(payload [, config]): the streaming detector over rows, as
-- an aggregate usable as a window function.  One C transition function
-- serves the three payload types.
CREATE FUNCTION driftlock_detect_transition(internal, text)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_transition(internal, text, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_transition(internal, bytea)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_transition(internal, bytea, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_transition(internal, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_transition(internal, jsonb, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'driftlock_detect_transition'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION driftlock_detect_final(internal)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_detect_final'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

CREATE AGGREGATE driftlock_detect(payload text) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);
CREATE AGGREGATE driftlock_detect(payload text, config jsonb) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);
CREATE AGGREGATE driftlock_detect(payload bytea) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);
CREATE AGGREGATE driftlock_detect(payload bytea, config jsonb) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);
CREATE AGGREGATE driftlock_detect(payload jsonb) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);
CREATE AGGREGATE driftlock_detect(payload jsonb, config jsonb) (
    SFUNC = driftlock_detect_transition, STYPE = internal,
    FINALFUNC = driftlock_detect_final, FINALFUNC_MODIFY = READ_ONLY);

-- driftlock_score(baseline text[], payload text [, config]): stateless.
CREATE FUNCTION driftlock_score(baseline text[], payload text, config jsonb DEFAULT '{}')
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_score_baseline'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- driftlock_score(stream_id, payload): against the stream's saved detector,
-- without changing it.  SECURITY DEFINER so that ordinary roles can score
-- without reading the saved state (which holds payloads) themselves.
CREATE FUNCTION driftlock_score(stream_id uuid, payload text)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_score_stream'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION driftlock_score(stream_id uuid, payload bytea)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_score_stream'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION driftlock_score(stream_id uuid, payload jsonb)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_score_stream'
LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- driftlock_observe(stream_id, payload): score, learn, save, record the
-- anomaly -- what the Kafka worker does, for events that arrive by SQL.
-- It writes the stream's state and anomalies, so it is for driftlock_admin.
CREATE FUNCTION driftlock_observe(stream_id uuid, payload text)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_observe'
LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION driftlock_observe(stream_id uuid, payload bytea)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_observe'
LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION driftlock_observe(stream_id uuid, payload jsonb)
RETURNS driftlock.verdict AS 'MODULE_PATHNAME', 'driftlock_observe'
LANGUAGE C VOLATILE STRICT;

-- driftlock_compare(baseline, window): NCD and novelty of two sets of events
-- and a seeded permutation test of the novelty.
CREATE FUNCTION driftlock_compare(
    baseline text[], "window" text[],
    permutations integer DEFAULT 199, seed bigint DEFAULT 0,
    OUT ncd double precision, OUT novelty double precision, OUT p_value double precision,
    OUT baseline_compression_ratio double precision,
    OUT window_compression_ratio double precision,
    OUT baseline_entropy double precision, OUT window_entropy double precision,
    OUT permutations_run integer)
RETURNS record AS 'MODULE_PATHNAME', 'driftlock_compare'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION driftlock_score(text[], text, jsonb) IS 'Score a payload against a baseline of events given inline';
COMMENT ON FUNCTION driftlock_score(uuid, text) IS 'Score a payload against a stream''s saved detector, without changing it';
COMMENT ON FUNCTION driftlock_observe(uuid, text) IS 'Score a payload, learn from it, save the stream''s detector, record an anomaly';
COMMENT ON FUNCTION driftlock_compare(text[], text[], integer, bigint) IS 'NCD of a window of events against a baseline, with a permutation-test p-value';
COMMENT ON AGGREGATE driftlock_detect(text) IS 'The streaming detector over rows in order; use as a window function';

-- ==== metrics ====

-- The counters in shared memory (src/metrics.c); they need the library in
-- shared_preload_libraries.
CREATE FUNCTION driftlock_metrics(
    OUT metric text, OUT stream_id uuid, OUT labels jsonb, OUT value double precision)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'driftlock_metrics'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW driftlock.metrics AS SELECT * FROM driftlock_metrics();
COMMENT ON VIEW driftlock.metrics IS 'driftlock counters: one row per metric, stream and label set';

CREATE FUNCTION driftlock_prometheus() RETURNS text
AS 'MODULE_PATHNAME', 'driftlock_prometheus'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION driftlock_prometheus() IS 'driftlock counters in the Prometheus text exposition format';

CREATE FUNCTION driftlock_metrics_reset() RETURNS void
AS 'MODULE_PATHNAME', 'driftlock_metrics_reset'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION driftlock_metrics_reset() IS 'Zero the driftlock counters and set their reset time';

-- ==== privileges ====
--
-- Ordinary roles (PUBLIC) may call the detection functions and read the
-- stream list (id, name, config, created_at) and the metrics.  They cannot
-- change streams, nor read anomalies, dead letters, offsets or detector
-- state, which hold event payloads.  Members of driftlock_admin manage
-- streams, read and write every table, observe events and reset the
-- metrics.  The role is cluster-wide: it is created if missing and is not
-- dropped by DROP EXTENSION.
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
              -- array types and tables' row types (members too from
              -- PostgreSQL 17 on) take their privileges from what they
              -- belong to, and refuse GRANT and REVOKE of their own
              AND t.typcategory <> 'A'
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                              WHERE c.oid = t.typrelid AND c.relkind <> 'c')
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
-- driftlock_metrics_reset, and the aggregate's support functions, which the
-- aggregate calls with its owner's rights) are their owner's alone.
GRANT USAGE ON SCHEMA driftlock TO PUBLIC;
GRANT USAGE ON TYPE driftlock.verdict TO PUBLIC;
GRANT SELECT (id, name, config, created_at) ON driftlock.streams TO PUBLIC;
GRANT SELECT ON driftlock.metrics TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    driftlock_config_check(jsonb),
    driftlock_detect(text), driftlock_detect(text, jsonb),
    driftlock_detect(bytea), driftlock_detect(bytea, jsonb),
    driftlock_detect(jsonb), driftlock_detect(jsonb, jsonb),
    driftlock_score(text[], text, jsonb),
    driftlock_score(uuid, text), driftlock_score(uuid, bytea), driftlock_score(uuid, jsonb),
    driftlock_compare(text[], text[], integer, bigint),
    driftlock_metrics(), driftlock_prometheus()
    TO PUBLIC;

GRANT USAGE ON SCHEMA driftlock TO driftlock_admin;
-- Not ALL: TRIGGER would let an admin run code as the Kafka worker, which
-- connects as the bootstrap superuser.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON
    driftlock.streams, driftlock.anomalies, driftlock.dead_letters,
    driftlock.kafka_offsets, driftlock.stream_state
    TO driftlock_admin;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE driftlock.anomalies_id_seq, driftlock.dead_letters_id_seq
    TO driftlock_admin;
GRANT EXECUTE ON FUNCTION
    driftlock_observe(uuid, text), driftlock_observe(uuid, bytea), driftlock_observe(uuid, jsonb),
    driftlock_metrics_reset()
    TO driftlock_admin;
