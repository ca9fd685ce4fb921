#!/usr/bin/env bash
#
# test/bench/bench_worker.sh [EVENTS] [PARTITIONS] -- Kafka worker throughput,
# one stream against many
#
# Runs up to three cases, each on its own mock Kafka cluster
# (test/tools/mock_kafka: run "make tools") with a fresh topic, and its own
# throwaway PostgreSQL instance (as the postgres user when run as root) that
# preloads driftlock with the Kafka worker (the extension must be installed:
# make install):
#
#   1-stream   EVENTS (default 200000) ~200-byte JSON log events, about 1%
#              unusual, zstd-compressed, over PARTITIONS partitions (default
#              8; a mock partition keeps only ~5 MiB), every message with the
#              header X-Stream-Id: bench0, so all of them one stream.  Then
#              "kcat -C -e -o beginning -f '%s\n'" reads the same topic for
#              comparison.
#   N-streams  the same events, each naming its stream in the JSON field
#              "tenant" (driftlock.kafka_stream_id_field), t0 .. t<STREAMS-1>
#              in turn, STREAMS (default 2000) interleaved streams.
#   M-streams  MANY (default 100000; 0 skips it) streams with a few events
#              each: EVENTS_MANY (default 3 x MANY) events over MANY_PARTITIONS
#              (default 16) partitions, stream from the JSON field.  It has
#              its own deadline, MANY_DEADLINE (default 900 s): past it the
#              case reports how far it got instead of failing the script.
#
# Every case creates the extension and its streams with the worker disabled,
# checkpoints, notes the WAL position, then turns driftlock.kafka_enabled on.
# The rate is timed on the server's clock (driftlock.kafka_offsets.updated_at)
# from the first committed batch until the offsets reach the end of every
# partition.  Printed per case, then side by side in a table: events/s and
# its ratio to kcat and to the 1-stream case; the workers' CPU time per
# message (the steadier figure on a shared machine); the workers' VmRSS and
# VmHWM at the end (/proc/PID/status; includes the shared buffers they
# touched); WAL bytes per event (since the start position); heap bytes per
# event (pg_total_relation_size of driftlock.stream_state, anomalies,
# kafka_offsets and dead_letters at the end); driftlock.stream_state bytes on
# disk per stream with a saved state, and the mean stored state
# (pg_column_size).  Figures are taken as the last batch commits: anything
# the worker writes after it is not counted.  The script fails, with the end
# of the server log, when a worker makes no progress for STALL seconds
# (default 120).
#
# Environment: STREAMS, MANY, EVENTS_MANY, MANY_PARTITIONS, MANY_DEADLINE and
# STALL as above; WORKERS (driftlock.kafka_workers, default 1), MAX_IN_FLIGHT
# (driftlock.kafka_max_in_flight, default 1000), BATCH_MS (default 100);
# EXTRA_CONF, lines appended to postgresql.conf in every case, for example
# EXTRA_CONF="driftlock.detector_cache_size = 4096".
set -euo pipefail

EVENTS=${1:-200000}
PARTITIONS=${2:-8}
STREAMS=${STREAMS:-2000}
MANY=${MANY:-100000}
EVENTS_MANY=${EVENTS_MANY:-$((3 * MANY))}
MANY_PARTITIONS=${MANY_PARTITIONS:-16}
MANY_DEADLINE=${MANY_DEADLINE:-900}
STALL=${STALL:-120}
WORKERS=${WORKERS:-1}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-1000}
BATCH_MS=${BATCH_MS:-100}
EXTRA_CONF=${EXTRA_CONF:-}
GROUP=bench
STREAM_FIELD=tenant

# shellcheck source=test/bench/worker_instance.sh
. "$(dirname "$0")/worker_instance.sh"

