-- sql/parts/0.2.0.sql -- from driftlock 0.1.0 to 0.2.0
--
-- Decisions people can trust, reported as incidents:
--   - verdicts and anomalies name the event's pattern, where the stream
--     stands with it, and the key that groups anomalies into incidents;
--   - driftlock.incidents: one row per stream and pattern while it recurs;
--   - feedback: anomalies and incidents marked normal are learnt;
--   - suppressions of a pattern for a while; streams that only learn.
--
-- The upgrade script from 0.1.0, and after 0.1.0's install script the
-- install script of 0.2.0 (see the Makefile): everything here must work on
-- a populated 0.1.0 database.  Saved detector states of 0.1.0 are
-- converted when their stream is next loaded (docs/operations.md).

-- ---------------------------------------------------------------------------
-- Verdicts
-- ---------------------------------------------------------------------------
ALTER TYPE driftlock.verdict
    ADD ATTRIBUTE pattern_id bigint,
    ADD ATTRIBUTE pattern text,
    ADD ATTRIBUTE pattern_status text,
    ADD ATTRIBUTE pattern_count bigint,
    ADD ATTRIBUTE pattern_first_event bigint,
    ADD ATTRIBUTE event_number bigint,
    ADD ATTRIBUTE incident_key bigint,
    ADD ATTRIBUTE drift text;

-- The pattern of an event as a stream with this configuration sees it.
CREATE FUNCTION driftlock_pattern(payload text, config jsonb DEFAULT '{}',
                                  OUT pattern_id bigint, OUT pattern text)
RETURNS record AS 'MODULE_PATHNAME', 'driftlock_pattern'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION driftlock_pattern(payload bytea, config jsonb DEFAULT '{}',
                                  OUT pattern_id bigint, OUT pattern text)
RETURNS record AS 'MODULE_PATHNAME', 'driftlock_pattern'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION driftlock_pattern(payload jsonb, config jsonb DEFAULT '{}',
                                  OUT pattern_id bigint, OUT pattern text)
RETURNS record AS 'MODULE_PATHNAME', 'driftlock_pattern'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION driftlock_pattern(text, jsonb) IS
'The pattern of an event (its first tokens, volatile parts masked) and its id, as a stream with this configuration sees it';

-- ---------------------------------------------------------------------------
-- Streams may learn without alarms
-- ---------------------------------------------------------------------------
ALTER TABLE driftlock.streams ADD COLUMN learn_only boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN driftlock.streams.learn_only IS
'learn every event as normal and record no anomalies (warming up on history, a noisy rollout); switching it keeps the detector';

-- ---------------------------------------------------------------------------
-- Incidents: anomalies of one stream and key while they recur
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.incidents (
    id                 bigserial        PRIMARY KEY,
    stream_id          uuid             NOT NULL REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    incident_key       bigint           NOT NULL,
    pattern_id         bigint           NOT NULL,
    pattern            text             NOT NULL,
    status             text             NOT NULL DEFAULT 'open',
    severity           int              NOT NULL,
    anomalies          bigint           NOT NULL,
    max_score          double precision,
    min_p_value        double precision,
    first_seen         timestamptz      NOT NULL,
    last_seen          timestamptz      NOT NULL,
    first_event        bigint,
    last_event         bigint,
    kafka_topic        text,
    kafka_partition    int,
    kafka_first_offset bigint,
    kafka_last_offset  bigint,
    top_anomaly_id     bigint,
    explanation        text,
    opened_at          timestamptz      NOT NULL DEFAULT now(),
    resolved_at        timestamptz,
    updated_at         timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT incidents_status_valid CHECK (status IN ('open', 'resolved', 'false_alarm')),
    CONSTRAINT incidents_severity_valid CHECK (severity BETWEEN 0 AND 100),
    CONSTRAINT incidents_anomalies_valid CHECK (anomalies > 0)
);

-- one open incident per stream and key; the latest of a key is found fast
CREATE UNIQUE INDEX incidents_open_key ON driftlock.incidents (stream_id, incident_key)
    WHERE status = 'open';
