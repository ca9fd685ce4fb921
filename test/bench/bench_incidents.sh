#!/usr/bin/env bash
#
# test/bench/bench_incidents.sh [EVENTS] -- incidents on the demo's data
#
# Generates the demo's events (test/tools/demo_producer --dry-run: four
# service streams, about EVENTS ordinary events, default 8000, with the
# demo's four injected incidents: an error burst of 30 events, a new message
# 3 times, an SQL-injection-looking query, a huge payload), starts a
# throwaway PostgreSQL instance (the extension must be installed: make
# install; run "make tools" first) and feeds them, in order, through
# driftlock_observe() -- the code path of the Kafka worker -- at the default
# detector settings (warmup 100, as in the demo).  Prints, against the
# targets of docs/incidents.md:
#
#   1. every injected incident is one incident of severity >= 75;
#   2. false incidents (holding no injected event) per 2,000 ordinary events
#      (target <= 1);
#   3. feedback: a second run over the same events in which each false
#      incident is marked normal (driftlock_mark_normal_incident) as soon as
#      it opens; its pattern must open no new incident in the stream's next
#      1,000 events.
set -euo pipefail

EVENTS=${1:-8000}
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
PRODUCER=$SRC_DIR/test/tools/demo_producer
[ -x "$PRODUCER" ] || { echo "$PRODUCER not found: run \"make tools\"" >&2; exit 1; }

# shellcheck source=test/bench/pg_instance.sh
. "$SRC_DIR/test/bench/pg_instance.sh"
pg_instance_start
"$PRODUCER" --dry-run --events "$EVENTS" >"$DIR/events.tsv"
chmod a+r "$DIR/events.tsv"

pg_psql -v ON_ERROR_STOP=1 -v file="$DIR/events.tsv" <<'SQL'
CREATE EXTENSION driftlock;
CREATE TABLE demo (seq bigserial PRIMARY KEY, stream text NOT NULL, payload text NOT NULL,
                   injected text);
CREATE TEMP TABLE raw (stream text, payload text);
\set copy '\\copy raw FROM ' :'file' ' WITH (FORMAT text)'
:copy
INSERT INTO demo (stream, payload) SELECT stream, payload FROM raw;
-- the demo's injected incidents, as demo/run.sh reports them
UPDATE demo SET injected = CASE
  WHEN payload LIKE '%charge failed: database timeout%' THEN 'payments: error burst'
  WHEN payload LIKE '%account locked after repeated failures%' THEN 'auth: new message'
  WHEN payload LIKE '%UNION SELECT username%' THEN 'search: SQL-injection-looking query'
  WHEN payload LIKE '%debug_blob%' THEN 'search: huge nested payload' END;

