--
-- driftlock.* settings: defaults, contexts, descriptions, validation,
-- reserved prefix and the hiding of kafka_properties.
--
-- pg_regress does not preload the library, so load it first; the
-- restart-only settings are then reloadable ("sighup"), see src/guc.c.
LOAD 'driftlock';

SELECT name, setting, unit, context, vartype, min_val, max_val
FROM pg_settings
WHERE name LIKE 'driftlock.%'
ORDER BY name;

SELECT name, short_desc
FROM pg_settings
WHERE name LIKE 'driftlock.%'
ORDER BY name;

-- every description says whether a reload or a restart is needed
SELECT name
FROM pg_settings
WHERE name LIKE 'driftlock.%'
  AND NOT (short_desc ~ '(reload|restart)\)\.$'
           AND extra_desc ~ 'Takes effect on reload|Requires a server restart');

SHOW driftlock.kafka_max_payload_bytes;
SHOW driftlock.kafka_stream_id_field;

-- the prefix is reserved: no placeholders for misspelt settings
SET driftlock.kafka_enable = on;
SET driftlock.foo = 1;

-- server-wide settings cannot be changed per session
SET driftlock.kafka_enabled = on;

-- values are validated by ALTER SYSTEM
ALTER SYSTEM SET driftlock.kafka_stream_id_field = 'metadata.stream_id';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = 'stream_id';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = '';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = '.metadata';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = 'metadata.';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = 'metadata..stream_id';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = '.';
SELECT repeat('k', 256) AS path_256, repeat('k', 257) AS path_257 \gset
ALTER SYSTEM SET driftlock.kafka_stream_id_field = :'path_256';
ALTER SYSTEM SET driftlock.kafka_stream_id_field = :'path_257';
ALTER SYSTEM SET driftlock.kafka_max_payload_bytes = '2MB';
ALTER SYSTEM SET driftlock.kafka_max_payload_bytes = 0;
ALTER SYSTEM SET driftlock.kafka_max_payload_bytes = '1GB';
ALTER SYSTEM SET driftlock.kafka_max_in_flight = 100001;
ALTER SYSTEM SET driftlock.kafka_workers = 33;
ALTER SYSTEM SET driftlock.kafka_enabled = 'maybe';
ALTER SYSTEM SET driftlock.retention = '30d';
ALTER SYSTEM SET driftlock.retention = '12h';
ALTER SYSTEM SET driftlock.retention = 0;
ALTER SYSTEM SET driftlock.retention = -1;
ALTER SYSTEM SET driftlock.dead_letter_rate_limit = 0;
ALTER SYSTEM SET driftlock.dead_letter_rate_limit = -1;
ALTER SYSTEM RESET driftlock.retention;
ALTER SYSTEM RESET driftlock.dead_letter_rate_limit;
ALTER SYSTEM RESET driftlock.kafka_stream_id_field;
ALTER SYSTEM RESET driftlock.kafka_max_payload_bytes;

-- topics: names and ^patterns separated by commas; no empty item, no
-- duplicate, Kafka's own limits on names
ALTER SYSTEM SET driftlock.kafka_topic = 'events, audit, ^logs-.*';
ALTER SYSTEM SET driftlock.kafka_topic = ' events ,audit ';
ALTER SYSTEM SET driftlock.kafka_topic = '^logs-(app|web)[0-9]+$';
ALTER SYSTEM SET driftlock.kafka_topic = '';
ALTER SYSTEM SET driftlock.kafka_topic = 'events,,audit';
ALTER SYSTEM SET driftlock.kafka_topic = 'events,';
ALTER SYSTEM SET driftlock.kafka_topic = 'events, audit, events';
ALTER SYSTEM SET driftlock.kafka_topic = 'my events';
ALTER SYSTEM SET driftlock.kafka_topic = 'logs-*';
ALTER SYSTEM SET driftlock.kafka_topic = '^logs-(';
ALTER SYSTEM SET driftlock.kafka_topic = '^';
ALTER SYSTEM SET driftlock.kafka_topic = '..';
SELECT repeat('t', 249) AS topic_249, repeat('t', 250) AS topic_250 \gset
ALTER SYSTEM SET driftlock.kafka_topic = :'topic_249';
ALTER SYSTEM SET driftlock.kafka_topic = :'topic_250';
ALTER SYSTEM RESET driftlock.kafka_topic;

