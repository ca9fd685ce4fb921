--
-- driftlock_replay_dead_letters() without Kafka: dead letters written by
-- hand as the worker writes them, for streams created afterwards, replayed
-- by the worker's rules (header, JSON field, stream names and ids); rows
-- that cannot be replayed stay untouched; the results are those of
-- driftlock_detect() over the replayed events; learn-only streams, pending
-- feedback, the checkpoint rule, bad arguments.
--
-- The stream id settings are reload-only: ALTER SYSTEM, then a new
-- connection (the postmaster has reloaded before it forks the backend).
--
LOAD 'driftlock';
ALTER SYSTEM SET driftlock.kafka_stream_id_header = 'X-Stream-Id';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = 'meta.stream';
ALTER SYSTEM SET driftlock.kafka_max_payload_bytes = 200;
SELECT pg_reload_conf();
\c
CREATE EXTENSION driftlock;
SHOW driftlock.kafka_stream_id_header;
SHOW driftlock.kafka_stream_id_field;
SHOW driftlock.kafka_max_payload_bytes;
\set VERBOSITY default

CREATE FUNCTION line(g int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN g IN (33, 47, 56)
                THEN format('FATAL ledger checksum mismatch on shard %s trace %s', g % 7, md5(g::text))
                ELSE format('order %s placed: %s items, total %s.%s EUR', 1000 + g, 1 + g % 4, 10 + g % 70, g % 100)
           END $$;
CREATE FUNCTION header(stream text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(jsonb_build_object('key', 'X-Stream-Id', 'value', stream)) $$;

-- Partition 0: sixty events of stream "late", set aside before it existed,
-- then messages that cannot be replayed, and three that can by other means
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, detail, headers, payload)
SELECT 'events', 0, g, 'unknown_stream', 'No stream in driftlock.streams has the id or name "late".',
       header('late'), convert_to(line(g), 'UTF8')
FROM generate_series(0, 59) g;
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, detail, headers, payload) VALUES
    ('events', 0, 60, 'unknown_stream', 'no payload', header('late'), NULL),
    ('events', 0, 61, 'payload_too_large', 'cut at 64 KiB', header('late'), convert_to(repeat('x', 65536), 'UTF8')),
    ('events', 0, 62, 'unknown_stream', 'too large now', header('late'), convert_to(repeat('y', 201), 'UTF8')),
    ('events', 0, 63, 'unknown_stream', 'names nobody', header('nobody'), 'order 1 placed'),
    -- no header: the JSON field names the stream
    ('events', 0, 64, 'missing_stream_id', 'before the field was set', NULL,
     '{"meta": {"stream": "late"}, "msg": "order 1064 placed: 1 items"}'),
    -- binary header value (written as "\x<hex>"): not an id
    ('events', 0, 65, 'invalid_stream_id', 'binary', '[{"key": "X-Stream-Id", "value": "\\xff00"}]', 'order 2 placed'),
    -- a null header value: an empty id
    ('events', 0, 66, 'invalid_stream_id', 'null', '[{"key": "X-Stream-Id", "value": null}]', 'order 3 placed'),
    -- text that only looks like hex: the name "\x6c617465", not "late"
    ('events', 0, 67, 'unknown_stream', 'hex-looking text', '[{"key": "X-Stream-Id", "value": "\\x6c617465"}]', 'order 4 placed'),
    -- headers cut when set aside: the last X-Stream-Id may be lost
    ('events', 0, 68, 'unknown_stream', 'cut headers',
     '[{"key": "X-Stream-Id", "value": "late"}, {"truncated": true}]', 'order 5 placed'),
    -- the header wins over the field; the last header of the name counts
    ('events', 0, 69, 'unknown_stream', 'two headers',
     '[{"key": "X-Stream-Id", "value": "nobody"}, {"key": "X-Stream-Id", "value": "late"}]',
     '{"meta": {"stream": "nobody"}, "msg": "order 1069 placed: 2 items"}'),
    -- headers of another shape hold no header; invalid JSON then
    ('events', 0, 70, 'invalid_json', 'object headers', '{"X-Stream-Id": "late"}', 'not json');

-- Partition 1: the worker's saved states stand at offset 5 (checkpoint):
-- offset 3 can be replayed, offset 7 waits for the next checkpoint
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset, checkpoint_offset)
VALUES ('driftlock-api', 'events', 1, 10, 5);
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload) VALUES
    ('events', 1, 3, 'unknown_stream', header('late'), convert_to(line(70), 'UTF8')),
    ('events', 1, 7, 'unknown_stream', header('late'), convert_to(line(71), 'UTF8'));

-- Partition 2: stream "quiet", learn-only, named by its id (set below)
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload)
SELECT 'events', 2, g, 'unknown_stream', header('6f1c1d3e-0000-4000-8000-0000000000b2'),
       convert_to(line(g + 20), 'UTF8')
FROM generate_series(0, 19) g;

