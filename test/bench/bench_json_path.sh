#!/usr/bin/env bash
#
# test/bench/bench_json_path.sh [EVENTS] -- why the worker reads the stream
# id with a scanner of its own (src/message/json_path.c)
#
# Times, on the same EVENTS (default 200000) ~230-byte JSON log events with
# the stream id at metadata.stream_id: json_path_lookup in C (make
# bench-build), and PostgreSQL's two JSON parsers in a throwaway instance
# (as the postgres user when run as root): payload::json #>> path and
# payload::jsonb #>> path, each minus a pass that only reads the rows.
# Prints microseconds per event.
set -euo pipefail

EVENTS=${1:-200000}
BENCH=$(cd "$(dirname "$0")" && pwd)/bench_json_path
[ -x "$BENCH" ] || { echo "$BENCH not found: run \"make bench-build\"" >&2; exit 1; }

"$BENCH" "$EVENTS"

# shellcheck source=test/bench/pg_instance.sh
. "$(dirname "$0")/pg_instance.sh"
pg_instance_start
"$BENCH" "$EVENTS" --dump >"$DIR/events.txt"
chmod a+r "$DIR/events.txt"
pg_psql <<SQL
CREATE TABLE ev (payload text);
COPY ev FROM '$DIR/events.txt' WITH (FORMAT text);
VACUUM ANALYZE ev;
SQL
# best of three of each query, in ms
best_ms() {
	local sql=$1 best=
	for _ in 1 2 3; do
		local ms
		ms=$(pg_psql -At -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$ms; fi
	done
	echo "$best"
}
BASE=$(best_ms "SELECT count(length(payload)) FROM ev")
JSON=$(best_ms "SELECT count(payload::json #>> '{metadata,stream_id}') FROM ev")
JSONB=$(best_ms "SELECT count(payload::jsonb #>> '{metadata,stream_id}') FROM ev")
awk -v n="$EVENTS" -v base="$BASE" -v json="$JSON" -v jsonb="$JSONB" 'BEGIN {
	printf "payload::json #>> (PostgreSQL)  %8.3f us/event (%.0f ms, minus %.0f ms reading the rows)\n", 1000 * (json - base) / n, json, base
	printf "payload::jsonb #>> (PostgreSQL) %8.3f us/event (%.0f ms, minus %.0f ms reading the rows)\n", 1000 * (jsonb - base) / n, jsonb, base }'
