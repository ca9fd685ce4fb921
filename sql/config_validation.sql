--
-- Detector settings in driftlock.streams.config and in the config argument
-- of the SQL functions: defaults, every error, and where it is checked.
--
CREATE EXTENSION driftlock;
\set VERBOSITY default

-- an empty config is the defaults
SELECT driftlock_config_check('{}');
INSERT INTO driftlock.streams (name) VALUES ('defaults') RETURNING name, config;

-- every setting, at valid values
SELECT driftlock_config_check('{"baseline_size": 300, "baseline_bytes": 65536, "warmup": 120,
  "calibration_size": 1000, "alpha": 0.005, "learn_threshold": 0.4, "rebuild_interval": 8,
  "zstd_level": 1, "mask": false, "drift_window": 300, "drift_threshold": 0.75,
  "max_event_bytes": 4096}');

-- not an object
SELECT driftlock_config_check('[]');
SELECT driftlock_config_check('"alpha"');
SELECT driftlock_config_check('null');
-- unknown key (typo)
SELECT driftlock_config_check('{"alhpa": 0.01}');
-- wrong types
SELECT driftlock_config_check('{"alpha": "0.01"}');
SELECT driftlock_config_check('{"mask": 1}');
SELECT driftlock_config_check('{"warmup": true}');
SELECT driftlock_config_check('{"warmup": [100]}');
SELECT driftlock_config_check('{"warmup": null}');
-- out of range, not whole, huge
SELECT driftlock_config_check('{"alpha": 0}');
SELECT driftlock_config_check('{"alpha": 0.9}');
SELECT driftlock_config_check('{"warmup": 10.5}');
SELECT driftlock_config_check('{"zstd_level": 99}');
SELECT driftlock_config_check('{"baseline_size": 1e400}');
SELECT driftlock_config_check('{"baseline_size": -1e400}');
-- settings that contradict each other
SELECT driftlock_config_check('{"warmup": 300}');
SELECT driftlock_config_check('{"alpha": 0.2, "learn_threshold": 0.1}');
-- a NULL config is NULL (the function is strict)
SELECT driftlock_config_check(NULL) IS NULL AS is_null;

-- the CHECK constraint on driftlock.streams uses the same validation
INSERT INTO driftlock.streams (name, config) VALUES ('typo', '{"warmpu": 10}');
UPDATE driftlock.streams SET config = '{"alpha": "high"}' WHERE name = 'defaults';
INSERT INTO driftlock.streams (name, config) VALUES ('tuned', '{"alpha": 0.001, "warmup": 150, "baseline_size": 400}');
SELECT name, config FROM driftlock.streams ORDER BY name;

-- and the config argument of the functions
SELECT (driftlock_score(ARRAY['a','b'], 'c', '{"alpha": -1}')).is_anomaly;
SELECT (driftlock_detect(x::text, '{"nope": true}')).warm FROM generate_series(1, 3) x;

DROP EXTENSION driftlock;
