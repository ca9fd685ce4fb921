--
-- Retention: driftlock_purge(older_than) deletes what driftlock.retention
-- deletes -- anomalies, dead letters, closed incidents, applied feedback
-- and ended suppressions older than now() - older_than -- and nothing else:
-- not the rows of the same tables that are younger, still open, pending or
-- active, not the dead letters a replay still needs, not streams, states or
-- offsets.  Bad arguments, and who may call it.  (The Kafka worker's
-- batches are tested in test/t/026_retention.pl.)
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

INSERT INTO driftlock.streams (id, name)
VALUES ('7e2d0000-0000-4000-8000-0000000000b1', 'retained');
INSERT INTO driftlock.stream_state (stream_id, state, events)
VALUES ('7e2d0000-0000-4000-8000-0000000000b1', '\x00', 10);
INSERT INTO driftlock.kafka_offsets (group_id, topic, partition, next_offset, checkpoint_offset)
VALUES ('g', 'events', 0, 200, 100),
       ('g', 'events', 1, 50, NULL);

-- rows named by what should become of them: old_* go, the others stay
CREATE FUNCTION pg_temp.ago(days int) RETURNS timestamptz LANGUAGE sql AS
$$ SELECT now() - make_interval(days => days) $$;

INSERT INTO driftlock.incidents (id, stream_id, incident_key, pattern_id, pattern, status, severity,
                                 anomalies, first_seen, last_seen, resolved_at, explanation)
VALUES (1, '7e2d0000-0000-4000-8000-0000000000b1', 1, 1, 'old_resolved', 'resolved', 10, 1,
        pg_temp.ago(41), pg_temp.ago(41), pg_temp.ago(40), 'x'),
       (2, '7e2d0000-0000-4000-8000-0000000000b1', 2, 2, 'old_false_alarm', 'false_alarm', 10, 1,
        pg_temp.ago(41), pg_temp.ago(41), pg_temp.ago(40), 'x'),
       (3, '7e2d0000-0000-4000-8000-0000000000b1', 3, 3, 'open_since_long', 'open', 10, 1,
        pg_temp.ago(90), pg_temp.ago(90), NULL, 'x'),
       (4, '7e2d0000-0000-4000-8000-0000000000b1', 4, 4, 'resolved_lately', 'resolved', 10, 1,
        pg_temp.ago(41), pg_temp.ago(20), pg_temp.ago(20), 'x');

INSERT INTO driftlock.anomalies (id, stream_id, detected_at, payload, incident_id, kafka_topic,
                                 kafka_partition, kafka_offset)
VALUES (1, '7e2d0000-0000-4000-8000-0000000000b1', pg_temp.ago(40), 'old_anomaly', 1, 'events', 0, 1),
       (2, '7e2d0000-0000-4000-8000-0000000000b1', pg_temp.ago(40), 'old_anomaly_of_open', 3, 'events', 0, 2),
       (3, '7e2d0000-0000-4000-8000-0000000000b1', pg_temp.ago(20), 'young_anomaly_of_old_incident', 2, 'events', 0, 3),
       (4, '7e2d0000-0000-4000-8000-0000000000b1', now(), 'new_anomaly', 3, NULL, NULL, NULL);

-- dead letters of partition 0: before its checkpoint offset 100 they may
-- go; from 100 on a replay skips them, so they stay however old.
-- Partition 1 has no checkpoint offset: its next offset, 50, counts.
INSERT INTO driftlock.dead_letters (received_at, kafka_topic, kafka_partition, kafka_offset, reason, payload)
VALUES (pg_temp.ago(40), 'events', 0, 99, 'unknown_stream', 'old_before_checkpoint'),
       (pg_temp.ago(40), 'events', 0, 100, 'unknown_stream', 'old_at_checkpoint'),
       (pg_temp.ago(40), 'events', 0, 150, 'unknown_stream', 'old_in_replay_range'),
       (pg_temp.ago(40), 'events', 1, 49, 'unknown_stream', 'old_before_next_offset'),
       (pg_temp.ago(40), 'events', 1, 50, 'unknown_stream', 'old_at_next_offset'),
       (pg_temp.ago(40), 'other', 0, 7, 'invalid_json', 'old_of_unknown_partition'),
       (pg_temp.ago(40), NULL, NULL, NULL, 'invalid_json', 'old_without_position'),
       (pg_temp.ago(20), 'other', 0, 8, 'invalid_json', 'young');

