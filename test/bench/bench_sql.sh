#!/usr/bin/env bash
#
# test/bench/bench_sql.sh [ROWS] -- driftlock_detect() throughput in SQL
#
# Starts a throwaway PostgreSQL instance (as the postgres user when run as
# root), creates the extension (it must be installed: make install), and
# times driftlock_detect(payload) OVER (ORDER BY ts) over ROWS rows
# (default 100000) of ~200-byte JSON log events, about 1% of them unusual.
# Prints rows/s; the figure in the README comes from this script.
set -euo pipefail

ROWS=${1:-100000}
# shellcheck source=test/bench/pg_instance.sh
. "$(dirname "$0")/pg_instance.sh"
pg_instance_start

pg_psql -v rows="$ROWS" <<'SQL'
CREATE EXTENSION driftlock;
CREATE TABLE events AS
SELECT g AS ts,
       CASE WHEN g % 100 = 0 AND g > 1000 THEN
         format('{"ts":"2026-11-28T10:%s:%sZ","service":"payments","level":"error","msg":"FATAL ledger checksum mismatch on shard %s","trace":"%s"}',
                g % 60, g % 60, g % 17, md5(g::text))
       ELSE
         format('{"ts":"2026-11-28T10:%s:%s.%sZ","service":"%s","level":"info","msg":"%s","request_id":"%s","latency_ms":%s,"user":"u%s","status":200}',
                g % 60, g % 60, g % 1000,
                (ARRAY['checkout','search','auth','inventory','payments'])[1 + g % 5],
                (ARRAY['request completed','cache hit for product page','user session refreshed','token validated'])[1 + (g / 5) % 4],
                left(md5(g::text), 12), g % 400, g % 50000)
       END AS line
FROM generate_series(1, :rows) g;
ANALYZE events;
SQL
OUT=$(pg_psql -At <<'SQL'
\timing on
SELECT count(*) FILTER (WHERE (v).is_anomaly) FROM (SELECT driftlock_detect(line) OVER (ORDER BY ts) AS v FROM events) s;
SELECT round(avg(length(line))) FROM events;
SQL
)
FLAGGED=$(echo "$OUT" | sed -n 1p)
MS=$(echo "$OUT" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | head -1)
MEAN=$(echo "$OUT" | sed -n 3p)
awk -v rows="$ROWS" -v ms="$MS" -v flagged="$FLAGGED" -v mean="$MEAN" 'BEGIN {
	printf "driftlock_detect() OVER (ORDER BY ts): %d rows of %d bytes mean in %.0f ms = %.0f rows/s, %d flagged\n",
		rows, mean, ms, rows / (ms / 1000.0), flagged }'
