#!/usr/bin/env bash
#
# test/bench/bench_worker_otlp.sh [BATCHES] [PARTITIONS] -- Kafka worker
# throughput on OpenTelemetry logs batches against the same events sent raw
#
# BATCHES (default 1500) export batches from test/tools/otlp_gen, each of
# SERVICES (default 4) services x RECORDS (default 25) log records, so 100
# records a message and 150,000 in all by default; about 1% anomalous (one
# record of each service in every fourth batch after the first ten).  Batch
# i goes to partition i % PARTITIONS (default 8).  Then, on one worker (as
# bench_worker.sh does it: a fresh mock Kafka cluster and a fresh
# throwaway PostgreSQL instance per case, as the postgres user when run as
# root; the extension must be installed):
#
#   otlp_proto  the batches, driftlock.kafka_format = 'otlp_proto', the
#               stream of each record its service.name
#   raw         the same records, one raw message each, the payload the
#               record's text exactly as the worker's decoder renders it
#               (test/tools/otlp_render, linking src/message/otlp_logs.c),
#               the stream named by the header X-Stream-Id
#               (driftlock.kafka_stream_id_header); the records of a batch
#               go to its partition, in their order within each stream
#   otlp_json   the batches in otlp_json (JSON=0 skips it)
#
# so the detectors see the same events in each case, ROUNDS times (default
# 3), in turn and in the reverse order every other round, so that the
# load of a shared machine falls on all of them alike.  Every message is
# zstd-compressed.  The streams (svc-0 ..) are created beforehand with the
# default configuration.  A batch carries 100 records, so the OTLP cases
# run with driftlock.kafka_max_in_flight = MAX_IN_FLIGHT / 100 (default
# 10) against MAX_IN_FLIGHT (default 1000) for raw: the same records per
# transaction either way.  The rate is timed on the server's clock, from
# the first committed batch until the offsets reach the end of every
# partition (worker_instance.sh).  Printed per case, then side by side
# over the rounds: records/s (median and range) and the ratio of the
# medians to raw (and the range of the ratios within a round), the
# worker's CPU time per record (median), the records the detectors scored
# (driftlock_stream_events_total; every case must score them all) and the
# anomalies found (last round).
#
# PERF=FILE records a profile of the worker during the otlp_proto case
# (perf record -e cpu-clock -g into FILE; its rate is then not a figure to
# quote) and prints the top symbols.
#
# Environment: SERVICES, RECORDS, JSON, ROUNDS, MAX_IN_FLIGHT,
# OTLP_MAX_IN_FLIGHT, PERF as above; WORKERS (default 1), BATCH_MS (default 100), STALL
# (default 120), EXTRA_CONF as in bench_worker.sh.
set -euo pipefail

BATCHES=${1:-1500}
PARTITIONS=${2:-8}
SERVICES=${SERVICES:-4}
RECORDS=${RECORDS:-25}
JSON=${JSON:-1}
ROUNDS=${ROUNDS:-3}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-1000}
PER_BATCH=$((SERVICES * RECORDS))
OTLP_MAX_IN_FLIGHT=${OTLP_MAX_IN_FLIGHT:-$(((MAX_IN_FLIGHT + PER_BATCH - 1) / PER_BATCH))}
PERF=${PERF:-}
WORKERS=${WORKERS:-1}
BATCH_MS=${BATCH_MS:-100}
STALL=${STALL:-120}
EXTRA_CONF=${EXTRA_CONF:-}
GROUP=bench
HEADER=X-Stream-Id
TOTAL=$((BATCHES * PER_BATCH))

# shellcheck source=test/bench/worker_instance.sh
. "$(dirname "$0")/worker_instance.sh"
GEN=$SRC_DIR/test/tools/otlp_gen
RENDER=$SRC_DIR/test/tools/otlp_render
for t in "$GEN" "$RENDER"; do
	[ -x "$t" ] || { echo "$t not found: run \"make tools\"" >&2; exit 1; }
done
[ -z "$PERF" ] || command -v perf >/dev/null || { echo "perf not found (package linux-perf)" >&2; exit 1; }
PERF=${PERF:+$(realpath -m "$PERF")}
STREAMS=()
for s in $(seq 0 $((SERVICES - 1))); do STREAMS+=("svc-$s"); done

# ---- the batches: $DIR/proto/P/NNNNNN and $DIR/json/P/NNNNNN, partition P
echo "generating $BATCHES batches of $SERVICES x $RECORDS records ($TOTAL records) over $PARTITIONS partitions"
for p in $(seq 0 $((PARTITIONS - 1))); do mkdir -p "$DIR/proto/$p" "$DIR/json/$p"; done
for i in $(seq 0 $((BATCHES - 1))); do
	args=(-s "$SERVICES" -r "$RECORDS" -S $((i + 1)))
	if [ "$i" -ge 10 ] && [ $((i % 4)) -eq 0 ]; then args+=(-a $(((i / 4) % RECORDS))); fi
	f=$((i % PARTITIONS))/$(printf '%06d' "$i")
	"$GEN" -e proto "${args[@]}" -o "$DIR/proto/$f"
	[ "$JSON" = 0 ] || "$GEN" -e json "${args[@]}" -o "$DIR/json/$f"