-- runs: plain, and with feedback on false incidents
CREATE TABLE marked (run text, stream text, pattern_id bigint, event_number bigint);
CREATE FUNCTION run_events(run text, feedback boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  e record;
  v driftlock.verdict;
  sid uuid;
  inc record;
BEGIN
  INSERT INTO driftlock.streams (name, config)
  SELECT run || ':' || s, '{"warmup": 100}' FROM (SELECT DISTINCT stream AS s FROM demo) d;
  FOR e IN SELECT * FROM demo ORDER BY seq LOOP
    SELECT id INTO sid FROM driftlock.streams WHERE name = run || ':' || e.stream;
    v := driftlock_observe(sid, e.payload);
    IF feedback AND v.is_anomaly AND e.injected IS NULL THEN
      -- a false alarm that opened an incident: mark the incident normal
      SELECT i.id, i.pattern_id INTO inc FROM driftlock.incidents i
      WHERE i.stream_id = sid AND i.incident_key = v.incident_key AND i.status = 'open'
        AND i.first_event = v.event_number;
      IF FOUND THEN
        PERFORM driftlock_mark_normal_incident(inc.id);
        INSERT INTO marked VALUES (run, e.stream, inc.pattern_id, v.event_number);
      END IF;
    END IF;
  END LOOP;
END
$$;
SQL

T0=$(date +%s.%N)
pg_q "SELECT run_events('plain', false)" >/dev/null
T1=$(date +%s.%N)
pg_q "SELECT run_events('feedback', true)" >/dev/null

echo "driftlock incidents benchmark: the demo's events through driftlock_observe() at the default settings"
pg_psql -At <<SQL
SELECT format('events %s (%s ordinary, %s injected in 4 incidents) over %s streams; %s events/s through driftlock_observe()',
  count(*), count(*) FILTER (WHERE injected IS NULL), count(injected), count(DISTINCT stream),
  round(count(*) / ($T1 - $T0)))
FROM demo;
SELECT format('anomalies %s, incidents %s (%s high, %s medium, %s low)',
  (SELECT count(*) FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id WHERE s.name LIKE 'plain:%'),
  count(*), count(*) FILTER (WHERE severity >= 75), count(*) FILTER (WHERE severity >= 50 AND severity < 75),
  count(*) FILTER (WHERE severity < 50))
FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id WHERE s.name LIKE 'plain:%';
SQL
echo
echo "1. injected incidents (target: each one incident, severity >= 75)"
pg_psql -At <<'SQL'
WITH a AS (
  SELECT d.injected, count(*) AS events, count(an.id) AS flagged,
         count(DISTINCT an.incident_id) AS incidents, max(i.severity) AS severity
  FROM demo d
  JOIN driftlock.streams s ON s.name = 'plain:' || d.stream
  LEFT JOIN driftlock.anomalies an ON an.stream_id = s.id AND convert_from(an.payload, 'UTF8') = d.payload
  LEFT JOIN driftlock.incidents i ON i.id = an.incident_id
  WHERE d.injected IS NOT NULL GROUP BY d.injected)
SELECT format('   %-38s %2s of %2s events flagged, %s incident(s), severity %s  %s',
  injected, flagged, events, incidents, coalesce(severity::text, '-'),
  CASE WHEN incidents = 1 AND severity >= 75 THEN 'ok' ELSE 'MISSED' END)
FROM a ORDER BY injected;
SQL
echo
echo "2. false incidents (target: <= 1 per 2,000 ordinary events)"
pg_psql -At <<'SQL'
WITH f AS (
  SELECT i.* FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id
  WHERE s.name LIKE 'plain:%'
    AND NOT EXISTS (SELECT FROM driftlock.anomalies an JOIN demo d
                      ON convert_from(an.payload, 'UTF8') = d.payload AND d.injected IS NOT NULL
                    WHERE an.incident_id = i.id))
SELECT format('   %s false incidents (%s of them high severity) in %s ordinary events = %s per 2,000  %s',
  (SELECT count(*) FROM f), (SELECT count(*) FROM f WHERE severity >= 75), n,
  round(2000.0 * (SELECT count(*) FROM f) / n, 2),
  CASE WHEN 2000.0 * (SELECT count(*) FROM f) / n <= 1 THEN 'ok' ELSE 'ABOVE TARGET' END)
FROM (SELECT count(*) AS n FROM demo WHERE injected IS NULL) d;
SELECT format('     %s  severity %s, %s anomalies: %s', s.name, i.severity, i.anomalies, left(i.pattern, 70))
FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id
WHERE s.name LIKE 'plain:%'
  AND NOT EXISTS (SELECT FROM driftlock.anomalies an JOIN demo d
                    ON convert_from(an.payload, 'UTF8') = d.payload AND d.injected IS NOT NULL
                  WHERE an.incident_id = i.id)
ORDER BY i.id;
SQL
echo
echo "3. feedback (target: a pattern marked normal opens no new incident in its stream's next 1,000 events)"
pg_psql -At <<'SQL'
WITH m AS (
  SELECT m.*, s.id AS sid,
         (SELECT count(*) FROM driftlock.incidents i
          WHERE i.stream_id = s.id AND i.pattern_id = m.pattern_id
            AND i.first_event > m.event_number AND i.first_event <= m.event_number + 1000) AS again,
         (SELECT max(st.events) FROM driftlock.stream_state st WHERE st.stream_id = s.id) AS stream_events
  FROM marked m JOIN driftlock.streams s ON s.name = m.run || ':' || m.stream)
SELECT CASE WHEN count(*) = 0 THEN '   no false incident to mark: nothing measured'
  ELSE format('   %s incidents marked normal; %s new incidents of their patterns within 1,000 events (%s of them had 1,000 events left)  %s',
    count(*), sum(again), count(*) FILTER (WHERE stream_events >= event_number + 1000),
    CASE WHEN sum(again) = 0 THEN 'ok' ELSE 'ABOVE TARGET' END) END
FROM m;
SELECT format('     %s event %s: pattern %s, then %s more events of the stream',
  m.stream, m.event_number, m.pattern_id, st.events - m.event_number)
FROM marked m JOIN driftlock.streams s ON s.name = m.run || ':' || m.stream
JOIN driftlock.stream_state st ON st.stream_id = s.id ORDER BY m.event_number;
SELECT format('   false incidents with feedback: %s (without: %s)',
  (SELECT count(*) FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id
   WHERE s.name LIKE 'feedback:%' AND i.status = 'false_alarm'),
  (SELECT count(*) FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id
   WHERE s.name LIKE 'plain:%'
     AND NOT EXISTS (SELECT FROM driftlock.anomalies an JOIN demo d
                       ON convert_from(an.payload, 'UTF8') = d.payload AND d.injected IS NOT NULL
                     WHERE an.incident_id = i.id)));
SQL