CREATE INDEX incidents_stream_key_id_idx ON driftlock.incidents (stream_id, incident_key, id);
CREATE INDEX incidents_open_severity_idx ON driftlock.incidents (severity DESC, last_seen DESC)
    WHERE status = 'open';

COMMENT ON TABLE driftlock.incidents IS 'anomalies grouped: one row per stream and incident key while its anomalies recur within driftlock.incident_quiet_period';
COMMENT ON COLUMN driftlock.incidents.id IS 'incident id';
COMMENT ON COLUMN driftlock.incidents.stream_id IS 'stream of the anomalies';
COMMENT ON COLUMN driftlock.incidents.incident_key IS 'what groups the anomalies: their pattern, or for a known pattern the pattern and the first token new to the stream';
COMMENT ON COLUMN driftlock.incidents.pattern_id IS 'pattern of the anomalies (see driftlock_pattern())';
COMMENT ON COLUMN driftlock.incidents.pattern IS 'text of the pattern: the first tokens of the event with volatile parts masked';
COMMENT ON COLUMN driftlock.incidents.status IS 'open; resolved (no anomaly for driftlock.incident_quiet_period); false_alarm (marked normal)';
COMMENT ON COLUMN driftlock.incidents.severity IS '0 to 100 from the smallest p-value against the stream''s alpha and the number of anomalies; 75 or more is high (docs/incidents.md)';
COMMENT ON COLUMN driftlock.incidents.anomalies IS 'number of anomalies in the incident';
COMMENT ON COLUMN driftlock.incidents.max_score IS 'highest score of its anomalies';
COMMENT ON COLUMN driftlock.incidents.min_p_value IS 'smallest p-value of its anomalies';
COMMENT ON COLUMN driftlock.incidents.first_seen IS 'event time of the first anomaly: its Kafka timestamp, else when it was recorded';
COMMENT ON COLUMN driftlock.incidents.last_seen IS 'event time of the latest anomaly';
COMMENT ON COLUMN driftlock.incidents.first_event IS 'number of the first anomaly''s event in its stream';
COMMENT ON COLUMN driftlock.incidents.last_event IS 'number of the latest anomaly''s event in its stream';
COMMENT ON COLUMN driftlock.incidents.kafka_topic IS 'Kafka topic of the first anomaly, null when not from Kafka';
COMMENT ON COLUMN driftlock.incidents.kafka_partition IS 'Kafka partition of the first anomaly';
COMMENT ON COLUMN driftlock.incidents.kafka_first_offset IS 'Kafka offset of the first anomaly';
COMMENT ON COLUMN driftlock.incidents.kafka_last_offset IS 'Kafka offset of the latest anomaly in the same topic and partition';
COMMENT ON COLUMN driftlock.incidents.top_anomaly_id IS 'the most significant anomaly (smallest p-value)';
COMMENT ON COLUMN driftlock.incidents.explanation IS 'explanation of the most significant anomaly (quotes parts of its payload)';
COMMENT ON COLUMN driftlock.incidents.opened_at IS 'when the incident was opened (wall clock)';
COMMENT ON COLUMN driftlock.incidents.resolved_at IS 'when it was resolved: last_seen + driftlock.incident_quiet_period, or when marked a false alarm';
COMMENT ON COLUMN driftlock.incidents.updated_at IS 'when the row last changed (wall clock)';

-- ---------------------------------------------------------------------------
-- Anomalies: their pattern, Kafka timestamp and incident
-- ---------------------------------------------------------------------------
ALTER TABLE driftlock.anomalies
    ADD COLUMN kafka_timestamp timestamptz,
    ADD COLUMN event_number bigint,
    ADD COLUMN pattern_id bigint,
    ADD COLUMN pattern text,
    ADD COLUMN pattern_status text,
    ADD COLUMN pattern_count bigint,
    ADD COLUMN pattern_first_event bigint,
    ADD COLUMN incident_key bigint,
    ADD COLUMN incident_id bigint REFERENCES driftlock.incidents (id) ON DELETE SET NULL,
    ADD COLUMN suppressed boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT anomalies_pattern_status_valid CHECK (pattern_status IN ('new', 'repeat', 'known'));