done

# ---- the same records raw: $DIR/raw/P.STREAM, one text a line, in order
mkdir -p "$DIR/raw"
for p in $(seq 0 $((PARTITIONS - 1))); do
	"$RENDER" -e proto "$DIR/proto/$p"/* >"$DIR/rendered"
	if [ "$JSON" != 0 ]; then
		"$RENDER" -e json "$DIR/json/$p"/* | cmp -s - "$DIR/rendered" ||
			{ echo "otlp_json batches do not render as their otlp_proto twins" >&2; exit 1; }
	fi
	awk -F'\t' -v out="$DIR/raw/$p." '{ print substr($0, length($1) + 2) > (out $1) }' "$DIR/rendered"
done
[ "$(cat "$DIR/raw"/* | wc -l)" -eq "$TOTAL" ] || { echo "otlp_render did not give $TOTAL records" >&2; exit 1; }
for s in "${STREAMS[@]}"; do
	[ -n "$(ls "$DIR/raw"/*."$s" 2>/dev/null)" ] || { echo "no record of stream $s" >&2; exit 1; }
done
size_of() { find "$1" -type f -exec cat {} + | wc -c; }
echo "otlp_proto $(($(size_of "$DIR/proto") / TOTAL)) B per record; raw $(($(size_of "$DIR/raw") / TOTAL - 1)) B per record (text)" \
	"$([ "$JSON" = 0 ] || echo "; otlp_json $(($(size_of "$DIR/json") / TOTAL)) B per record")"
rm -f "$DIR/rendered"
# the files' writeback is not to fall on the first case
sync

PERF_PID=
perf_start() {
	"$(command -v perf)" record -q -e cpu-clock -g -p "${WORKER_PIDS%% *}" -o "$PERF" >"$DIR/perf.out" 2>&1 &
	PERF_PID=$!
}
perf_stop() {
	if [ -n "$PERF_PID" ]; then
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
		PERF_PID=
	fi
}
PG_INSTANCE_CLEANUP+=(perf_stop)

# Results by case name, a word a round
declare -A R_RATE R_CPU R_EVENTS R_ANOM R_DEAD R_NOTE
CASES=(otlp_proto raw)
[ "$JSON" = 0 ] || CASES+=(otlp_json)

# run_case NAME FORMAT: FORMAT otlp_proto, otlp_json or raw
run_case() {
	local name=$1 format=$2 topic="bench-$1" p s producers=() per_msg nmsg in_flight conf
	local zstd=(-X compression.codec=zstd -X linger.ms=50 -X batch.num.messages=10000)
	if [ "$format" = raw ]; then
		per_msg=1 in_flight=$MAX_IN_FLIGHT conf="driftlock.kafka_stream_id_header = '$HEADER'"
	else
		per_msg=$PER_BATCH in_flight=$OTLP_MAX_IN_FLIGHT conf="driftlock.kafka_format = '$format'"
	fi
	nmsg=$((TOTAL / per_msg))
	echo
	echo "== round $ROUND, $name: $TOTAL records in $nmsg messages over $PARTITIONS partitions (zstd), ${#STREAMS[@]} streams," \
		"driftlock.kafka_max_in_flight = $in_flight, $WORKERS worker(s)"

	# ---- Kafka: a fresh mock cluster and topic; a batch a message (a file
	# a message for kcat), or a record a message with its stream's header
	mock_start "$topic" "$PARTITIONS"
	for p in $(seq 0 $((PARTITIONS - 1))); do
		if [ "$format" = raw ]; then
			for s in "${STREAMS[@]}"; do
				[ -f "$DIR/raw/$p.$s" ] || continue
				kcat -P -b "$BOOTSTRAP" -t "$topic" -p "$p" -H "$HEADER=$s" "${zstd[@]}" <"$DIR/raw/$p.$s" &
				producers+=($!)
			done
		else
			kcat -P -b "$BOOTSTRAP" -t "$topic" -p "$p" "${zstd[@]}" "$DIR/${format#otlp_}/$p"/* &
			producers+=($!)
		fi
	done
	for p in "${producers[@]}"; do wait "$p"; done
	local in_topic
	in_topic=$(kcat -C -b "$BOOTSTRAP" -t "$topic" -e -o beginning -q -f '%o\n' | wc -l)
	[ "$in_topic" -eq "$nmsg" ] || fail_case "$name" "the topic holds $in_topic of $nmsg messages (the mock dropped some?)"

	# ---- PostgreSQL: a fresh instance, the streams, the worker on
	worker_instance_start "$topic" "$in_flight" "$conf"
	pg_q "CREATE EXTENSION driftlock" >/dev/null
	pg_q "INSERT INTO driftlock.streams (name) SELECT 'svc-' || g FROM generate_series(0, $SERVICES - 1) g" >/dev/null
	WORKER_STARTED=
	[ -z "$PERF" ] || [ "$format" != otlp_proto ] || [ "$ROUND" -gt 1 ] || WORKER_STARTED=perf_start
	worker_enable
	worker_wait "$name" "$topic" "$nmsg" 0
	perf_stop
	local fig
	fig=$(pg_q "SELECT (SELECT coalesce(sum(value), 0) FROM driftlock.metrics WHERE metric = 'driftlock_stream_events_total'),
		(SELECT count(*) FROM driftlock.anomalies), (SELECT count(*) FROM driftlock.dead_letters)")
	stop_pg
	stop_mock

	local out events anomalies dead
	IFS='|' read -r events anomalies dead <<<"$fig"
	out=$(awk -v done="$W_DONE" -v start="$W_START" -v t0="$W_T0" -v t1="$W_T1" -v per="$per_msg" \
		-v cpu="$W_CPU" -v cpufrom="$W_CPU_FROM" -v hz="$(getconf CLK_TCK)" -v ev="$events" \
		-v an="$anomalies" -v dl="$dead" 'BEGIN {
		rate = (t1 > t0) ? (done - start) * per / (t1 - t0) : 0
		us = (done > cpufrom) ? 1e6 * cpu / hz / ((done - cpufrom) * per) : 0
		printf "worker: %d records (%d messages) in %.2f s = %.0f records/s; %d records scored, %d anomalies, %d dead letters\n",
			(done - start) * per, done - start, t1 - t0, rate, ev, an, dl
		printf "worker CPU: %.2f s = %.2f us per record\n", cpu / hz, us
		printf "RESULT|%.0f|%.2f\n", rate, us }')
	echo "$out" | grep -v '^RESULT|'
	local r_rate r_cpu
	IFS='|' read -r _ r_rate r_cpu <<<"$(echo "$out" | grep '^RESULT|')"
	R_RATE[$name]+="$r_rate " R_CPU[$name]+="$r_cpu "
	R_EVENTS[$name]=$events R_ANOM[$name]=$anomalies R_DEAD[$name]=$dead
	[ "$events" -eq "$TOTAL" ] || R_NOTE[$name]+="round $ROUND scored $events of $TOTAL records; "
}

for ROUND in $(seq 1 "$ROUNDS"); do
	order=("${CASES[@]}")
	if [ $((ROUND % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#CASES[@]} - 1; i >= 0; i--)); do order+=("${CASES[i]}"); done
	fi
	for c in "${order[@]}"; do run_case "$c" "$c"; done
done
[ -z "$PERF" ] || R_NOTE[otlp_proto]+="round 1 under perf; "

# ---- side by side: medians over the rounds
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "over $ROUNDS round(s):"
printf "%-12s %10s %16s %7s %13s %14s %15s %10s %6s\n" case records/s "(range)" "x raw" "(range)" "cpu us/record" "records scored" anomalies dead
for c in "${CASES[@]}"; do
	awk -v c="$c" -v r="$(median <<<"${R_RATE[$c]}")" -v raw="$(median <<<"${R_RATE[raw]}")" \
		-v rates="${R_RATE[$c]}" -v raws="${R_RATE[raw]}" -v cpu="$(median <<<"${R_CPU[$c]}")" \
		-v ev="${R_EVENTS[$c]}" -v an="${R_ANOM[$c]}" -v dl="${R_DEAD[$c]}" -v note="${R_NOTE[$c]:-}" 'BEGIN {
		n = split(rates, a, " "); split(raws, b, " ")
		lo = hi = a[1]; qlo = qhi = b[1] ? a[1] / b[1] : 0
		for (i = 1; i <= n; i++) {
			if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]
			q = b[i] ? a[i] / b[i] : 0; if (q < qlo) qlo = q; if (q > qhi) qhi = q
		}
		printf "%-12s %10.0f %16s %7.2f %13s %14.2f %15d %10d %6d%s\n", c, r, sprintf("(%d-%d)", lo, hi),
			raw ? r / raw : 0, sprintf("(%.2f-%.2f)", qlo, qhi), cpu, ev, an, dl, note == "" ? "" : "   " note }'
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPU(s)"
if [ -n "$PERF" ]; then
	echo
	echo "perf profile of the worker in the otlp_proto case: $PERF; top symbols (self):"
	perf report -i "$PERF" --stdio --no-children --sort symbol 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 || true
fi