INSERT INTO driftlock.feedback (id, stream_id, anomaly_id, incident_id, payload, created_at, applied_at)
VALUES (1, '7e2d0000-0000-4000-8000-0000000000b1', 1, 1, 'old_applied', pg_temp.ago(45), pg_temp.ago(40)),
       (2, '7e2d0000-0000-4000-8000-0000000000b1', 1, 1, 'pending_of_old_anomaly', pg_temp.ago(45), NULL),
       (3, '7e2d0000-0000-4000-8000-0000000000b1', 3, 2, 'applied_lately', pg_temp.ago(45), pg_temp.ago(20));

INSERT INTO driftlock.suppressions (stream_id, pattern_id, until, reason, created_at, lifted_at)
VALUES ('7e2d0000-0000-4000-8000-0000000000b1', 1, pg_temp.ago(40), 'old_expired', pg_temp.ago(50), NULL),
       ('7e2d0000-0000-4000-8000-0000000000b1', 2, now() + interval '1 day', 'old_lifted', pg_temp.ago(50), pg_temp.ago(40)),
       ('7e2d0000-0000-4000-8000-0000000000b1', 3, now() + interval '1 day', 'active_since_long', pg_temp.ago(50), NULL),
       ('7e2d0000-0000-4000-8000-0000000000b1', 4, pg_temp.ago(20), 'expired_lately', pg_temp.ago(50), NULL);

-- bad arguments: clear errors, nothing deleted
SELECT * FROM driftlock_purge(NULL);
SELECT * FROM driftlock_purge('-1 day');
SELECT * FROM driftlock_purge('1 month -40 days');
SELECT (SELECT count(*) FROM driftlock.anomalies) AS anomalies,
       (SELECT count(*) FROM driftlock.dead_letters) AS dead_letters;

-- nothing is older than 60 days but the open incident
SELECT * FROM driftlock_purge('60 days');

-- 30 days
SELECT * FROM driftlock_purge('30 days');
SELECT convert_from(payload, 'UTF8') AS anomalies_left, incident_id FROM driftlock.anomalies ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS dead_letters_left, kafka_partition, kafka_offset
FROM driftlock.dead_letters ORDER BY id;
SELECT pattern AS incidents_left, status FROM driftlock.incidents ORDER BY id;
-- feedback keeps its payload when its anomaly goes (its anomaly_id becomes
-- NULL): pending feedback is still learnt
SELECT convert_from(payload, 'UTF8') AS feedback_left, anomaly_id, incident_id
FROM driftlock.feedback ORDER BY id;
SELECT reason AS suppressions_left FROM driftlock.suppressions ORDER BY id;
SELECT (SELECT count(*) FROM driftlock.streams) AS streams,
       (SELECT count(*) FROM driftlock.stream_state) AS states,
       (SELECT count(*) FROM driftlock.kafka_offsets) AS offsets;

-- again: nothing left to delete; 0 deletes all that has ended
SELECT * FROM driftlock_purge('30 days');
SELECT * FROM driftlock_purge('0');
SELECT (SELECT count(*) FROM driftlock.anomalies) AS anomalies,
       (SELECT count(*) FROM driftlock.dead_letters) AS dead_letters,
       (SELECT string_agg(pattern, ', ') FROM driftlock.incidents) AS incidents,
       (SELECT string_agg(convert_from(payload, 'UTF8'), ', ') FROM driftlock.feedback) AS feedback,
       (SELECT string_agg(reason, ', ') FROM driftlock.suppressions) AS suppressions;

-- who may call it: driftlock_admin, not PUBLIC
CREATE ROLE driftlock_regress_plain;
CREATE ROLE driftlock_regress_admin IN ROLE driftlock_admin;
INSERT INTO driftlock.dead_letters (received_at, reason) VALUES (pg_temp.ago(40), 'invalid_json');
SET ROLE driftlock_regress_plain;
SELECT * FROM driftlock_purge('30 days');
SET ROLE driftlock_regress_admin;
SELECT * FROM driftlock_purge('30 days');
RESET ROLE;
DROP ROLE driftlock_regress_plain, driftlock_regress_admin;

DROP EXTENSION driftlock;