CREATE INDEX anomalies_incident_id_idx ON driftlock.anomalies (incident_id);

COMMENT ON COLUMN driftlock.anomalies.kafka_timestamp IS 'timestamp of the Kafka message (create or log-append time), null when there is none';
COMMENT ON COLUMN driftlock.anomalies.event_number IS 'number of the event in its stream, from 1';
COMMENT ON COLUMN driftlock.anomalies.pattern_id IS 'pattern of the event (see driftlock_pattern())';
COMMENT ON COLUMN driftlock.anomalies.pattern IS 'text of the pattern';
COMMENT ON COLUMN driftlock.anomalies.pattern_status IS 'new (first seen), repeat (seen before, never learnt as normal) or known (learnt as normal before)';
COMMENT ON COLUMN driftlock.anomalies.pattern_count IS 'occurrences of the pattern in the stream so far, this one included';
COMMENT ON COLUMN driftlock.anomalies.pattern_first_event IS 'event number of the pattern''s first occurrence';
COMMENT ON COLUMN driftlock.anomalies.incident_key IS 'what groups the anomaly into an incident';
COMMENT ON COLUMN driftlock.anomalies.incident_id IS 'its incident; null when its pattern was suppressed (or the anomaly predates 0.2.0)';
COMMENT ON COLUMN driftlock.anomalies.suppressed IS 'its pattern was suppressed: recorded, but no incident and no notification';

-- ---------------------------------------------------------------------------
-- Suppressions: keep recording, open no incident, notify nobody
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.suppressions (
    id          bigserial   PRIMARY KEY,
    stream_id   uuid        NOT NULL REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    pattern_id  bigint      NOT NULL,
    until       timestamptz NOT NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL DEFAULT current_user,
    lifted_at   timestamptz,
    lifted_by   text
);

CREATE INDEX suppressions_active_idx ON driftlock.suppressions (stream_id, pattern_id)
    WHERE lifted_at IS NULL;

COMMENT ON TABLE driftlock.suppressions IS 'patterns whose anomalies open no incident and send no notification until a time; kept after they end or are lifted';
COMMENT ON COLUMN driftlock.suppressions.id IS 'suppression id';
COMMENT ON COLUMN driftlock.suppressions.stream_id IS 'stream of the pattern';
COMMENT ON COLUMN driftlock.suppressions.pattern_id IS 'suppressed pattern';
COMMENT ON COLUMN driftlock.suppressions.until IS 'anomalies with an event time before this are suppressed';
COMMENT ON COLUMN driftlock.suppressions.reason IS 'why, as given to driftlock_suppress()';
COMMENT ON COLUMN driftlock.suppressions.created_at IS 'when the suppression was made';
COMMENT ON COLUMN driftlock.suppressions.created_by IS 'who made it';
COMMENT ON COLUMN driftlock.suppressions.lifted_at IS 'when driftlock_unsuppress() ended it early';
COMMENT ON COLUMN driftlock.suppressions.lifted_by IS 'who lifted it';

-- ---------------------------------------------------------------------------
-- Feedback: events marked normal, learnt by their stream's detector
-- ---------------------------------------------------------------------------
CREATE TABLE driftlock.feedback (
    id                      bigserial   PRIMARY KEY,
    stream_id               uuid        NOT NULL REFERENCES driftlock.streams (id) ON DELETE CASCADE,
    anomaly_id              bigint      REFERENCES driftlock.anomalies (id) ON DELETE SET NULL,
    incident_id             bigint      REFERENCES driftlock.incidents (id) ON DELETE SET NULL,
    payload                 bytea       NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    created_by              text        NOT NULL DEFAULT current_user,
    applied_at              timestamptz,
    applied_event           bigint,
    applied_kafka_topic     text,
    applied_kafka_partition int,
    applied_kafka_offset    bigint
);

CREATE INDEX feedback_pending_idx ON driftlock.feedback (stream_id, id) WHERE applied_at IS NULL;

