--
-- driftlock_detect, driftlock_score (inline baseline) and driftlock_compare
-- on ad-hoc rows: behaviour, determinism and bad input.
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

-- A normal stream of web log lines (pseudo-random but fixed: md5 of the row
-- number picks the path, status and latency), with three incidents.
CREATE TEMP TABLE events AS
SELECT g AS ts,
       CASE
         WHEN g IN (400, 401, 402) THEN
           format('ERROR kernel: EXT4-fs (sda1): Remounting filesystem read-only, inode %s corrupted', g)
         WHEN g = 450 THEN
           '{"admin":"root","action":"DROP DATABASE production","via":"unknown-tool/0.0"}'
         ELSE
           format('GET /api/%s/%s HTTP/1.1 %s %sms user=u%s',
                  (ARRAY['items','cart','users','search'])[1 + get_byte(decode(md5(g::text), 'hex'), 0) % 4],
                  get_byte(decode(md5(g::text), 'hex'), 1) % 50,
                  (ARRAY['200','200','200','304'])[1 + get_byte(decode(md5(g::text), 'hex'), 2) % 4],
                  get_byte(decode(md5(g::text), 'hex'), 3) % 90,
                  get_byte(decode(md5(g::text), 'hex'), 4) * 7)
       END AS line
FROM generate_series(1, 600) g;

-- The window function flags the incidents and little else.
CREATE TEMP TABLE verdicts AS
SELECT ts, line, driftlock_detect(line) OVER (ORDER BY ts) AS v FROM events;

SELECT count(*) FILTER (WHERE NOT (v).warm) AS warming_up,
       count(*) FILTER (WHERE (v).is_anomaly) AS flagged,
       count(*) FILTER (WHERE (v).is_anomaly AND ts IN (400, 401, 402, 450)) AS incidents_flagged,
       count(*) FILTER (WHERE (v).is_anomaly AND ts NOT IN (400, 401, 402, 450)) AS false_alarms
FROM verdicts;

-- Verdict fields are in range and consistent.
SELECT bool_and((v).p_value > 0 AND (v).p_value <= 1) AS p_in_range,
       bool_and((v).is_anomaly = coalesce((v).warm AND (v).p_value <= 0.01, false)) AS flag_rule,
       bool_and((v).confidence IS NOT DISTINCT FROM 1 - (v).p_value) AS confidence_rule,
       bool_and((v).entropy BETWEEN 0 AND 8) AS entropy_in_range,
       bool_and((v).ncd >= 0 AND (v).compression_ratio > 0 AND (v).score >= 0) AS metrics_positive,
       bool_and((v).explanation IS NOT NULL AND (v).explanation <> '') AS explained,
       bool_and((v).event_number = ts) AS numbered,
       bool_and(((v).incident_key IS NOT NULL) = (v).is_anomaly) AS keyed_iff_anomaly,
       bool_and((v).pattern_count BETWEEN 1 AND ts AND (v).pattern_first_event BETWEEN 1 AND ts) AS pattern_counts
FROM verdicts;

-- Nothing that was not measured is reported: the first event has no
-- baseline to be compared with, so no distance, score or p-value.
SELECT (v).warm, (v).ncd, (v).compression_ratio, (v).score, (v).p_value, (v).confidence,
       (v).pattern_status, (v).pattern_count
FROM verdicts WHERE ts = 1;

-- Patterns: the three kernel errors are one pattern, new and then repeated,
-- and one incident key; the web lines are few patterns.
SELECT ts, (v).pattern, (v).pattern_status, (v).pattern_count, (v).pattern_first_event,
       (v).incident_key = first_value((v).incident_key) OVER (ORDER BY ts) AS same_incident
FROM verdicts WHERE ts IN (400, 401, 402) ORDER BY ts;
SELECT count(DISTINCT (v).pattern_id) AS web_patterns
FROM verdicts WHERE ts NOT IN (400, 401, 402, 450);
-- driftlock_pattern() gives an event the id its verdict has, for any payload type
SELECT bool_and((driftlock_pattern(line)).pattern_id = (v).pattern_id) AS same_id,
       bool_and((driftlock_pattern(convert_to(line, 'UTF8'))).pattern_id = (v).pattern_id) AS same_id_bytea
