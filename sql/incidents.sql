--
-- Incidents: anomalies of a stream grouped by incident key, their
-- severity, feedback that teaches the detector, suppressions, learn-only
-- streams, and bad input to each function.
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

INSERT INTO driftlock.streams (id, name, config)
VALUES ('6f1c1d3e-0000-4000-8000-0000000000a1', 'orders', '{"warmup": 50}');

CREATE FUNCTION observe(line text) RETURNS driftlock.verdict LANGUAGE sql AS
$$ SELECT driftlock_observe('6f1c1d3e-0000-4000-8000-0000000000a1'::uuid, line) $$;
CREATE FUNCTION normal_line(g int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT format('order %s placed: %s items, total %s.%s EUR, customer c%s', 1000 + g, 1 + g % 4, 10 + g % 70, g % 100, g % 37) $$;

SELECT count(*) FILTER (WHERE (v).is_anomaly) AS flagged
FROM (SELECT observe(normal_line(g)) AS v FROM generate_series(1, 300) g) s;
SELECT count(*) AS incidents FROM driftlock.incidents;

-- a new failure, three times: three anomalies, one incident
SELECT (v).is_anomaly, (v).pattern_status, (v).pattern_count
FROM (SELECT g, observe(format('PANIC payment gateway timeout after %s ms, circuit open', 30000 + g)) AS v
      FROM generate_series(1, 3) g) s ORDER BY g;
SELECT stream, anomalies, pattern, severity >= 75 AS high, min_p_value <= 0.01 AS significant,
       first_seen <= last_seen AS ordered, kafka_topic IS NULL AS not_from_kafka
FROM driftlock.open_incidents;
SELECT count(*) AS anomalies, count(DISTINCT incident_id) AS incidents,
       bool_and(incident_id = (SELECT id FROM driftlock.incidents WHERE pattern ~ '^PANIC')) AS linked,
       bool_and(pattern_status IN ('new', 'repeat')) AS statuses,
       bool_and(event_number BETWEEN 301 AND 303) AS numbered
FROM driftlock.anomalies WHERE pattern ~ '^PANIC';
SELECT i.top_anomaly_id = (SELECT id FROM driftlock.anomalies WHERE pattern ~ '^PANIC' ORDER BY p_value, id LIMIT 1) AS top_is_most_significant,
       i.explanation ~ '^Anomalous' AS explained, i.first_event, i.last_event
FROM driftlock.incidents i WHERE pattern ~ '^PANIC';

-- another kind of failure is another incident
SELECT (observe('{"error":"disk full","path":"/var/lib/orders","free_bytes":0}')).is_anomaly;
SELECT count(*) AS open_incidents FROM driftlock.open_incidents;

-- severity: 0 at alpha, 75 at alpha squared or ten anomalies at alpha, at most 100
SELECT pattern, anomalies, severity BETWEEN 0 AND 100 AS in_range FROM driftlock.incidents ORDER BY id;

-- a quiet incident is resolved; the next anomaly of its key opens a new one
UPDATE driftlock.incidents SET last_seen = last_seen - interval '1 hour'
WHERE pattern ~ '^PANIC';
SELECT driftlock_resolve_incidents() AS resolved;
SELECT status, resolved_at = last_seen + interval '15 min' AS resolved_after_quiet_period
FROM driftlock.incidents WHERE pattern ~ '^PANIC';
SELECT (observe('PANIC payment gateway timeout after 30009 ms, circuit open')).is_anomaly;
SELECT status, anomalies FROM driftlock.incidents WHERE pattern ~ '^PANIC' ORDER BY id;

-- suppressing a pattern: its anomalies are recorded but open no incident
SELECT driftlock_suppress('6f1c1d3e-0000-4000-8000-0000000000a1', pattern_id, now() + interval '1 day', 'known outage') > 0 AS suppressed
FROM driftlock.incidents WHERE pattern ~ '^error disk';
UPDATE driftlock.incidents SET status = 'resolved' WHERE pattern ~ '^error disk';
SELECT (observe('{"error":"disk full","path":"/var/lib/orders","free_bytes":0}')).is_anomaly;
SELECT suppressed, incident_id IS NULL AS no_incident FROM driftlock.anomalies ORDER BY id DESC LIMIT 1;
SELECT count(*) AS disk_incidents FROM driftlock.incidents WHERE pattern ~ '^error disk';
SELECT reason, created_by = current_user AS by_me, lifted_at IS NULL AS active FROM driftlock.suppressions;
SELECT driftlock_unsuppress('6f1c1d3e-0000-4000-8000-0000000000a1', pattern_id) AS lifted
FROM driftlock.incidents WHERE pattern ~ '^error disk';
SELECT lifted_at IS NOT NULL AS lifted, lifted_by = current_user AS by_me FROM driftlock.suppressions;

-- marking an anomaly normal: a false alarm, learnt before the next event
SELECT driftlock_mark_normal(id) > 0 AS feedback
FROM driftlock.anomalies WHERE convert_from(payload, 'UTF8') ~ 'circuit open' ORDER BY id DESC LIMIT 1;
SELECT status FROM driftlock.incidents WHERE pattern ~ '^PANIC' ORDER BY id DESC LIMIT 1;
SELECT applied_at IS NULL AS pending FROM driftlock.feedback;
SELECT (v).is_anomaly, (v).pattern_status
FROM (SELECT observe('PANIC payment gateway timeout after 30011 ms, circuit open') AS v) s;
SELECT applied_at IS NOT NULL AS applied, applied_event, applied_kafka_topic IS NULL AS not_from_kafka
FROM driftlock.feedback;
SELECT count(*) FILTER (WHERE (v).is_anomaly) AS flagged_after_feedback
FROM (SELECT observe(format('PANIC payment gateway timeout after %s ms, circuit open', 31000 + g)) AS v
      FROM generate_series(1, 20) g) s;

-- marking a whole incident normal learns its most significant anomalies
SELECT driftlock_mark_normal_incident(id) AS learnt FROM driftlock.incidents WHERE pattern ~ '^error disk';
SELECT status FROM driftlock.incidents WHERE pattern ~ '^error disk';

-- a learn-only stream learns everything and flags nothing
UPDATE driftlock.streams SET learn_only = true WHERE name = 'orders';
SELECT (v).is_anomaly, (v).warm
FROM (SELECT observe('kernel: Out of memory: Killed process 4242 (postgres)') AS v) s;
UPDATE driftlock.streams SET learn_only = false WHERE name = 'orders';
SELECT (observe('kernel: Out of memory: Killed process 4243 (postgres)')).pattern_status;

-- bad input
SELECT driftlock_mark_normal(NULL);
SELECT driftlock_mark_normal(-1);
SELECT driftlock_mark_normal_incident(NULL);
SELECT driftlock_mark_normal_incident(123456789);
SELECT driftlock_suppress(NULL, 1, now() + interval '1 day');
SELECT driftlock_suppress('6f1c1d3e-0000-4000-8000-0000000000a1', 1, '2000-01-01');
SELECT driftlock_suppress('00000000-0000-0000-0000-000000000000', 1, now() + interval '1 day');
SELECT driftlock_unsuppress(NULL, 1);
SELECT driftlock_unsuppress('6f1c1d3e-0000-4000-8000-0000000000a1', 42) AS lifted;
\set VERBOSITY terse
UPDATE driftlock.incidents SET status = 'gone';
UPDATE driftlock.incidents SET severity = 101;
\set VERBOSITY default

-- privileges: everyone reads incidents without payloads; only
-- driftlock_admin gives feedback and suppresses
CREATE ROLE driftlock_regress_reader;
CREATE ROLE driftlock_regress_admin IN ROLE driftlock_admin;
SET ROLE driftlock_regress_reader;
SELECT count(*) > 0 AS sees_incidents FROM driftlock.open_incidents;
SELECT count(pattern) > 0 AS sees_patterns FROM driftlock.incidents;
SELECT explanation FROM driftlock.incidents;
SELECT count(*) FROM driftlock.feedback;
SELECT driftlock_mark_normal(1);
SELECT driftlock_suppress('6f1c1d3e-0000-4000-8000-0000000000a1', 1, now() + interval '1 day');
UPDATE driftlock.incidents SET status = 'resolved';
SET ROLE driftlock_regress_admin;
SELECT driftlock_suppress('6f1c1d3e-0000-4000-8000-0000000000a1', 1, now() + interval '1 hour') > 0 AS admin_suppresses;
SELECT count(*) > 0 AS admin_reads_feedback FROM driftlock.feedback;
RESET ROLE;
DROP ROLE driftlock_regress_reader, driftlock_regress_admin;

DROP FUNCTION observe(text), normal_line(int);
DROP EXTENSION driftlock;