COMMENT ON TABLE driftlock.feedback IS 'events marked normal; each is learnt by its stream''s detector before the stream''s next event, in the same transaction';
COMMENT ON COLUMN driftlock.feedback.id IS 'feedback id; pending feedback is learnt in id order';
COMMENT ON COLUMN driftlock.feedback.stream_id IS 'stream whose detector learns the event';
COMMENT ON COLUMN driftlock.feedback.anomaly_id IS 'the anomaly marked normal';
COMMENT ON COLUMN driftlock.feedback.incident_id IS 'its incident, closed as a false alarm';
COMMENT ON COLUMN driftlock.feedback.payload IS 'the event to learn';
COMMENT ON COLUMN driftlock.feedback.created_at IS 'when it was marked normal';
COMMENT ON COLUMN driftlock.feedback.created_by IS 'who marked it';
COMMENT ON COLUMN driftlock.feedback.applied_at IS 'when the detector learnt it; null while pending';
COMMENT ON COLUMN driftlock.feedback.applied_event IS 'the stream''s event count when it was learnt: it took effect from event applied_event + 1 on';
COMMENT ON COLUMN driftlock.feedback.applied_kafka_topic IS 'Kafka topic of the message before which it was learnt, null when not from Kafka';
COMMENT ON COLUMN driftlock.feedback.applied_kafka_partition IS 'Kafka partition of that message';
COMMENT ON COLUMN driftlock.feedback.applied_kafka_offset IS 'Kafka offset of that message';