FROM verdicts;
SELECT * FROM driftlock_pattern('Oct 12 03:14:07 node-17 sshd[4242]: Accepted key for alice from 10.0.0.7 port 53211');
SELECT * FROM driftlock_pattern('{"b": 2, "a": "x1"}'::jsonb);
-- numbers are masked in patterns whatever the stream's mask setting
SELECT (driftlock_pattern('job 42 done', '{"mask": false}')).pattern,
       (driftlock_pattern('job 42 done')).pattern AS masked;
SELECT driftlock_pattern('x', '{"alhpa": 1}');
SELECT driftlock_pattern(NULL::text) IS NULL AS strict_null;

-- The explanation of an incident names the evidence and what was new.
SELECT (v).explanation ~ '^Anomalous \(p = [0-9.e-]+, alpha = 0.01\)' AS says_why,
       (v).explanation ~ 'New in it: "' AS names_new_tokens,
       (v).explanation ~ '"admin"' AS quotes_payload
FROM verdicts WHERE ts = 450;
SELECT left((v).explanation, 40) AS warm_up_explanation FROM verdicts WHERE ts = 1;

-- Deterministic: the same events in the same order give identical verdicts.
SELECT count(*) AS differing
FROM verdicts a
JOIN (SELECT ts, driftlock_detect(line) OVER (ORDER BY ts) AS v FROM events) b USING (ts)
WHERE a.v IS DISTINCT FROM b.v;

-- text, bytea and jsonb payloads: bytea of the same bytes gives the same verdicts
SELECT count(*) AS differing
FROM verdicts a
JOIN (SELECT ts, driftlock_detect(convert_to(line, 'UTF8')) OVER (ORDER BY ts) AS v FROM events) b USING (ts)
WHERE a.v IS DISTINCT FROM b.v;
-- jsonb is scored in its canonical form: key order and spacing do not matter
SELECT count(*) AS differing FROM (
  SELECT g, driftlock_detect(format('{"n": %s, "kind": "tick"}', g % 7)::jsonb) OVER (ORDER BY g) AS a,
            driftlock_detect(format('{ "kind" : "tick" , "n" : %s }', g % 7)::jsonb) OVER (ORDER BY g) AS b
  FROM generate_series(1, 150) g) s
WHERE a IS DISTINCT FROM b;

-- Per-call settings: a shorter warm-up, masking off.
SELECT count(*) FILTER (WHERE NOT (v).warm) AS warming_up
FROM (SELECT driftlock_detect(line, '{"warmup": 20}') OVER (ORDER BY ts) AS v FROM events) s;
SELECT count(*) AS differing FROM (
  SELECT driftlock_detect(line) OVER (ORDER BY ts) AS a,
         driftlock_detect(line, '{"mask": false}') OVER (ORDER BY ts) AS b FROM events) s
WHERE a IS DISTINCT FROM b;

-- As a plain aggregate: the verdict of the last event.
SELECT (driftlock_detect(line ORDER BY ts)).is_anomaly AS last_is_anomaly FROM events WHERE ts <= 450;

-- NULL payloads get NULL verdicts and do not teach the detector.
SELECT g, driftlock_detect(CASE WHEN g = 2 THEN NULL ELSE 'x' END) OVER (ORDER BY g) IS NULL AS null_verdict
FROM generate_series(1, 3) g;
-- empty and binary payloads are events like any other
SELECT (v).warm, (v).ncd
FROM (SELECT driftlock_detect(p) OVER (ORDER BY o) AS v
      FROM (VALUES (1, ''::bytea), (2, '\x00'::bytea), (3, '\xff00ff00'::bytea)) t(o, p)) s;
-- bytea that is not valid UTF-8 is scored, and its explanation stays ASCII
SELECT (v).explanation ~ '^[ -~]*$' AS ascii_explanation
FROM (SELECT driftlock_detect(p, '{"warmup": 2, "alpha": 0.5, "learn_threshold": 0.5}') OVER (ORDER BY o) AS v
      FROM (VALUES (1, 'abc'::bytea), (2, 'abd'::bytea), (3, '\xc328ff00fe'::bytea)) t(o, p)) s;

-- a very large payload is scored on its first max_event_bytes bytes, without
-- reading the rest
SELECT (v).warm, (v).explanation ~ 'Only its first 65536 of 20000004 bytes were scored' AS says_truncated
FROM (SELECT driftlock_detect(p) OVER (ORDER BY o) AS v
      FROM (VALUES (1, convert_to(repeat('large event ', 1666667) || '', 'UTF8')::bytea)) t(o, p)) s;
