--
-- Streams with a saved detector: driftlock_observe learns and records,
-- driftlock_score reads, the state survives in driftlock.stream_state, and
-- ordinary roles may score but not observe.
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

INSERT INTO driftlock.streams (id, name, config)
VALUES ('6f1c1d3e-0000-4000-8000-000000000001', 'checkout', '{"warmup": 50}');

-- a stream id given as a literal needs its type: driftlock_score is
-- overloaded for (text[], text) too
SELECT driftlock_score('6f1c1d3e-0000-4000-8000-000000000001', 'x'::text);
-- no state yet: not warm
SELECT (v).warm, (v).is_anomaly
FROM driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid, 'order 1 placed'::text) v;

-- feed the stream by SQL
SELECT count(*) AS events,
       count(*) FILTER (WHERE (v).warm) AS warm,
       count(*) FILTER (WHERE (v).is_anomaly) AS flagged
FROM (SELECT driftlock_observe('6f1c1d3e-0000-4000-8000-000000000001'::uuid,
        format('{"event":"order_placed","order":%s,"items":%s,"total":%s.%s,"currency":"EUR"}',
               1000 + g, 1 + g % 4, 10 + g % 70, g % 100)::jsonb) AS v
      FROM generate_series(1, 250) g) s;
SELECT events FROM driftlock.stream_state;

-- scoring reads the saved state and changes nothing
SELECT (v).warm, (v).is_anomaly
FROM driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid,
       '{"event":"order_placed","order":1251,"items":2,"total":31.5,"currency":"EUR"}'::jsonb) v;
SELECT (v).warm, (v).is_anomaly, (v).explanation ~ 'New in it' AS names_new
FROM driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid,
       '{"event":"refund_forced","order":-1,"total":99999999,"currency":"XMR","by":"sysadmin"}'::jsonb) v;
SELECT events FROM driftlock.stream_state;
-- a second score gives the identical verdict
SELECT a IS NOT DISTINCT FROM b AS identical FROM
  driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid, 'x y z'::text) a,
  driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid, 'x y z'::text) b;

-- observing an anomaly records it, with the exact bytes
SELECT (driftlock_observe('6f1c1d3e-0000-4000-8000-000000000001'::uuid,
         '{"event":"refund_forced","order":-1,"total":99999999,"currency":"XMR","by":"sysadmin"}'::jsonb)).is_anomaly;
SELECT convert_from(payload, 'UTF8') AS payload, kafka_topic IS NULL AS not_from_kafka,
       p_value <= 0.01 AS significant, explanation ~ '^Anomalous' AS explained
FROM driftlock.anomalies;

-- the state round trip: observing the same events on a fresh stream in one
-- go, or in two sessions (state saved and reloaded in between), agrees
INSERT INTO driftlock.streams (id, name, config)
VALUES ('6f1c1d3e-0000-4000-8000-000000000002', 'replay', '{"warmup": 50}');
CREATE TABLE replay_events AS
SELECT g, format('job %s finished in %s s with status %s', g % 13, g % 60, (ARRAY['ok','ok','ok','retry'])[1 + g % 4]) AS line
FROM generate_series(1, 200) g;
CREATE TABLE in_sql AS
SELECT g, driftlock_detect(line, '{"warmup": 50}') OVER (ORDER BY g) AS v FROM replay_events;
CREATE TABLE observed AS
SELECT g, driftlock_observe('6f1c1d3e-0000-4000-8000-000000000002'::uuid, line) AS v FROM replay_events WHERE g <= 120 ORDER BY g;
\c
INSERT INTO observed
SELECT g, driftlock_observe('6f1c1d3e-0000-4000-8000-000000000002'::uuid, line) FROM replay_events WHERE g > 120 ORDER BY g;
SELECT count(*) AS differing FROM in_sql JOIN observed USING (g) WHERE in_sql.v IS DISTINCT FROM observed.v;
SELECT count(*) FILTER (WHERE (v).warm) AS warm FROM observed;
DROP TABLE replay_events, in_sql, observed;

-- changing a stream's settings starts its detector afresh, with a notice
UPDATE driftlock.streams SET config = '{"warmup": 60}' WHERE name = 'replay';
SELECT (driftlock_score('6f1c1d3e-0000-4000-8000-000000000002'::uuid, 'job 1 finished in 3 s with status ok'::text)).warm;

-- damaged state is a clear error
UPDATE driftlock.stream_state SET state = '\xdeadbeef' WHERE stream_id = '6f1c1d3e-0000-4000-8000-000000000001';
SELECT driftlock_score('6f1c1d3e-0000-4000-8000-000000000001'::uuid, 'x'::text);

-- unknown stream
SELECT driftlock_score('00000000-0000-0000-0000-000000000000'::uuid, 'x'::text);
SELECT driftlock_observe('00000000-0000-0000-0000-000000000000'::uuid, 'x'::text);

-- privileges: an ordinary role can score and use the stateless functions,
-- but cannot observe, read payloads or change streams
CREATE ROLE driftlock_regress_user;
SET ROLE driftlock_regress_user;
SELECT (driftlock_score('6f1c1d3e-0000-4000-8000-000000000002'::uuid, 'job 1 finished in 3 s with status ok'::text)).warm;
SELECT (driftlock_score(ARRAY['a', 'b'], 'c')).warm;
SELECT name FROM driftlock.streams ORDER BY name;
SELECT driftlock_observe('6f1c1d3e-0000-4000-8000-000000000002'::uuid, 'x'::text);
SELECT payload FROM driftlock.anomalies;
SELECT state FROM driftlock.stream_state;
INSERT INTO driftlock.streams (name) VALUES ('mine');
RESET ROLE;
DROP ROLE driftlock_regress_user;

DROP EXTENSION driftlock;