-- the message metadata the worker kept: the replayed anomalies carry it
UPDATE driftlock.dead_letters
SET kafka_key = convert_to('k' || kafka_offset, 'UTF8'),
    kafka_timestamp = '2026-11-30 10:00:00+00'::timestamptz + kafka_offset * interval '1 second',
    kafka_timestamp_type = 'create_time'
WHERE kafka_partition = 0 AND kafka_offset < 60;

CREATE TEMP TABLE before AS SELECT * FROM driftlock.dead_letters;

-- no stream yet: nothing is replayed, everything stays
SELECT * FROM driftlock_replay_dead_letters();

-- bad arguments
SELECT * FROM driftlock_replay_dead_letters('bogus');
SELECT * FROM driftlock_replay_dead_letters(stream_id => '6f1c1d3e-0000-4000-8000-0000000000ff');

INSERT INTO driftlock.streams (id, name, config) VALUES
    ('6f1c1d3e-0000-4000-8000-0000000000a1', 'late', '{"warmup": 10, "alpha": 0.05}');
INSERT INTO driftlock.streams (id, name, config, learn_only) VALUES
    ('6f1c1d3e-0000-4000-8000-0000000000b2', 'quiet', '{"warmup": 5, "alpha": 0.05}', true);

-- filters: no dead letter of this reason resolves anywhere; then one stream
SELECT * FROM driftlock_replay_dead_letters('invalid_json');
SELECT * FROM driftlock_replay_dead_letters(stream_id => '6f1c1d3e-0000-4000-8000-0000000000b2');
-- learn-only: learnt, saved, deleted, no anomaly
SELECT s.name, st.events FROM driftlock.stream_state st JOIN driftlock.streams s ON s.id = st.stream_id;
SELECT count(*) AS quiet_dead_letters FROM driftlock.dead_letters WHERE kafka_partition = 2;
SELECT count(*) AS quiet_anomalies FROM driftlock.anomalies;

-- everything else
SELECT * FROM driftlock_replay_dead_letters();
-- with their messages' key, timestamp and headers
SELECT count(*) AS anomalies,
       count(*) FILTER (WHERE a.kafka_key = b.kafka_key AND a.kafka_timestamp = b.kafka_timestamp
                          AND a.kafka_timestamp_type = 'create_time'
                          AND a.kafka_headers = b.headers) AS with_metadata
FROM driftlock.anomalies a JOIN before b
  ON (b.kafka_topic, b.kafka_partition, b.kafka_offset) = (a.kafka_topic, a.kafka_partition, a.kafka_offset)
WHERE a.kafka_partition = 0 AND a.kafka_offset < 60;

-- what stays is untouched
SELECT d.kafka_partition, d.kafka_offset, d.reason, d.detail, d.headers
FROM driftlock.dead_letters d
ORDER BY d.kafka_partition, d.kafka_offset;
SELECT count(*) AS changed FROM driftlock.dead_letters d JOIN before b USING (id)
WHERE (d.*) IS DISTINCT FROM (b.*);

-- the replayed events, in Kafka order, and their results: exactly those of
-- driftlock_detect() over them, at their original Kafka positions
CREATE TEMP TABLE replayed AS
SELECT b.kafka_topic, b.kafka_partition, b.kafka_offset, b.payload
FROM before b
WHERE NOT EXISTS (SELECT FROM driftlock.dead_letters d WHERE d.id = b.id)
  AND b.kafka_partition <> 2;
SELECT count(*) AS replayed_late FROM replayed;
SELECT events FROM driftlock.stream_state WHERE stream_id = '6f1c1d3e-0000-4000-8000-0000000000a1';
WITH v AS (
    SELECT r.*, driftlock_detect(convert_from(r.payload, 'UTF8'), '{"warmup": 10, "alpha": 0.05}')
                  OVER (ORDER BY r.kafka_topic, r.kafka_partition, r.kafka_offset) AS v
    FROM replayed r)
SELECT v.kafka_partition, v.kafka_offset, (v.v).is_anomaly AS expected, a.id IS NOT NULL AS recorded,
       a.payload = v.payload AS same_payload,
       abs(a.score - (v.v).score) < 1e-9 AND abs(a.p_value - (v.v).p_value) < 1e-9 AS same_verdict,
       a.kafka_timestamp, a.incident_id IS NOT NULL AS in_incident