SELECT (v).warm, (v).explanation ~ 'Only its first 100 of 20000000 bytes were scored' AS says_truncated
FROM (SELECT driftlock_detect(repeat('y', 20000000), '{"max_event_bytes": 100}') OVER () AS v) s;

-- driftlock_score against an inline baseline
-- (the p-value depends on the compressed sizes, so on the zstd version: a range)
SELECT (s).is_anomaly, (s).warm, (s).p_value BETWEEN 0.3 AND 0.7 AS p_middling
FROM (SELECT driftlock_score(array_agg(line ORDER BY ts), 'GET /api/cart/7 HTTP/1.1 200 12ms user=u700', '{"warmup": 100}') AS s
      FROM events WHERE ts <= 300) t;
SELECT (s).is_anomaly, (s).warm, (s).explanation ~ 'New in it' AS names_new
FROM (SELECT driftlock_score(array_agg(line ORDER BY ts), 'panic: runtime error: index out of range [3] with length 3', '{"warmup": 100}') AS s
      FROM events WHERE ts <= 300) t;
-- an inline baseline is complete, however short: it is scored against and
-- cross-scored for the calibration
SELECT (s).warm, (s).p_value IS NOT NULL AS calibrated
FROM (SELECT driftlock_score(ARRAY['a b c', 'a b d', 'a b f'], 'a b e') AS s) t;
-- a single event cannot calibrate anything: measured, but no p-value
SELECT (s).warm, (s).is_anomaly, (s).ncd IS NOT NULL AS measured, (s).p_value, (s).score
FROM (SELECT driftlock_score(ARRAY['a b c'], 'a b e') AS s) t;
-- a short baseline's p-values are coarse: the explanation says from where on
-- they come from the fitted tail
SELECT (driftlock_score(ARRAY(SELECT 'tick ' || g FROM generate_series(1, 30) g), 'boom')).explanation
       ~ 'With 30 calibration scores, p-values below 0.0323 come from the fitted tail' AS says_resolution;
-- bad input
SELECT driftlock_score(ARRAY['a', NULL], 'x');
SELECT driftlock_score(ARRAY[['a'], ['b']], 'x');
SELECT driftlock_score(NULL::text[], 'x') IS NULL AS strict_null;
SELECT (driftlock_score('{}'::text[], 'x')).warm AS empty_baseline_warm;

-- driftlock_compare: a window from the same source is not significant, a
-- different one is; the same seed gives the same answer.
SELECT round(ncd::numeric, 3) > 0 AS has_ncd, p_value > 0.05 AS not_significant, permutations_run
FROM driftlock_compare(ARRAY(SELECT line FROM events WHERE ts BETWEEN 1 AND 200),
                       ARRAY(SELECT line FROM events WHERE ts BETWEEN 201 AND 260));
SELECT p_value <= 0.05 AS significant, novelty > 0.5 AS novel
FROM driftlock_compare(ARRAY(SELECT line FROM events WHERE ts BETWEEN 1 AND 200),
                       ARRAY(SELECT format('WARN db pool exhausted: waited %s ms for connection %s', g, g % 9) FROM generate_series(1, 60) g));
SELECT a = b AS same_result FROM
  (SELECT driftlock_compare(ARRAY(SELECT line FROM events WHERE ts <= 100), ARRAY(SELECT line FROM events WHERE ts BETWEEN 101 AND 130), 99, 42) AS a) x,
  (SELECT driftlock_compare(ARRAY(SELECT line FROM events WHERE ts <= 100), ARRAY(SELECT line FROM events WHERE ts BETWEEN 101 AND 130), 99, 42) AS b) y;
SELECT p_value IS NULL AS no_test, permutations_run FROM driftlock_compare(ARRAY['a'], ARRAY['b'], 0);
SELECT * FROM driftlock_compare(ARRAY['a'], ARRAY[]::text[]);
SELECT * FROM driftlock_compare(ARRAY['a'], ARRAY['b'], -1);
SELECT * FROM driftlock_compare(ARRAY['a'], ARRAY['b'], 1000000);

DROP TABLE verdicts;
DROP EXTENSION driftlock;
