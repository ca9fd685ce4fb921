#!/usr/bin/env bash
#
# test/bench/bench_worker.sh [EVENTS] [PARTITIONS] -- Kafka worker throughput
#
# Starts a mock Kafka cluster (test/tools/mock_kafka: run "make tools") and a
# throwaway PostgreSQL instance (as the postgres user when run as root) that
# preloads driftlock with the Kafka worker (the extension must be installed:
# make install).  Produces EVENTS (default 200000) ~200-byte JSON log events,
# about 1% unusual, zstd-compressed, over PARTITIONS partitions (default 8;
# a mock partition keeps only ~5 MiB), each partition one stream named in an
# X-Stream-Id header.  Then CREATE EXTENSION lets the worker start, and the
# sustained rate is timed from its first committed batch until
# driftlock.kafka_offsets reaches the end of every partition.  Finally
# "kcat -C -e -o beginning -f '%s\n'" reads the same messages for comparison.
# Also prints the workers' CPU time per message, the steadier figure on a
# shared machine.
# Environment: WORKERS (driftlock.kafka_workers, default 1), MAX_IN_FLIGHT
# (driftlock.kafka_max_in_flight, default 1000), BATCH_MS (default 100).
set -euo pipefail

EVENTS=${1:-200000}
PARTITIONS=${2:-8}
WORKERS=${WORKERS:-1}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-1000}
BATCH_MS=${BATCH_MS:-100}
TOPIC=bench-events
GROUP=bench

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
MOCK=${DRIFTLOCK_MOCK_KAFKA:-$SRC_DIR/test/tools/mock_kafka}
[ -x "$MOCK" ] || { echo "$MOCK not found: run \"make tools\"" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat not found" >&2; exit 1; }

PG_BIN=$(dirname "$(${PG_CONFIG:-pg_config} --bindir)/x")
DIR=$(mktemp -d /tmp/driftlock-bench-worker.XXXXXX)
RUN=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$DIR"
	RUN=(runuser -u postgres --)
fi
PORT=$((20000 + RANDOM % 20000))
MOCK_PID=
cleanup() {
	"${RUN[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
	[ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

now() { date +%s.%N; }
psql_q() { "${RUN[@]}" "$PG_BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -d postgres -c "$1"; }

# ---- Kafka: mock cluster and messages
"$MOCK" --topic "$TOPIC" --partitions "$PARTITIONS" --port-file "$DIR/mock.port" \
	</dev/null >"$DIR/mock.out" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$DIR/mock.port" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$DIR/mock.port")

# one file of events per partition; about 1% unusual after the first 1000
perl -e '
	use strict; use warnings; use Digest::MD5 qw(md5_hex);
	my ($events, $parts, $dir) = @ARGV;
	my @fh;
	for my $p (0 .. $parts - 1) { open($fh[$p], ">", "$dir/part$p") or die "$!"; }
	my @svc = qw(checkout search auth inventory payments);
	my @msg = ("request completed", "cache hit for product page", "user session refreshed", "token validated");
	for my $g (1 .. $events) {
		my $p = $g % $parts;
		my $h = md5_hex($g);
		my $line;
		if ($g % 100 == 0 && $g > 1000) {
			$line = sprintf(q({"ts":"2026-11-28T10:%02d:%02dZ","service":"payments","level":"error","msg":"FATAL ledger checksum mismatch on shard %d","trace":"%s"}),
				$g % 60, ($g * 7) % 60, $g % 17, $h);
		} else {
			$line = sprintf(q({"ts":"2026-11-28T10:%02d:%02d.%03dZ","service":"%s","level":"info","msg":"%s","request_id":"%s","latency_ms":%d,"user":"u%d","host":"web-%02d.eu-west-1","status":200}),
				$g % 60, ($g * 7) % 60, $g % 1000, $svc[$g % 5], $msg[int($g / 5) % 4],
				substr($h, 0, 12), $g % 400, $g % 50000, $g % 32);
		}
		print { $fh[$p] } "$line\n";
	}
' "$EVENTS" "$PARTITIONS" "$DIR"
MEAN=$(cat "$DIR"/part* | awk '{ n += length($0) } END { printf "%d", n / NR }')

PRODUCERS=()
for p in $(seq 0 $((PARTITIONS - 1))); do
	kcat -P -b "$BOOTSTRAP" -t "$TOPIC" -p "$p" -H "X-Stream-Id=bench$p" \
		-X compression.codec=zstd -X linger.ms=50 -X batch.num.messages=10000 <"$DIR/part$p" &
	PRODUCERS+=($!)
done
for pid in "${PRODUCERS[@]}"; do wait "$pid"; done

# ---- PostgreSQL with the worker
"${RUN[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'driftlock'
driftlock.kafka_enabled = on
driftlock.kafka_brokers = '$BOOTSTRAP'
driftlock.kafka_properties = 'session.timeout.ms=6000;heartbeat.interval.ms=500'
driftlock.kafka_topic = '$TOPIC'
driftlock.kafka_group_id = '$GROUP'
driftlock.kafka_stream_id_header = 'X-Stream-Id'
driftlock.kafka_workers = $WORKERS
driftlock.kafka_max_in_flight = $MAX_IN_FLIGHT
driftlock.kafka_batch_ms = $BATCH_MS
max_worker_processes = $((WORKERS + 8))
CONF
"${RUN[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
	-o "-p $PORT -k $DIR -c listen_addresses= -c shared_buffers=256MB" start >/dev/null

psql_q "CREATE EXTENSION driftlock;
INSERT INTO driftlock.streams (name) SELECT 'bench' || p FROM generate_series(0, $PARTITIONS - 1) p;"

# The worker needs the extension and a group join first: time from the
# first committed batch to the end.
DONE_SQL="SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'"
DEADLINE=$(( $(date +%s) + 600 ))
START_COUNT=0
while :; do
	START_COUNT=$(psql_q "$DONE_SQL")
	[ "$START_COUNT" -gt 0 ] && break
	[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "the worker consumed nothing in 600 s; server log:" >&2; tail -20 "$DIR/log" >&2; exit 1; }
	sleep 0.02
done
T0=$(now)
# CPU time of the workers (utime + stime, in clock ticks): steadier than the
# wall clock on a shared machine
WORKER_PIDS=$(psql_q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'")
cpu_ticks() { local t=0 p; for p in $WORKER_PIDS; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
C0=$(cpu_ticks)
while :; do
	DONE=$(psql_q "$DONE_SQL")
	[ "$DONE" -ge "$EVENTS" ] && break
	[ "$(date +%s)" -lt "$DEADLINE" ] || { echo "the worker stopped at $DONE of $EVENTS; server log:" >&2; tail -20 "$DIR/log" >&2; exit 1; }
	sleep 0.05
done
T1=$(now)
C1=$(cpu_ticks)
ANOMALIES=$(psql_q "SELECT count(*) FROM driftlock.anomalies")
DEAD=$(psql_q "SELECT count(*) FROM driftlock.dead_letters")

# ---- kcat reading the same messages
K0=$(now)
KCAT_COUNT=$(kcat -C -b "$BOOTSTRAP" -t "$TOPIC" -e -o beginning -q -f '%s\n' | wc -l)
K1=$(now)

awk -v ev="$EVENTS" -v start="$START_COUNT" -v t0="$T0" -v t1="$T1" -v k0="$K0" -v k1="$K1" \
	-v cpu="$(( C1 - C0 ))" -v hz="$(getconf CLK_TCK)" \
	-v kc="$KCAT_COUNT" -v an="$ANOMALIES" -v dl="$DEAD" -v mean="$MEAN" -v parts="$PARTITIONS" \
	-v workers="$WORKERS" 'BEGIN {
	w = (ev - start) / (t1 - t0); k = kc / (k1 - k0);
	printf "messages: %d of %d bytes mean over %d partitions (zstd); %d worker(s)\n", ev, mean, parts, workers
	printf "worker: %d messages in %.2f s = %.0f events/s (%d anomalies, %d dead letters)\n", ev - start, t1 - t0, w, an, dl
	printf "worker CPU: %.2f s = %.1f us per message\n", cpu / hz, 1e6 * cpu / hz / (ev - start)
	printf "kcat -C -e -o beginning: %d messages in %.2f s = %.0f msg/s\n", kc, k1 - k0, k
	printf "worker / kcat: %.2f\n", w / k }'