# Events, one file per partition ($DIR/PREFIX.partN): event g goes to
# partition g % PARTS and names stream t<g % STREAMS> in its "tenant" field;
# about 1% unusual after the first 1000.
gen_events() {
	perl -e '
		use strict; use warnings; use Digest::MD5 qw(md5_hex);
		my ($events, $parts, $streams, $prefix) = @ARGV;
		my @fh;
		for my $p (0 .. $parts - 1) { open($fh[$p], ">", "$prefix.part$p") or die "$!"; }
		my @svc = qw(checkout search auth inventory payments);
		my @msg = ("request completed", "cache hit for product page", "user session refreshed", "token validated");
		for my $g (1 .. $events) {
			my $p = $g % $parts;
			my $t = $g % $streams;
			my $h = md5_hex($g);
			my $line;
			if ($g % 100 == 0 && $g > 1000) {
				$line = sprintf(q({"ts":"2026-11-28T10:%02d:%02dZ","tenant":"t%d","service":"payments","level":"error","msg":"FATAL ledger checksum mismatch on shard %d","trace":"%s"}),
					$g % 60, ($g * 7) % 60, $t, $g % 17, $h);
			} else {
				$line = sprintf(q({"ts":"2026-11-28T10:%02d:%02d.%03dZ","tenant":"t%d","service":"%s","level":"info","msg":"%s","request_id":"%s","latency_ms":%d,"user":"u%d","host":"web-%02d.eu-west-1","status":200}),
					$g % 60, ($g * 7) % 60, $g % 1000, $t, $svc[$g % 5], $msg[int($g / 5) % 4],
					substr($h, 0, 12), $g % 400, $g % 50000, $g % 32);
			}
			print { $fh[$p] } "$line\n";
		}
	' "$@"
}
mean_bytes() { cat "$1".part* | awk '{ n += length($0) } END { printf "%d", n / NR }'; }

# Results by case name
declare -A R_RATE R_CPU R_RSS R_HWM R_WAL R_HEAP R_STATE R_NOTE
CASES=()
KCAT_RATE=