-- where partitions without offsets start: earliest, latest, a time stamp
ALTER SYSTEM SET driftlock.kafka_start = 'latest';
ALTER SYSTEM SET driftlock.kafka_start = ' EARLIEST ';
ALTER SYSTEM SET driftlock.kafka_start = '2026-03-01 12:00:00+00';
ALTER SYSTEM SET driftlock.kafka_start = '2026-03-01T12:00:00.250Z';
ALTER SYSTEM SET driftlock.kafka_start = '2026-03-01';
ALTER SYSTEM SET driftlock.kafka_start = 'epoch';
ALTER SYSTEM SET driftlock.kafka_start = 'now';
ALTER SYSTEM SET driftlock.kafka_start = 'yesterday 12:00';
ALTER SYSTEM SET driftlock.kafka_start = 'infinity';
ALTER SYSTEM SET driftlock.kafka_start = '1969-12-31 23:59:59+00';
ALTER SYSTEM SET driftlock.kafka_start = 'beginning';
ALTER SYSTEM SET driftlock.kafka_start = '2026-02-30';
ALTER SYSTEM SET driftlock.kafka_start = '';
ALTER SYSTEM RESET driftlock.kafka_start;

-- where the stream id is read, in order
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'key';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'Key, JSON';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'header,key,json';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = '';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'key,';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'key, key';
ALTER SYSTEM SET driftlock.kafka_stream_id_source = 'body';
ALTER SYSTEM RESET driftlock.kafka_stream_id_source;
ALTER SYSTEM SET driftlock.kafka_strip_schema_header = on;
ALTER SYSTEM SET driftlock.kafka_strip_schema_header = 'sometimes';
ALTER SYSTEM RESET driftlock.kafka_strip_schema_header;

-- streams on demand: the template is checked like driftlock.streams.config
ALTER SYSTEM SET driftlock.kafka_auto_create_streams = on;
ALTER SYSTEM RESET driftlock.kafka_auto_create_streams;
ALTER SYSTEM SET driftlock.kafka_stream_template = '{"alpha": 0.01, "warmup": 20}';
ALTER SYSTEM SET driftlock.kafka_stream_template = '{"alhpa": 0.01}';
ALTER SYSTEM SET driftlock.kafka_stream_template = '{"alpha": 2}';
ALTER SYSTEM SET driftlock.kafka_stream_template = '{"mask": 1}';
ALTER SYSTEM SET driftlock.kafka_stream_template = '[]';
ALTER SYSTEM SET driftlock.kafka_stream_template = '{"alpha": ';
ALTER SYSTEM RESET driftlock.kafka_stream_template;
SET driftlock.kafka_stream_template = '{}';
ALTER SYSTEM SET driftlock.kafka_max_streams = 0;
ALTER SYSTEM SET driftlock.kafka_max_streams = -1;
ALTER SYSTEM RESET driftlock.kafka_max_streams;

-- kafka_properties may hold a password: hidden from ordinary roles
CREATE ROLE regress_driftlock_plain;
SET ROLE regress_driftlock_plain;
SELECT count(*) AS visible_settings FROM pg_settings WHERE name LIKE 'driftlock.%';
SELECT count(*) AS kafka_properties_rows FROM pg_settings WHERE name = 'driftlock.kafka_properties';
SHOW driftlock.kafka_properties;
SELECT current_setting('driftlock.kafka_properties');
SHOW driftlock.kafka_topic;
RESET ROLE;
DROP ROLE regress_driftlock_plain;