SELECT pg_catalog.pg_extension_config_dump('driftlock.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.incidents_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.suppressions', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.suppressions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.feedback', '');
SELECT pg_catalog.pg_extension_config_dump('driftlock.feedback_id_seq', '');

-- ---------------------------------------------------------------------------
-- Open incidents, most severe first, without payloads
-- ---------------------------------------------------------------------------
CREATE VIEW driftlock.open_incidents AS
SELECT i.id, s.name AS stream, i.stream_id, i.severity, i.anomalies, i.pattern_id, i.pattern,
       i.first_seen, i.last_seen, i.min_p_value, i.max_score,
       i.kafka_topic, i.kafka_partition, i.kafka_first_offset, i.kafka_last_offset, i.opened_at
FROM driftlock.incidents i
JOIN driftlock.streams s ON s.id = i.stream_id
WHERE i.status = 'open'
ORDER BY i.severity DESC, i.last_seen DESC;
COMMENT ON VIEW driftlock.open_incidents IS 'open incidents, most severe first, with the stream''s name; no payloads';

-- ---------------------------------------------------------------------------
-- Feedback, suppressions, resolving
-- ---------------------------------------------------------------------------
CREATE FUNCTION driftlock_mark_normal(anomaly_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a record;
    feedback_id bigint;
BEGIN
    IF anomaly_id IS NULL THEN
        RAISE EXCEPTION 'anomaly id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x.id, x.stream_id, x.payload, x.incident_id INTO a
    FROM driftlock.anomalies x WHERE x.id = anomaly_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'driftlock anomaly % does not exist', anomaly_id
            USING ERRCODE = 'no_data_found', HINT = 'Anomalies are rows of driftlock.anomalies.';
    END IF;
    INSERT INTO driftlock.feedback (stream_id, anomaly_id, incident_id, payload)
    VALUES (a.stream_id, a.id, a.incident_id, a.payload)
    RETURNING id INTO feedback_id;
    UPDATE driftlock.incidents
    SET status = 'false_alarm', resolved_at = now(), updated_at = now()
    WHERE id = a.incident_id AND status <> 'false_alarm';
    RETURN feedback_id;
END
$$;
COMMENT ON FUNCTION driftlock_mark_normal(bigint) IS
'Mark an anomaly normal: its stream''s detector learns it before its next event, and its incident is closed as a false alarm; returns the feedback id';

CREATE FUNCTION driftlock_mark_normal_incident(incident_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i record;
    learnt integer;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'incident id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x.id, x.stream_id INTO i FROM driftlock.incidents x WHERE x.id = incident_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'driftlock incident % does not exist', incident_id
            USING ERRCODE = 'no_data_found', HINT = 'Incidents are rows of driftlock.incidents.';
    END IF;
    -- its ten most significant anomalies stand for it: one is enough to
    -- learn a pattern, a few cover its variants
    INSERT INTO driftlock.feedback (stream_id, anomaly_id, incident_id, payload)
    SELECT a.stream_id, a.id, i.id, a.payload
    FROM driftlock.anomalies a
    WHERE a.incident_id = i.id
    ORDER BY a.p_value, a.id
    LIMIT 10;
    GET DIAGNOSTICS learnt = ROW_COUNT;
    UPDATE driftlock.incidents
    SET status = 'false_alarm', resolved_at = now(), updated_at = now()
    WHERE id = i.id AND status <> 'false_alarm';
    RETURN learnt;
END
$$;
COMMENT ON FUNCTION driftlock_mark_normal_incident(bigint) IS
'Mark an incident a false alarm: its stream''s detector learns its ten most significant anomalies before its next event; returns how many';

CREATE FUNCTION driftlock_suppress(stream_id uuid, pattern_id bigint, until timestamptz,
                                   reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    suppression_id bigint;
BEGIN
    IF stream_id IS NULL OR pattern_id IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'stream id, pattern id and until must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF until <= now() THEN
        RAISE EXCEPTION 'suppression would end at %, which is not in the future', until
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the time until which the pattern''s anomalies open no incident, such as now() + interval ''1 day''.';
    END IF;
    IF NOT EXISTS (SELECT FROM driftlock.streams s WHERE s.id = stream_id) THEN
        RAISE EXCEPTION 'driftlock stream % does not exist', stream_id
            USING ERRCODE = 'no_data_found', HINT = 'Streams are rows of driftlock.streams.';
    END IF;
    INSERT INTO driftlock.suppressions (stream_id, pattern_id, until, reason)
    VALUES (stream_id, pattern_id, until, reason)
    RETURNING id INTO suppression_id;
    RETURN suppression_id;
END
$$;
COMMENT ON FUNCTION driftlock_suppress(uuid, bigint, timestamptz, text) IS
'Until a time, record a pattern''s anomalies but open no incident and send no notification for them; returns the suppression id';

CREATE FUNCTION driftlock_unsuppress(stream_id uuid, pattern_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lifted integer;
BEGIN
    IF stream_id IS NULL OR pattern_id IS NULL THEN
        RAISE EXCEPTION 'stream id and pattern id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE driftlock.suppressions s
    SET lifted_at = now(), lifted_by = current_user
    WHERE s.stream_id = driftlock_unsuppress.stream_id
      AND s.pattern_id = driftlock_unsuppress.pattern_id
      AND s.lifted_at IS NULL AND s.until > now();
    GET DIAGNOSTICS lifted = ROW_COUNT;
    RETURN lifted;
END
$$;
COMMENT ON FUNCTION driftlock_unsuppress(uuid, bigint) IS
'End a pattern''s active suppressions now; returns how many were lifted';

-- Incidents resolve after a quiet period of event time (src/incidents.c);
-- this sets the status of those already past it, for whoever reads the
-- table before the next anomaly of their key comes.  The worker runs it
-- every few seconds.
CREATE FUNCTION driftlock_resolve_incidents()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    quiet interval := coalesce(nullif(current_setting('driftlock.incident_quiet_period', true), ''),
                               '15min')::interval;
    resolved integer;
BEGIN
    UPDATE driftlock.incidents
    SET status = 'resolved', resolved_at = last_seen + quiet, updated_at = now()
    WHERE status = 'open' AND last_seen + quiet < now();
    GET DIAGNOSTICS resolved = ROW_COUNT;
    RETURN resolved;
END
$$;
COMMENT ON FUNCTION driftlock_resolve_incidents() IS
'Resolve the open incidents whose last anomaly is older than driftlock.incident_quiet_period; returns how many';

-- ---------------------------------------------------------------------------
-- Checkpointed detector states (docs/operations.md#checkpoints)
-- ---------------------------------------------------------------------------
-- The Kafka worker saves its streams' detectors every
-- driftlock.checkpoint_interval, not with every batch.  checkpoint_offset is
-- where the saved states stand in the partition: after a crash the worker
-- reads again from there, lets the detectors relearn up to next_offset
-- without writing anything, and goes on.  NULL means next_offset: rows of
-- 0.1.0 (which saved the states with every batch) and rows written by hand
-- to make a group start somewhere.
ALTER TABLE driftlock.kafka_offsets ADD COLUMN checkpoint_offset bigint;
COMMENT ON COLUMN driftlock.kafka_offsets.checkpoint_offset IS
'offset up to which the saved detector states include this partition''s messages (NULL: next_offset); after a crash the worker reads again from here';

-- States are zstd-compressed by the detector itself (state format 3):
-- stored out of line as they are, without a second compression.
ALTER TABLE driftlock.stream_state ALTER COLUMN state SET STORAGE EXTERNAL;
COMMENT ON COLUMN driftlock.stream_state.state IS
'serialised detector state (zstd-compressed), as of the last checkpoint of the worker that feeds the stream';

-- The Kafka workers keep stream lookups (name or id -> settings) between
-- batches; any change of driftlock.streams tells them to look again.
CREATE FUNCTION driftlock_streams_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'driftlock_streams_changed'
LANGUAGE C;
COMMENT ON FUNCTION driftlock_streams_changed() IS
'Trigger of driftlock.streams: invalidates the stream lookups cached by the Kafka workers';
CREATE TRIGGER streams_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON driftlock.streams
    FOR EACH STATEMENT EXECUTE FUNCTION driftlock_streams_changed();

-- ---------------------------------------------------------------------------
-- Messages lost to Kafka's retention (docs/operations.md#retention-gaps)
-- ---------------------------------------------------------------------------
-- When retention deletes messages before the worker read them, the range is
-- recorded as one dead letter: reason retention_gap, no payload, from
-- kafka_offset up to (not including) kafka_offset_end.
ALTER TABLE driftlock.dead_letters ADD COLUMN kafka_offset_end bigint;
COMMENT ON COLUMN driftlock.dead_letters.kafka_offset_end IS
'for a range of messages (reason retention_gap): the offset after its last message; null for a single message';
ALTER TABLE driftlock.dead_letters DROP CONSTRAINT dead_letters_reason_valid;
ALTER TABLE driftlock.dead_letters ADD CONSTRAINT dead_letters_reason_valid CHECK (reason IN (
    'payload_too_large',
    'missing_stream_id',
    'invalid_stream_id',
    'unknown_stream',
    'invalid_json',
    'detector_error',
    'insert_failed',
    'retention_gap',
    'stream_limit',
    'invalid_otlp'));
ALTER TABLE driftlock.dead_letters ADD CONSTRAINT dead_letters_range_valid
    CHECK (kafka_offset_end IS NULL OR kafka_offset_end > kafka_offset);
COMMENT ON COLUMN driftlock.dead_letters.reason IS
'why the message was set aside: payload_too_large, missing_stream_id, invalid_stream_id, unknown_stream, invalid_json, detector_error, insert_failed, retention_gap (a range of messages deleted by Kafka before they were read), stream_limit (driftlock.kafka_max_streams streams exist, none was created for the name), or invalid_otlp (driftlock.kafka_format is otlp_json or otlp_proto and the message is not such a batch)';

-- ---------------------------------------------------------------------------
-- Retention (docs/operations.md#retention)
-- ---------------------------------------------------------------------------
-- With driftlock.retention set, Kafka worker 0 deletes the rows older than
-- it a thousand at a time, oldest first (src/retention.c): these indexes
-- find them without reading the tables, and the foreign keys of feedback
-- (ON DELETE SET NULL) are followed without a scan of driftlock.feedback
-- per deleted anomaly or incident.
CREATE INDEX anomalies_detected_at_idx ON driftlock.anomalies (detected_at);
CREATE INDEX dead_letters_received_at_idx ON driftlock.dead_letters (received_at);
CREATE INDEX incidents_closed_resolved_at_idx ON driftlock.incidents (resolved_at)
    WHERE status <> 'open';
CREATE INDEX feedback_anomaly_id_idx ON driftlock.feedback (anomaly_id);
CREATE INDEX feedback_incident_id_idx ON driftlock.feedback (incident_id);

-- The worker's deletes, on demand: what goes and what stays is described in
-- docs/operations.md#retention.  Not STRICT, so that a NULL interval is a
-- clear error rather than an empty result.
CREATE FUNCTION driftlock_purge(older_than interval)
RETURNS TABLE (table_name text, rows_deleted bigint)
AS 'MODULE_PATHNAME', 'driftlock_purge'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION driftlock_purge(interval) IS
'Delete anomalies, dead letters, closed incidents, applied feedback and ended suppressions older than now() - older_than, as driftlock.retention does; returns the rows deleted per table';

-- Replaying dead letters while the workers run (src/dead_letter_replay.c)
-- ---------------------------------------------------------------------------
-- Never advanced: driftlock_replay_dead_letters() sends a relcache
-- invalidation of this sequence at commit when it saved detector states,
-- which tells the Kafka workers to drop their detectors and read their
-- partitions again from their checkpoints.  A relation of its own because
-- VACUUM and ANALYZE of driftlock.stream_state invalidate that table's
-- relcache entry too.
CREATE SEQUENCE driftlock.stream_state_changes;
COMMENT ON SEQUENCE driftlock.stream_state_changes IS
'never advanced: its relcache invalidation tells the Kafka workers that driftlock_replay_dead_letters() changed saved detector states';

CREATE FUNCTION driftlock_replay_dead_letters(reason text DEFAULT NULL, stream_id uuid DEFAULT NULL,
    OUT replayed bigint, OUT anomalies bigint, OUT remaining bigint, OUT waiting bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'driftlock_replay_dead_letters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION driftlock_replay_dead_letters(text, uuid) IS
'Feed dead letters (of a reason, resolving to a stream; NULL: all) through the Kafka worker''s path and delete them, while the workers run; returns how many were replayed, their anomalies, and how many stay and wait for a checkpoint';

-- ---------------------------------------------------------------------------
-- Kafka message metadata: timestamp type, key, headers
-- ---------------------------------------------------------------------------
-- What Kafka consumers show next to a message's position, on the rows the
-- worker writes (src/message_metadata.c).  Null for events not from Kafka
-- (driftlock_observe), for a dead letter standing for a range of messages
-- (retention_gap), and for rows written before 0.2.0.  Keys and headers
-- may hold what payloads hold: like the payloads, they are readable by
-- driftlock_admin only (whole-table privileges of 0.1.0, nothing to PUBLIC).
ALTER TABLE driftlock.anomalies
    ADD COLUMN kafka_timestamp_type text,
    ADD COLUMN kafka_key bytea,
    ADD COLUMN kafka_headers jsonb,
    ADD CONSTRAINT anomalies_ts_type_valid
        CHECK (kafka_timestamp_type IN ('create_time', 'log_append_time'));
COMMENT ON COLUMN driftlock.anomalies.kafka_timestamp_type IS
'kind of kafka_timestamp: create_time (set by the producer) or log_append_time (set by the broker); null when there is none';
COMMENT ON COLUMN driftlock.anomalies.kafka_key IS
'key of the Kafka message, its first 64 KiB; null when the key is null or the event did not come from Kafka';
COMMENT ON COLUMN driftlock.anomalies.kafka_headers IS
'headers of the Kafka message in order, as a JSON array of {"key", "value"} (value null for a null header, "\\x<hex>" for bytes that are not UTF-8 text); null when it has none or the event did not come from Kafka';

ALTER TABLE driftlock.dead_letters
    ADD COLUMN kafka_timestamp timestamptz,
    ADD COLUMN kafka_timestamp_type text,
    ADD COLUMN kafka_key bytea,
    ADD CONSTRAINT dead_letters_ts_type_valid
        CHECK (kafka_timestamp_type IN ('create_time', 'log_append_time'));
COMMENT ON COLUMN driftlock.dead_letters.kafka_timestamp IS
'timestamp of the Kafka message (create or log-append time), null when there is none';
COMMENT ON COLUMN driftlock.dead_letters.kafka_timestamp_type IS
'kind of kafka_timestamp: create_time (set by the producer) or log_append_time (set by the broker); null when there is none';
COMMENT ON COLUMN driftlock.dead_letters.kafka_key IS
'key of the Kafka message, its first 64 KiB; null when the key is null';
COMMENT ON COLUMN driftlock.dead_letters.headers IS
'headers of the Kafka message in order, as a JSON array of {"key", "value"} (value null for a null header, "\\x<hex>" for bytes that are not UTF-8 text); null when it has none';

-- OpenTelemetry logs batches (driftlock.kafka_format = otlp_json or
-- otlp_proto): one Kafka message holds many log records, each an event of
-- its own, so an event's Kafka position is (topic, partition, offset,
-- record index).  Raw messages, one event each, are record 0.  NOT NULL
-- with a constant default adds the column without rewriting the table.
ALTER TABLE driftlock.anomalies
    ADD COLUMN kafka_record_index integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT anomalies_record_index_valid CHECK (kafka_record_index >= 0),
    DROP CONSTRAINT anomalies_kafka_position_key,
    ADD CONSTRAINT anomalies_kafka_position_key
        UNIQUE (kafka_topic, kafka_partition, kafka_offset, kafka_record_index);
COMMENT ON COLUMN driftlock.anomalies.kafka_record_index IS
'index of the log record in its Kafka message (OpenTelemetry batches, from 0 in message order); 0 for a message that is one event';

-- A dead letter stands for a whole message (null: a raw message, a batch
-- that could not be decoded or whose header or key names no stream, a
-- retention gap) or for one record of a batch
-- (its index; the payload is then that record as a batch of its own, in
-- the message's encoding, so that it can be replayed).  NULLS NOT DISTINCT:
-- a message has one whole-message dead letter at the most.
ALTER TABLE driftlock.dead_letters
    ADD COLUMN kafka_record_index integer,
    ADD CONSTRAINT dead_letters_record_index_valid CHECK (kafka_record_index >= 0),
    DROP CONSTRAINT dead_letters_kafka_position_key,
    ADD CONSTRAINT dead_letters_kafka_position_key
        UNIQUE NULLS NOT DISTINCT (kafka_topic, kafka_partition, kafka_offset, kafka_record_index);
COMMENT ON COLUMN driftlock.dead_letters.kafka_record_index IS
'null when the dead letter is the whole Kafka message; else the index of the log record of an OpenTelemetry batch it stands for, whose payload is then that record alone as a batch in the message''s encoding';
COMMENT ON TABLE driftlock.anomalies IS
'events flagged as anomalous by the detector; at most one row per Kafka message, or per log record of an OpenTelemetry batch';

-- How the messages were read (driftlock.kafka_format, and the stream
-- attribute of OpenTelemetry batches): with each partition's offsets, so
-- that a replay after a crash reads the messages since the checkpoint as
-- they were read, even if the setting changed meanwhile; and with each
-- dead letter, so that driftlock_replay_dead_letters() reads it so too.
-- NULL: 0.1.0's rows, raw.
ALTER TABLE driftlock.kafka_offsets
    ADD COLUMN kafka_format text,
    ADD COLUMN otlp_stream_attribute text,
    ADD CONSTRAINT kafka_offsets_format_valid
        CHECK (kafka_format IN ('raw', 'otlp_json', 'otlp_proto'));
COMMENT ON COLUMN driftlock.kafka_offsets.kafka_format IS
'driftlock.kafka_format the messages before next_offset were read with (raw, otlp_json, otlp_proto); null for rows of 0.1.0 (raw)';
COMMENT ON COLUMN driftlock.kafka_offsets.otlp_stream_attribute IS
'driftlock.otlp_stream_attribute they were read with, for an OpenTelemetry format; else null';
ALTER TABLE driftlock.dead_letters
    ADD COLUMN kafka_format text,
    ADD CONSTRAINT dead_letters_format_valid
        CHECK (kafka_format IN ('raw', 'otlp_json', 'otlp_proto'));
COMMENT ON COLUMN driftlock.dead_letters.kafka_format IS
'driftlock.kafka_format the message was read with (raw, otlp_json, otlp_proto): how driftlock_replay_dead_letters() reads its payload; null for rows of 0.1.0 and rows written by hand (raw)';
