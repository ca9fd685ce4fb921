# shellcheck shell=bash disable=SC2034
# test/bench/worker_instance.sh -- sourced by the Kafka worker benchmarks
# (bench_worker.sh, bench_worker_otlp.sh) after setting their settings:
# sources pg_instance.sh, then gives a mock Kafka cluster, a throwaway
# instance whose worker starts disabled, and the timing of that worker
# through a topic.
#
#   mock_start TOPIC PARTITIONS    a fresh mock cluster (test/tools/mock_kafka)
#                                  with the topic; sets BOOTSTRAP
#   stop_mock, stop_pg             stop them (stop_mock also runs on exit)
#   worker_instance_start TOPIC MAX_IN_FLIGHT [conf lines...]
#                                  a fresh instance preloading driftlock, its
#                                  worker off, reading TOPIC from BOOTSTRAP;
#                                  EXTRA_CONF goes last
#   worker_enable                  CHECKPOINT, note START_LSN, worker on
#   worker_wait NAME TOPIC MESSAGES DEADLINE
#                                  wait until the committed offsets reach
#                                  MESSAGES in all; see below
#   cpu_ticks, proc_kb FIELD       the workers' CPU time (clock ticks) and a
#                                  /proc/PID/status field summed (kB)
#   fail_case NAME REASON          fail with the end of the server log
#
# Settings read: GROUP, WORKERS, BATCH_MS, STALL, EXTRA_CONF and
# DRIFTLOCK_MOCK_KAFKA (the mock_kafka binary).

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MOCK=${DRIFTLOCK_MOCK_KAFKA:-$SRC_DIR/test/tools/mock_kafka}
[ -x "$MOCK" ] || { echo "$MOCK not found: run \"make tools\"" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat not found" >&2; exit 1; }

# shellcheck source=test/bench/pg_instance.sh
. "$(dirname "${BASH_SOURCE[0]}")/pg_instance.sh"
MOCK_PID=
BOOTSTRAP=
stop_mock() {
	if [ -n "$MOCK_PID" ]; then
		kill "$MOCK_PID" 2>/dev/null || true
		wait "$MOCK_PID" 2>/dev/null || true
		MOCK_PID=
	fi
}
stop_pg() { "${RUN[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true; }
PG_INSTANCE_CLEANUP+=(stop_mock)

mock_start() {
	local topic=$1 parts=$2
	rm -f "$DIR/mock.port"
	"$MOCK" --topic "$topic" --partitions "$parts" --port-file "$DIR/mock.port" \
		</dev/null >"$DIR/mock.out" 2>&1 &
	MOCK_PID=$!
	for _ in $(seq 100); do [ -s "$DIR/mock.port" ] && break; sleep 0.1; done
	[ -s "$DIR/mock.port" ] || { cat "$DIR/mock.out" >&2; echo "mock_kafka did not start" >&2; exit 1; }
	BOOTSTRAP=$(cat "$DIR/mock.port")
}

worker_instance_start() {
	local topic=$1 in_flight=$2
	shift 2
	stop_pg
	rm -rf "$DIR/data" "$DIR/log"
	# shared_buffers as pg_instance_start sets it, so the reload of
	# worker_enable does not complain that the file asks for another value
	pg_instance_start \
		"shared_preload_libraries = 'driftlock'" \
		"driftlock.kafka_enabled = off" \
		"driftlock.kafka_brokers = '$BOOTSTRAP'" \
		"driftlock.kafka_properties = 'session.timeout.ms=6000;heartbeat.interval.ms=500'" \
		"driftlock.kafka_topic = '$topic'" \
		"driftlock.kafka_group_id = '$GROUP'" \
		"driftlock.kafka_workers = $WORKERS" \
		"driftlock.kafka_max_in_flight = $in_flight" \
		"driftlock.kafka_batch_ms = $BATCH_MS" \
		"max_worker_processes = $((WORKERS + 8))" \
		"shared_buffers = 256MB" \
		"$@" \
		"$EXTRA_CONF"
}

worker_enable() {
	pg_q "CHECKPOINT" >/dev/null
	START_LSN=$(pg_q "SELECT pg_current_wal_lsn()")
	pg_q "ALTER SYSTEM SET driftlock.kafka_enabled = on" >/dev/null
	pg_q "SELECT pg_reload_conf()" >/dev/null
}

# Sum of a /proc/PID/status field (kB) over the worker processes
proc_kb() { local t=0 p v; for p in $WORKER_PIDS; do v=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null); t=$((t + ${v:-0})); done; echo "$t"; }
# CPU time of the workers (utime + stime, in clock ticks)
cpu_ticks() { local t=0 p; for p in $WORKER_PIDS; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }

fail_case() {
	echo "$(basename "$0"): case $1: $2; end of the server log:" >&2
	tail -20 "$DIR/log" >&2 || true
	exit 1
}

# worker_wait NAME TOPIC MESSAGES DEADLINE: from the first committed batch
# (timed on the server's clock, driftlock.kafka_offsets.updated_at) until
# the offsets of TOPIC reach MESSAGES in all; DEADLINE seconds, 0 for none
# (a stall of STALL seconds fails the case either way).  Sets WORKER_PIDS
# (at the first commit, when WORKER_STARTED, if set, is run too) and
#   W_DONE      messages done (the sum of the next offsets)
#   W_START     messages done at the first commit seen, at W_T0
#   W_T0, W_T1  the first and the last commit (epoch seconds)
#   W_CPU       the workers' CPU ticks since the first commit seen
#   W_CPU_FROM  messages done when W_CPU began
#   W_FINISHED  1, or 0 when the deadline passed first
worker_wait() {
	local name=$1 topic=$2 nev=$3 deadline=$4
	local q="SELECT coalesce(sum(next_offset), 0), coalesce(extract(epoch FROM max(updated_at)), 0) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$topic'"
	local row ts last=-1 last_change t_start c0=0
	t_start=$(date +%s)
	last_change=$t_start
	WORKER_PIDS=
	W_DONE=0 W_START=0 W_T0=0 W_T1=0 W_CPU=0 W_CPU_FROM=0 W_FINISHED=1
	while :; do
		row=$(pg_q "$q")
		W_DONE=${row%%|*}
		ts=${row#*|}
		if [ "$W_DONE" -ne "$last" ]; then
			last=$W_DONE
			last_change=$(date +%s)
		fi
		if [ -z "$WORKER_PIDS" ] && [ "$W_DONE" -gt 0 ]; then
			WORKER_PIDS=$(pg_q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'driftlock kafka worker'")
			c0=$(cpu_ticks)
			W_CPU_FROM=$(pg_q "SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$topic'")
			W_START=$W_DONE
			W_T0=$ts
			[ -z "${WORKER_STARTED:-}" ] || "$WORKER_STARTED"
		fi
		[ "$W_DONE" -ge "$nev" ] && break
		if [ $(($(date +%s) - last_change)) -ge "$STALL" ]; then
			fail_case "$name" "the worker made no progress for $STALL s (at $W_DONE of $nev messages)"
		fi
		if [ "$deadline" -gt 0 ] && [ $(($(date +%s) - t_start)) -ge "$deadline" ]; then
			W_FINISHED=0
			break
		fi
		sleep 0.2
	done
	W_T1=$ts
	W_CPU=$(($(cpu_ticks) - c0))
}