# run_case NAME PREFIX EVENTS PARTITIONS header|field STREAMS DEADLINE KCAT
#   PREFIX: the event files; header: every message X-Stream-Id: bench0,
#   field: the stream from the JSON field; STREAMS: streams to create;
#   DEADLINE: seconds, 0 for none (a stall fails either way); KCAT: 1 to time
#   kcat -C on the topic too.
run_case() {
	local name=$1 prefix=$2 nev=$3 parts=$4 mode=$5 nstreams=$6 deadline=$7 kcat=$8
	local topic="bench-$name" p stream_conf producers=() mean
	mean=$(mean_bytes "$prefix")
	echo "== $name: $nev events of $mean bytes mean over $parts partitions (zstd), $nstreams stream(s), $WORKERS worker(s)"

	# ---- Kafka: a fresh mock cluster and topic
	mock_start "$topic" "$parts"
	for p in $(seq 0 $((parts - 1))); do
		if [ "$mode" = header ]; then
			kcat -P -b "$BOOTSTRAP" -t "$topic" -p "$p" -H "X-Stream-Id=bench0" \
				-X compression.codec=zstd -X linger.ms=50 -X batch.num.messages=10000 <"$prefix.part$p" &
		else
			kcat -P -b "$BOOTSTRAP" -t "$topic" -p "$p" \
				-X compression.codec=zstd -X linger.ms=50 -X batch.num.messages=10000 <"$prefix.part$p" &
		fi
		producers+=($!)
	done
	for p in "${producers[@]}"; do wait "$p"; done

	# ---- PostgreSQL: a fresh instance, the worker disabled until the start
	if [ "$mode" = header ]; then
		stream_conf="driftlock.kafka_stream_id_header = 'X-Stream-Id'"
	else
		stream_conf="driftlock.kafka_stream_id_field = '$STREAM_FIELD'"
	fi
	worker_instance_start "$topic" "$MAX_IN_FLIGHT" "$stream_conf"

	pg_q "CREATE EXTENSION driftlock" >/dev/null
	if [ "$mode" = header ]; then
		pg_q "INSERT INTO driftlock.streams (name) VALUES ('bench0')" >/dev/null
	else
		pg_q "INSERT INTO driftlock.streams (name) SELECT 't' || g FROM generate_series(0, $nstreams - 1) g" >/dev/null
	fi
	worker_enable

	# ---- wait: from the first committed batch to the end
	worker_wait "$name" "$topic" "$nev" "$deadline"
	local rss hwm anon
	rss=$(proc_kb VmRSS)
	hwm=$(proc_kb VmHWM)
	anon=$(proc_kb RssAnon)
	local fig
	fig=$(pg_q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$START_LSN'),
		pg_total_relation_size('driftlock.stream_state') + pg_total_relation_size('driftlock.anomalies')
		  + pg_total_relation_size('driftlock.kafka_offsets') + pg_total_relation_size('driftlock.dead_letters'),
		pg_total_relation_size('driftlock.stream_state'),
		(SELECT count(*) FROM driftlock.stream_state),
		(SELECT coalesce(round(avg(pg_column_size(state))), 0) FROM driftlock.stream_state),
		(SELECT count(*) FROM driftlock.anomalies),
		(SELECT count(*) FROM driftlock.dead_letters),
		current_setting('driftlock.detector_cache_size', true),
		(SELECT coalesce(sum(value), 0) FROM driftlock.metrics WHERE metric = 'driftlock_detector_cache_bytes'),
		(SELECT coalesce(sum(value), 0) FROM driftlock.metrics WHERE metric = 'driftlock_detector_cache_evictions_total'),
		(SELECT coalesce(sum(value), 0) FROM driftlock.metrics WHERE metric = 'driftlock_checkpoints_total')")
	local cache_mem
	cache_mem=$(pg_q "SHOW driftlock.detector_cache_memory" 2>/dev/null) || cache_mem="n/a"
	stop_pg

	# ---- kcat reading the same messages
	local kc=0 k0 k1
	if [ "$kcat" = 1 ]; then
		k0=$(date +%s.%N)
		kc=$(kcat -C -b "$BOOTSTRAP" -t "$topic" -e -o beginning -q -f '%s\n' | wc -l)
		k1=$(date +%s.%N)
		KCAT_RATE=$(awk -v n="$kc" -v a="$k0" -v b="$k1" 'BEGIN { printf "%.0f", n / (b - a) }')
		echo "kcat -C -e -o beginning: $kc messages in $(awk -v a="$k0" -v b="$k1" 'BEGIN { printf "%.2f", b - a }') s = $KCAT_RATE msg/s"
		[ "$kc" -eq "$nev" ] || echo "warning: kcat read $kc of $nev messages (the mock dropped some?)" >&2
	fi
	stop_mock

	IFS='|' read -r wal heap state_size nstate colsize anomalies dead cache_size cache_bytes evictions checkpoints <<<"$fig"
	local out
	out=$(awk -v name="$name" -v nev="$nev" -v done="$W_DONE" -v start="$W_START" -v t0="$W_T0" -v t1="$W_T1" \
		-v cpu="$W_CPU" -v cpufrom="$W_CPU_FROM" -v hz="$(getconf CLK_TCK)" \
		-v rss="$rss" -v hwm="$hwm" -v anon="$anon" -v wal="$wal" -v heap="$heap" \
		-v ss="$state_size" -v ns="$nstate" -v cs="$colsize" -v an="$anomalies" -v dl="$dead" \
		-v fin="$W_FINISHED" -v dead_s="$deadline" -v csize="$cache_size" -v cmem="$cache_mem" \
		-v cbytes="$cache_bytes" -v evict="$evictions" -v ckpt="$checkpoints" 'BEGIN {
		d = done > 0 ? done : 1
		rate = (t1 > t0) ? (done - start) / (t1 - t0) : 0
		us = (done > cpufrom) ? 1e6 * cpu / hz / (done - cpufrom) : 0
		if (fin)
			printf "worker: %d messages in %.2f s = %.0f events/s (%d anomalies, %d dead letters)\n", done - start, t1 - t0, rate, an, dl
		else
			printf "worker: did not finish in %d s (done %d of %d; %.0f events/s so far; %d anomalies, %d dead letters)\n", dead_s, done, nev, rate, an, dl
		printf "worker CPU: %.2f s = %.1f us per message\n", cpu / hz, us
		printf "worker memory: VmRSS %.1f MiB, VmHWM %.1f MiB, RssAnon %.1f MiB (driftlock.detector_cache_size %s, driftlock.detector_cache_memory %s)\n", rss / 1024, hwm / 1024, anon / 1024, csize == "" ? "n/a" : csize, cmem
		printf "detector cache: %.1f MiB in use, %d evictions; %d checkpoints\n", cbytes / 1048576, evict, ckpt
		printf "written per event: WAL %.0f B, heap %.0f B; driftlock.stream_state: %d streams with state, %.0f B on disk per stream, state %d B mean\n", wal / d, heap / d, ns, ns ? ss / ns : 0, cs
		printf "RESULT|%.0f|%.1f|%.1f|%.1f|%.0f|%.0f|%.0f|%s\n", rate, us, rss / 1024, hwm / 1024, wal / d, heap / d, ns ? ss / ns : 0,
			fin ? "" : sprintf("did not finish in %d s (done %d of %d)", dead_s, done, nev) }')
	echo "$out" | grep -v '^RESULT|'
	local r_rate r_cpu r_rss r_hwm r_wal r_heap r_state r_note
	IFS='|' read -r _ r_rate r_cpu r_rss r_hwm r_wal r_heap r_state r_note <<<"$(echo "$out" | grep '^RESULT|')"
	R_RATE[$name]=$r_rate R_CPU[$name]=$r_cpu R_RSS[$name]=$r_rss R_HWM[$name]=$r_hwm
	R_WAL[$name]=$r_wal R_HEAP[$name]=$r_heap R_STATE[$name]=$r_state R_NOTE[$name]=$r_note
	CASES+=("$name")
}

gen_events "$EVENTS" "$PARTITIONS" "$STREAMS" "$DIR/ev"
run_case 1-stream "$DIR/ev" "$EVENTS" "$PARTITIONS" header 1 0 1
run_case "$STREAMS-streams" "$DIR/ev" "$EVENTS" "$PARTITIONS" field "$STREAMS" 0 0
rm -f "$DIR"/ev.part*
if [ "$MANY" -gt 0 ]; then
	gen_events "$EVENTS_MANY" "$MANY_PARTITIONS" "$MANY" "$DIR/many"
	MANY_NAME="$MANY-streams"
	[ "$MANY" -ne "$STREAMS" ] || MANY_NAME="$MANY-streams-few"
	run_case "$MANY_NAME" "$DIR/many" "$EVENTS_MANY" "$MANY_PARTITIONS" field "$MANY" "$MANY_DEADLINE" 0
fi

# ---- side by side
echo
printf "%-16s %9s %8s %12s %12s %16s %13s %14s %15s\n" case events/s "x kcat" "x 1-stream" "cpu us/msg" "RSS/HWM MiB" "WAL B/event" "heap B/event" "state B/stream"
printf "%-16s %9s %8s %12s %12s %16s %13s %14s %15s\n" "kcat -C" "$KCAT_RATE" 1.00 - - - - - -
for c in "${CASES[@]}"; do
	awk -v c="$c" -v r="${R_RATE[$c]}" -v k="$KCAT_RATE" -v one="${R_RATE[1-stream]}" -v cpu="${R_CPU[$c]}" \
		-v rss="${R_RSS[$c]}" -v hwm="${R_HWM[$c]}" -v wal="${R_WAL[$c]}" -v heap="${R_HEAP[$c]}" \
		-v st="${R_STATE[$c]}" -v note="${R_NOTE[$c]}" 'BEGIN {
		printf "%-16s %9s %8.2f %12.2f %12.1f %16s %13d %14d %15d%s\n", c, note == "" ? r : r "*", k ? r / k : 0,
			one ? r / one : 0, cpu, sprintf("%.0f/%.0f", rss, hwm), wal, heap, st, note == "" ? "" : "   * " note }'
done