FROM v
LEFT JOIN driftlock.anomalies a
  ON (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (v.kafka_topic, v.kafka_partition, v.kafka_offset)
WHERE (v.v).is_anomaly OR a.id IS NOT NULL
ORDER BY 1, 2;
SELECT count(*) AS anomalies, count(DISTINCT incident_id) AS incidents FROM driftlock.anomalies;

-- nothing more to do
SELECT * FROM driftlock_replay_dead_letters();

-- the worker checkpoints past offset 7 of partition 1: it can go now.  A
-- feedback marked meanwhile is learnt before it, and marked applied there.
UPDATE driftlock.kafka_offsets SET checkpoint_offset = 10;
INSERT INTO driftlock.feedback (stream_id, payload)
VALUES ('6f1c1d3e-0000-4000-8000-0000000000a1', 'FATAL ledger checksum mismatch on shard 0');
SELECT * FROM driftlock_replay_dead_letters('unknown_stream', '6f1c1d3e-0000-4000-8000-0000000000a1');
SELECT applied_at IS NOT NULL AS applied, applied_event, applied_kafka_topic, applied_kafka_partition,
       applied_kafka_offset
FROM driftlock.feedback;
SELECT events FROM driftlock.stream_state WHERE stream_id = '6f1c1d3e-0000-4000-8000-0000000000a1';

-- a saved state that changed between the replay's load and its save (a
-- worker's checkpoint, played here by a trigger on the feedback the replay
-- marks applied) is not written over: the replay starts again from it,
-- relearns the feedback and the events, and saves that: 20 + 10 events,
-- not 5 + 10
INSERT INTO driftlock.streams (id, name, config) VALUES
    ('6f1c1d3e-0000-4000-8000-0000000000c3', 'rebased', '{"warmup": 10, "alpha": 0.05}'),
    ('6f1c1d3e-0000-4000-8000-0000000000c4', 'twin', '{"warmup": 10, "alpha": 0.05}');
SELECT count(*) FROM (SELECT driftlock_observe('6f1c1d3e-0000-4000-8000-0000000000c3'::uuid, line(g))
                      FROM generate_series(200, 204) g) o;
SELECT count(*) FROM (SELECT driftlock_observe('6f1c1d3e-0000-4000-8000-0000000000c4'::uuid, line(g))
                      FROM generate_series(300, 319) g) o;
CREATE FUNCTION checkpoint_meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE driftlock.stream_state s SET state = t.state, events = t.events
    FROM driftlock.stream_state t
    WHERE s.stream_id = '6f1c1d3e-0000-4000-8000-0000000000c3'
      AND t.stream_id = '6f1c1d3e-0000-4000-8000-0000000000c4';
    RETURN NULL;
END $$;
CREATE TRIGGER checkpoint_meanwhile AFTER UPDATE ON driftlock.feedback
    FOR EACH ROW EXECUTE FUNCTION checkpoint_meanwhile();
INSERT INTO driftlock.feedback (stream_id, payload)
VALUES ('6f1c1d3e-0000-4000-8000-0000000000c3', 'order 9 placed: 1 items after all');
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload)
SELECT 'events', 5, g, 'unknown_stream', header('rebased'), convert_to(line(g + 400), 'UTF8')
FROM generate_series(0, 9) g;
SELECT replayed, anomalies FROM driftlock_replay_dead_letters(NULL, '6f1c1d3e-0000-4000-8000-0000000000c3');
SELECT events FROM driftlock.stream_state WHERE stream_id = '6f1c1d3e-0000-4000-8000-0000000000c3';
SELECT applied_kafka_partition, applied_kafka_offset FROM driftlock.feedback
WHERE stream_id = '6f1c1d3e-0000-4000-8000-0000000000c3';
DROP TRIGGER checkpoint_meanwhile ON driftlock.feedback;

-- a replay fails whole: a trigger rejecting anomalies leaves every dead
-- letter in place
CREATE FUNCTION reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'anomalies are rejected'; END $$;
CREATE TRIGGER reject BEFORE INSERT ON driftlock.anomalies FOR EACH ROW EXECUTE FUNCTION reject();
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload)
SELECT 'events', 4, g, 'insert_failed', header('late'),
       convert_to(CASE WHEN g IN (10, 20) THEN 'segfault in worker thread ' || md5(g::text)
                       ELSE line(g + 100) END, 'UTF8')
FROM generate_series(0, 29) g;
\set VERBOSITY terse
SELECT * FROM driftlock_replay_dead_letters('insert_failed');
\set VERBOSITY default
SELECT count(*) AS still_dead FROM driftlock.dead_letters WHERE kafka_partition = 4;
DROP TRIGGER reject ON driftlock.anomalies;
SELECT replayed, anomalies > 0 AS flagged, remaining FROM driftlock_replay_dead_letters('insert_failed');


-- new settings: the replayed event starts the detector afresh, as it would
-- in the worker
UPDATE driftlock.streams SET config = '{"warmup": 12, "alpha": 0.05}' WHERE name = 'late';
INSERT INTO driftlock.dead_letters (kafka_topic, kafka_partition, kafka_offset, reason, headers, payload)
VALUES ('events', 3, 0, 'unknown_stream', header('late'), 'order 1 placed: 1 items');
SELECT * FROM driftlock_replay_dead_letters();
SELECT events FROM driftlock.stream_state WHERE stream_id = '6f1c1d3e-0000-4000-8000-0000000000a1';

DROP FUNCTION line(int), header(text), reject(), checkpoint_meanwhile();
DROP EXTENSION driftlock;
ALTER SYSTEM RESET driftlock.kafka_stream_id_header;
ALTER SYSTEM RESET driftlock.kafka_stream_id_field;
ALTER SYSTEM RESET driftlock.kafka_max_payload_bytes;
SELECT pg_reload_conf();
