#!/usr/bin/env bash
#
# test/bench/soak.sh -- the Kafka worker for a long run (default 30 minutes)
# under a mix of streams, with broker outages and worker restarts: does its
# memory stay flat, does its lag come back after each disruption, and is
# every message accounted for exactly once?  Not part of the test command.
#
# Needs: the extension installed (make install) for the PostgreSQL of
# pg_config (PG_CONFIG picks another), the test tools (make tools: mock_kafka,
# demo_producer), kcat, perl; gnuplot (Debian: gnuplot-nox) for the plot,
# which is skipped without it.  As root, PostgreSQL runs as the postgres
# user (test/bench/pg_instance.sh), as in bench_worker.sh.
#
# What runs: a throwaway PostgreSQL instance preloading driftlock, a mock
# Kafka cluster (test/tools/mock_kafka) with one topic of PARTITIONS
# partitions (default 4), and two producers:
#
#   - test/tools/demo_producer in rounds of DEMO_EVENTS (3000) events at
#     DEMO_RATE (100) events/s, a new seed each round: four services
#     (checkout steady; payments, auth and search with injected incidents),
#     stream in the header X-Stream-Id, keyed by stream, plus a few dead
#     letters per round (no stream header, not JSON, unknown stream).  It
#     rides out the outages (librdkafka queues its messages, up to 30 s).
#   - TENANTS (20) streams t0, t1, ... at TENANT_RATE (200) messages/s in
#     all, produced by kcat once a second, keyed and named by the JSON field
#     "tenant": the even ones steady, the odd ones with one unusual event in
#     150 after their first 200.  kcat gives up when the brokers are down,
#     so these pause during outages.
#
# Disruptions, in seconds since the worker was enabled:
#
#   OUTAGES_AT   outages of OUTAGE_SECONDS (20): all brokers down, then up
#                (the mock's SIGUSR1/SIGUSR2, as 015_worker_broker_outage.pl
#                does with "down"/"up").  Default: at OUTAGE_FIRST (120) s,
#                then every OUTAGE_EVERY (300) seconds, so that each worker
#                process meets an outage and its backlog within its memory
#                warm-up (see below): the first backlog sets librdkafka's and
#                malloc's high-water marks, which is no growth.
#   RESTARTS_AT  worker restarts, alternately pg_terminate_backend() (the
#                postmaster starts the worker again after
#                driftlock.kafka_restart_interval) and kill -9 (a crash:
#                the postmaster restarts every backend, the worker replays
#                from its checkpoint).  Default: half-way between two
#                outages, every RESTART_EVERY (600) seconds from the one
#                after the second outage: 570, 1170.
#
# Nothing is scheduled in the last minute.  After SOAK_MINUTES the producers
# stop and the worker drains (at most DRAIN_TIMEOUT, 300 s).
#
# Every SAMPLE_EVERY (10) seconds a line goes to OUT_DIR/soak.csv (OUT_DIR
# default /tmp/driftlock-soak-<date>):
#
#   elapsed_s, time, phase (run|drain), worker_pid (pg_stat_activity,
#   application_name 'driftlock kafka worker 0'), rss_anon_kb (RssAnon of
#   /proc/PID/status: the worker's own memory, without the shared buffers it
#   touched), produced (the sum of the partitions' high watermarks, from
#   kcat -Q; the last value during outages), processed (the sum of
#   driftlock.kafka_offsets.next_offset), lag (produced - processed; empty
#   while the brokers are down), the
#   pg_total_relation_size of driftlock.anomalies, dead_letters,
#   stream_state and kafka_offsets, brokers (up|down), events (what happened
#   since the last line: outage_start, outage_end, restart_term,
#   restart_kill).
#
# At the end: OUT_DIR/soak.png (worker memory, lag, messages, table sizes
# against time, outages shaded, restarts marked), the server log, and the
# verdict on three criteria; the script exits 1 when one fails.
#
#   memory   RssAnon grows by at most RSS_MAX_GROWTH_PCT (5) percent after
#            the warm-up.  A restart starts a new process with a fresh heap,
#            so comparing the first minutes of the run with its last would
#            compare two processes; instead each worker process is judged
#            over its own life: the median of its samples in the minute
#            after its first RSS_WARMUP_S (300) seconds against the median of
#            its last RSS_WINDOW_S (60) seconds of the run phase.  A process
#            that lived less than the warm-up plus two windows is not judged
#            (with the defaults, every process is: they live 570, 600 and
#            630 s).  Medians of six samples ride over a sample taken
#            while a backlog was in flight after an outage.
#   lag      after every outage and restart, the lag comes back to at most
#            LAG_OK messages (default two seconds of production) before the
#            next disruption (or the end of the run); the maximum is printed,
#            and the worker must drain to 0 at the end.
#   nothing lost, exactly once
#            once drained: next_offset of every partition equals its high
#            watermark (everything produced was consumed, nothing skipped);
#            no anomaly or dead letter is duplicated, appears as both or lies
#            beyond its partition's next_offset; and the detectors counted
#            each message once: the sum of driftlock.stream_state.events plus
#            the dead letters equals the messages produced.
#
# A short check of the script itself, about 5 minutes with the drain:
# outages at 1 and 2 minutes, restarts at 1:30 and 2:30; no worker process
# lives past the warm-up, so memory is not judged (in a run this short the
# worker's RssAnon is still rising: its detectors are filling their
# history for the first two or three minutes):
#
#   SOAK_MINUTES=4 OUTAGE_EVERY=60 OUTAGE_SECONDS=10 RESTART_EVERY=60 test/bench/soak.sh
set -euo pipefail

SOAK_MINUTES=${SOAK_MINUTES:-30}
PARTITIONS=${PARTITIONS:-4}
TENANTS=${TENANTS:-20}
TENANT_RATE=${TENANT_RATE:-200}
DEMO_RATE=${DEMO_RATE:-100}
DEMO_EVENTS=${DEMO_EVENTS:-3000}
OUTAGE_FIRST=${OUTAGE_FIRST:-120}
OUTAGE_EVERY=${OUTAGE_EVERY:-300}
OUTAGE_SECONDS=${OUTAGE_SECONDS:-20}
RESTART_EVERY=${RESTART_EVERY:-600}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
RSS_WARMUP_S=${RSS_WARMUP_S:-300}
RSS_WINDOW_S=${RSS_WINDOW_S:-60}
RSS_MAX_GROWTH_PCT=${RSS_MAX_GROWTH_PCT:-5}
LAG_OK=${LAG_OK:-$((2 * (TENANT_RATE + DEMO_RATE)))}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
OUT_DIR=${OUT_DIR:-/tmp/driftlock-soak-$(date +%Y%m%d-%H%M%S)}
TOPIC=soak
GROUP=soak
DURATION=$((SOAK_MINUTES * 60))

# the disruptions: none in the last minute
if [ -z "${OUTAGES_AT+x}" ]; then
	OUTAGES_AT=
	for ((t = OUTAGE_FIRST; t + OUTAGE_SECONDS <= DURATION - 60; t += OUTAGE_EVERY)); do
		OUTAGES_AT+="$t "
	done
fi
if [ -z "${RESTARTS_AT+x}" ]; then
	RESTARTS_AT=
	for ((t = OUTAGE_FIRST + OUTAGE_EVERY + OUTAGE_EVERY / 2; t <= DURATION - 60; t += RESTART_EVERY)); do
		RESTARTS_AT+="$t "
	done
fi
read -r -a OUTAGES <<<"$OUTAGES_AT"
read -r -a RESTARTS <<<"$RESTARTS_AT"

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
MOCK=${DRIFTLOCK_MOCK_KAFKA:-$SRC_DIR/test/tools/mock_kafka}
DEMO=$SRC_DIR/test/tools/demo_producer
for tool in "$MOCK" "$DEMO"; do
	[ -x "$tool" ] || { echo "$tool not found: run \"make tools\"" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "kcat not found" >&2; exit 1; }
mkdir -p "$OUT_DIR"
CSV=$OUT_DIR/soak.csv

# shellcheck source=test/bench/pg_instance.sh
. "$(dirname "$0")/pg_instance.sh"
[ -f "$("${PG_CONFIG:-pg_config}" --pkglibdir)/driftlock.so" ] ||
	{ echo "driftlock is not installed for $("${PG_CONFIG:-pg_config}" --version): make install" >&2; exit 1; }

MOCK_PID=
DEMO_LOOP_PID=
stop_producers() {
	touch "$DIR/stop"
	if [ -n "$DEMO_LOOP_PID" ]; then
		if [ -s "$DIR/demo.pid" ]; then kill -TERM "$(cat "$DIR/demo.pid")" 2>/dev/null || true; fi
		wait "$DEMO_LOOP_PID" 2>/dev/null || true
		DEMO_LOOP_PID=
	fi
}
stop_mock() {
	if [ -n "$MOCK_PID" ]; then
		kill "$MOCK_PID" 2>/dev/null || true
		wait "$MOCK_PID" 2>/dev/null || true
		MOCK_PID=
	fi
}
save_log() { if [ -f "$DIR/log" ]; then cp "$DIR/log" "$OUT_DIR/server.log"; fi; }
PG_INSTANCE_CLEANUP+=(stop_producers stop_mock save_log)

say() { echo "[$(date +%H:%M:%S)] $*"; }

# ---- Kafka
"$MOCK" --topic "$TOPIC" --partitions "$PARTITIONS" --port-file "$DIR/mock.port" \
	</dev/null >"$DIR/mock.out" 2>&1 &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$DIR/mock.port" ] && break; sleep 0.1; done
[ -s "$DIR/mock.port" ] || { cat "$DIR/mock.out" >&2; echo "mock_kafka did not start" >&2; exit 1; }
BOOTSTRAP=$(cat "$DIR/mock.port")

# Sum of the partitions' high watermarks, one "p offset" line each in
# $DIR/watermarks; fails when the brokers do not answer
WATERMARK_ARGS=()
for ((p = 0; p < PARTITIONS; p++)); do WATERMARK_ARGS+=(-t "$TOPIC:$p:-1"); done
watermarks() {
	local out
	out=$(timeout 10 kcat -Q -b "$BOOTSTRAP" "${WATERMARK_ARGS[@]}" 2>/dev/null) || return 1
	echo "$out" | awk '$3 == "offset" { gsub(/[][]/, "", $2); print $2, $4 }' | sort -n >"$DIR/watermarks"
	[ "$(wc -l <"$DIR/watermarks")" -eq "$PARTITIONS" ] || return 1
	awk '{ s += $2 } END { print s }' "$DIR/watermarks"
}

# ---- PostgreSQL, the worker disabled until the streams exist
pg_instance_start \
	"shared_preload_libraries = 'driftlock'" \
	"driftlock.kafka_enabled = off" \
	"driftlock.kafka_brokers = '$BOOTSTRAP'" \
	"driftlock.kafka_properties = 'session.timeout.ms=6000;heartbeat.interval.ms=500'" \
	"driftlock.kafka_topic = '$TOPIC'" \
	"driftlock.kafka_group_id = '$GROUP'" \
	"driftlock.kafka_stream_id_header = 'X-Stream-Id'" \
	"driftlock.kafka_stream_id_field = 'tenant'" \
	"shared_buffers = 256MB"
pg_q "CREATE EXTENSION driftlock" >/dev/null
pg_q "INSERT INTO driftlock.streams (name) VALUES ('checkout'), ('payments'), ('search'), ('auth')" >/dev/null
pg_q "INSERT INTO driftlock.streams (name) SELECT 't' || g FROM generate_series(0, $TENANTS - 1) g" >/dev/null
pg_q "ALTER SYSTEM SET driftlock.kafka_enabled = on" >/dev/null
pg_q "SELECT pg_reload_conf()" >/dev/null
T0=$(date +%s)
say "soak of $SOAK_MINUTES min: PostgreSQL $("${PG_CONFIG:-pg_config}" --version | awk '{print $2}'), $PARTITIONS partitions, $TENANTS tenant streams at $TENANT_RATE/s + demo_producer at $DEMO_RATE/s; outages (${OUTAGE_SECONDS} s) at ${OUTAGES_AT:-none} s; restarts at ${RESTARTS_AT:-none} s; results in $OUT_DIR"

# ---- producers
demo_loop() {
	local round=1
	while [ ! -e "$DIR/stop" ]; do
		"$DEMO" --brokers "$BOOTSTRAP" --topic "$TOPIC" --events "$DEMO_EVENTS" --rate "$DEMO_RATE" \
			--seed "$round" --status-file "$DIR/demo.status" >/dev/null 2>>"$DIR/demo.err" &
		echo $! >"$DIR/demo.pid"
		wait $! || true
		awk '$1 == "delivered" { print $2 }' "$DIR/demo.status" >>"$DIR/demo.delivered" 2>/dev/null || true
		round=$((round + 1))
	done
}
demo_loop &
DEMO_LOOP_PID=$!

# Tenant messages g .. g+n-1 as "key<TAB>json": tenant g % TENANTS; the odd
# tenants have one unusual event in 150 after their first 200
TENANT_G=0
TENANT_DELIVERED=0
produce_tenants() {
	local n=$1
	[ "$n" -gt 0 ] || return 0
	if perl -e '
		use strict; use warnings;
		my ($from, $n, $tenants) = @ARGV;
		my @svc = qw(checkout search auth inventory payments);
		my @msg = ("request completed", "cache hit for product page", "user session refreshed", "token validated");
		for my $g ($from .. $from + $n - 1) {
			my $t = $g % $tenants;
			my $i = int($g / $tenants);
			if ($t % 2 == 1 && $i > 200 && $i % 150 == 149) {
				printf "t%d\t{\"tenant\":\"t%d\",\"level\":\"error\",\"msg\":\"FATAL ledger checksum mismatch on shard %d\",\"trace\":\"%08x%08x\"}\n",
					$t, $t, $i % 17, ($g * 2654435761) % 4294967296, ($i * 40503) % 4294967296;
			} else {
				printf "t%d\t{\"ts\":\"2026-11-28T10:%02d:%02d.%03dZ\",\"tenant\":\"t%d\",\"service\":\"%s\",\"level\":\"info\",\"msg\":\"%s\",\"request_id\":\"%012x\",\"latency_ms\":%d,\"status\":200}\n",
					$t, $i % 60, ($i * 7) % 60, $g % 1000, $t, $svc[$i % 5], $msg[int($i / 5) % 4], ($g * 2654435761) % 281474976710656, ($g * 37) % 400;
			}
		}' "$TENANT_G" "$n" "$TENANTS" |
		kcat -P -b "$BOOTSTRAP" -t "$TOPIC" -K $'\t' -X compression.codec=zstd -X linger.ms=20 2>>"$DIR/kcat.err"; then
		TENANT_DELIVERED=$((TENANT_DELIVERED + n))
	fi
	TENANT_G=$((TENANT_G + n))
}

# ---- sampling
echo "elapsed_s,time,phase,worker_pid,rss_anon_kb,produced,processed,lag,anomalies_bytes,dead_letters_bytes,stream_state_bytes,kafka_offsets_bytes,brokers,events" >"$CSV"
PRODUCED=0
BROKERS=up
PENDING_EVENTS=
SAMPLE_SQL="SELECT (SELECT pid FROM pg_stat_activity WHERE application_name = 'driftlock kafka worker 0'),
	(SELECT coalesce(sum(next_offset), 0) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'),
	pg_total_relation_size('driftlock.anomalies'), pg_total_relation_size('driftlock.dead_letters'),
	pg_total_relation_size('driftlock.stream_state'), pg_total_relation_size('driftlock.kafka_offsets')"
worker_pid() { pg_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'driftlock kafka worker 0'" 2>/dev/null || true; }
sample() {
	local phase=$1 row='' pid='' processed='' a='' d='' s='' k='' rss='' lag='' w
	# the database may be restarting (kill -9): the line then has gaps
	row=$(pg_q "$SAMPLE_SQL" 2>/dev/null) || row=
	if [ -n "$row" ]; then
		IFS='|' read -r pid processed a d s k <<<"$row"
	fi
	if [ "$BROKERS" = up ] && w=$(watermarks); then
		PRODUCED=$w
	fi
	[ -n "$pid" ] && rss=$(awk '$1 == "RssAnon:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
	# while the brokers are down the lag is unknown: nothing says what
	# the producers would have added
	[ -n "$processed" ] && [ "$BROKERS" = up ] && lag=$((PRODUCED - processed))
	echo "$(($(date +%s) - T0)),$(date -u +%Y-%m-%dT%H:%M:%SZ),$phase,$pid,$rss,$PRODUCED,$processed,$lag,$a,$d,$s,$k,$BROKERS,${PENDING_EVENTS% }" >>"$CSV"
	PENDING_EVENTS=
}

outage_start() {
	kill -USR1 "$MOCK_PID"
	BROKERS=down
	PENDING_EVENTS+="outage_start "
	say "brokers down"
}
outage_end() {
	kill -USR2 "$MOCK_PID"
	BROKERS=up
	PENDING_EVENTS+="outage_end "
	say "brokers up"
}
RESTART_COUNT=0
restart_worker() {
	local pid
	pid=$(worker_pid)
	if [ -z "$pid" ]; then
		say "no worker to restart (it is starting): skipped"
		return
	fi
	RESTART_COUNT=$((RESTART_COUNT + 1))
	if [ $((RESTART_COUNT % 2)) -eq 1 ]; then
		pg_q "SELECT pg_terminate_backend($pid)" >/dev/null || true
		PENDING_EVENTS+="restart_term "
		say "worker $pid terminated (pg_terminate_backend)"
	else
		kill -9 "$pid" 2>/dev/null || true
		PENDING_EVENTS+="restart_kill "
		say "worker $pid killed (kill -9: the server restarts its backends)"
	fi
}

# ---- the run: one turn a second
next_sample=0
oi=0
ri=0
outage_until=-1
last_ms=$(date +%s%3N)
tenant_due=0
while :; do
	now=$(date +%s)
	el=$((now - T0))
	[ "$el" -lt "$DURATION" ] || break
	if [ "$outage_until" -ge 0 ] && [ "$el" -ge "$outage_until" ]; then
		outage_end
		outage_until=-1
	fi
	if [ "$oi" -lt "${#OUTAGES[@]}" ] && [ "$el" -ge "${OUTAGES[$oi]}" ]; then
		outage_start
		outage_until=$((OUTAGES[oi] + OUTAGE_SECONDS))
		oi=$((oi + 1))
	fi
	if [ "$ri" -lt "${#RESTARTS[@]}" ] && [ "$el" -ge "${RESTARTS[$ri]}" ]; then
		restart_worker
		ri=$((ri + 1))
	fi
	# the tenants' share of the last turn (none while the brokers are down)
	ms=$(date +%s%3N)
	tenant_due=$((tenant_due + TENANT_RATE * (ms - last_ms)))
	last_ms=$ms
	if [ "$BROKERS" = up ]; then
		produce_tenants $((tenant_due / 1000))
	fi
	tenant_due=$((tenant_due % 1000))
	if [ "$el" -ge "$next_sample" ]; then
		sample run
		next_sample=$((next_sample + SAMPLE_EVERY))
	fi
	# until the next whole second
	ms=$((10#$(date +%3N)))
	sleep "$(printf '0.%03d' $((999 - ms)))"
done
[ "$BROKERS" = up ] || outage_end

# ---- drain
stop_producers
say "producers stopped; draining"
drain_start=$(date +%s)
drained=0
while [ $(($(date +%s) - drain_start)) -lt "$DRAIN_TIMEOUT" ]; do
	sleep "$SAMPLE_EVERY"
	sample drain
	if [ "$(tail -1 "$CSV" | cut -d, -f8)" = 0 ]; then
		drained=1
		break
	fi
done
# the detectors' counts are saved at checkpoints: the worker checkpoints
# once caught up, and when idle after driftlock.checkpoint_interval (10 s)
sleep 12

# ---- the verdict
FINAL=$(pg_q "SELECT
	(SELECT coalesce(sum(events), 0) FROM driftlock.stream_state),
	(SELECT count(*) FROM driftlock.dead_letters),
	(SELECT count(*) FROM driftlock.anomalies),
	(SELECT count(*) FROM (SELECT FROM driftlock.anomalies GROUP BY kafka_topic, kafka_partition, kafka_offset HAVING count(*) > 1) x),
	(SELECT count(*) FROM (SELECT FROM driftlock.dead_letters GROUP BY kafka_topic, kafka_partition, kafka_offset HAVING count(*) > 1) x),
	(SELECT count(*) FROM driftlock.anomalies a JOIN driftlock.dead_letters d
	   ON (a.kafka_topic, a.kafka_partition, a.kafka_offset) = (d.kafka_topic, d.kafka_partition, d.kafka_offset)),
	(SELECT count(*) FROM (SELECT kafka_topic, kafka_partition, kafka_offset FROM driftlock.anomalies
	   UNION ALL SELECT kafka_topic, kafka_partition, kafka_offset FROM driftlock.dead_letters) r
	   LEFT JOIN driftlock.kafka_offsets o ON o.group_id = '$GROUP' AND o.topic = r.kafka_topic AND o.partition = r.kafka_partition
	   WHERE o.next_offset IS NULL OR r.kafka_offset >= o.next_offset),
	(SELECT string_agg(partition || ' ' || next_offset, ',' ORDER BY partition) FROM driftlock.kafka_offsets
	   WHERE group_id = '$GROUP' AND topic = '$TOPIC'),
	(SELECT string_agg(reason || ' ' || n, ', ' ORDER BY reason) FROM
	   (SELECT reason, count(*) n FROM driftlock.dead_letters GROUP BY 1) r)")
watermarks >/dev/null || { echo "soak.sh: cannot read the high watermarks at the end" >&2; exit 1; }
DEMO_DELIVERED=$(awk '{ s += $1 } END { print s + 0 }' "$DIR/demo.delivered" 2>/dev/null || echo 0)
stop_mock
save_log

# ---- the plot
PNG=$OUT_DIR/soak.png
if command -v gnuplot >/dev/null; then
	{
		echo "set terminal pngcairo size 1400,1000 font ',10'"
		echo "set output '$PNG'"
		echo "set datafile separator ','"
		echo "set key top left"
		echo "set grid"
		echo "set xlabel 'minutes'"
		echo "set multiplot layout 2,2 title 'driftlock soak: $SOAK_MINUTES min, outages shaded, restarts dashed'"
		for o in "${OUTAGES[@]}"; do
			echo "set object rect from $o/60.0, graph 0 to ($o + $OUTAGE_SECONDS)/60.0, graph 1 fc rgb '#dddddd' fs solid noborder behind"
		done
		for r in "${RESTARTS[@]}"; do
			echo "set arrow from $r/60.0, graph 0 to $r/60.0, graph 1 nohead lc rgb 'red' dt 2"
		done
		echo "set title 'worker RssAnon (MiB)'"
		echo "plot '$CSV' skip 1 using (\$1/60.0):(\$5/1024) with linespoints pt 7 ps 0.4 title 'RssAnon'"
		echo "set title 'consumer lag (messages)'"
		echo "plot '$CSV' skip 1 using (\$1/60.0):8 with lines lw 2 title 'produced - processed', $LAG_OK with lines dt 3 lc rgb 'black' title 'LAG\\_OK'"
		echo "set title 'messages'"
		echo "plot '$CSV' skip 1 using (\$1/60.0):6 with lines lw 2 title 'produced', '' skip 1 using (\$1/60.0):7 with lines title 'processed'"
		echo "set title 'table sizes (MiB)'"
		echo "plot '$CSV' skip 1 using (\$1/60.0):(\$9/1048576) with lines title 'anomalies', '' skip 1 using (\$1/60.0):(\$10/1048576) with lines title 'dead\\_letters', '' skip 1 using (\$1/60.0):(\$11/1048576) with lines title 'stream\\_state', '' skip 1 using (\$1/60.0):(\$12/1048576) with lines title 'kafka\\_offsets'"
		echo "unset multiplot"
	} >"$OUT_DIR/soak.gnuplot"
	gnuplot "$OUT_DIR/soak.gnuplot" 2>"$OUT_DIR/gnuplot.err" || { echo "gnuplot failed:" >&2; cat "$OUT_DIR/gnuplot.err" >&2; PNG=; }
else
	echo "gnuplot not found (Debian: apt-get install gnuplot-nox): no plot" >&2
	PNG=
fi

# ---- the criteria, from the CSV and the final figures
perl -e '
	use strict; use warnings; use List::Util qw(max);
	my ($csv, $final, $marks, $duration, $warm, $win, $growth_max, $lag_ok, $drained,
		$tenant_delivered, $demo_delivered) = @ARGV;
	my (@rows, %pid);
	open my $fh, "<", $csv or die "$csv: $!";
	<$fh>;
	while (<$fh>) {
		chomp;
		my @f = split /,/, $_, -1;
		push @rows, { el => $f[0], phase => $f[2], pid => $f[3], rss => $f[4], lag => $f[7], events => $f[13],
			sizes => [ @f[8 .. 11] ] };
	}
	my $median = sub { my @s = sort { $a <=> $b } @_; return undef unless @s;
		return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2 };
	my $fail = 0;
	my $mmss = sub { sprintf "%d:%02d", int($_[0] / 60), $_[0] % 60 };

	# memory, per worker process
	for my $r (grep { $_->{phase} eq "run" && $_->{pid} ne "" && $_->{rss} ne "" } @rows) {
		push @{ $pid{$r->{pid}} }, $r;
	}
	my $judged = 0;
	print "memory (RssAnon of each worker process, median of the minute after its warm-up vs its last ${win} s):\n";
	for my $p (sort { $pid{$a}[0]{el} <=> $pid{$b}[0]{el} } keys %pid) {
		my @s = @{ $pid{$p} };
		my ($first, $last) = ($s[0]{el}, $s[-1]{el});
		my $life = $last - $first;
		if ($life < $warm + 2 * $win) {
			printf "  pid %s, %s-%s: lived %d s, less than %d s: not judged\n", $p, $mmss->($first), $mmss->($last), $life, $warm + 2 * $win;
			next;
		}
		my $a = $median->(map { $_->{rss} } grep { $_->{el} >= $first + $warm && $_->{el} < $first + $warm + $win } @s);
		my $b = $median->(map { $_->{rss} } grep { $_->{el} > $last - $win } @s);
		my $g = 100 * ($b - $a) / $a;
		my $ok = $g <= $growth_max;
		$fail ||= !$ok;
		$judged++;
		printf "  pid %s, %s-%s: %.1f MiB -> %.1f MiB: %+.1f%% %s\n", $p, $mmss->($first), $mmss->($last), $a / 1024, $b / 1024, $g,
			$ok ? "(ok)" : "(more than $growth_max%)";
	}
	print $judged ? "" : "  no worker process lived long enough to be judged\n";
	my $mem_ok = !$fail;
	printf "  => %s\n", !$judged ? "NOT JUDGED" : $mem_ok ? "PASS" : "FAIL";

	# lag after each disruption
	my @run = grep { $_->{phase} eq "run" } @rows;
	my @lags = grep { $_ ne "" } map { $_->{lag} } @rows;
	my $maxlag = @lags ? max(@lags) : 0;
	my ($at) = grep { $_->{lag} ne "" && $_->{lag} == $maxlag } @rows;
	printf "lag (produced - processed): max %d messages at %s; back to <= %d after each disruption:\n", $maxlag, $at ? $mmss->($at->{el}) : "-", $lag_ok;
	my @disr;
	for my $i (0 .. $#run) {
		for my $e (split / /, $run[$i]{events}) {
			push @disr, { i => $i, what => $e } if $e =~ /^(outage_end|restart_)/;
		}
	}
	my $lag_fail = 0;
	for my $d (@disr) {
		my ($rec, $j) = (undef, $d->{i});
		# sample i holds the event, which came after sample i-1: a lag is
		# "back" at a later sample, before the one holding the next disruption
		for ($j = $d->{i} + 1; $j <= $#run; $j++) {
			last if $run[$j]{events} =~ /outage_start|restart_/;
			if ($run[$j]{lag} ne "" && $run[$j]{lag} <= $lag_ok) { $rec = $run[$j]; last; }
		}
		if ($rec) {
			printf "  %-12s at %s: back at %s\n", $d->{what}, $mmss->($run[$d->{i}]{el}), $mmss->($rec->{el});
		} else {
			printf "  %-12s at %s: NOT back before the next disruption or the end of the run\n", $d->{what}, $mmss->($run[$d->{i}]{el});
			$lag_fail = 1;
		}
	}
	print "  (no disruption)\n" unless @disr;
	printf "  drained to 0 after the run: %s\n", $drained ? "yes" : "NO";
	$lag_fail ||= !$drained;
	printf "  => %s\n", $lag_fail ? "FAIL" : "PASS";
	$fail ||= $lag_fail;

	# nothing lost, exactly once
	my ($events, $dead, $anom, $adup, $ddup, $both, $beyond, $offsets, $reasons) = split /\|/, $final, -1;
	my %next = map { split / / } split /,/, $offsets;
	open my $wm, "<", $marks or die "$marks: $!";
	my ($produced, @bad) = (0);
	while (<$wm>) {
		my ($p, $hw) = split;
		$produced += $hw;
		push @bad, sprintf("partition %d: next_offset %s, high watermark %d", $p, $next{$p} // "none", $hw)
			if ($next{$p} // ($hw ? -1 : 0)) != $hw;
	}
	my $lost_fail = @bad || $adup || $ddup || $both || $beyond || $events + $dead != $produced;
	printf "nothing lost, exactly once: %d messages produced (%d tenant + %d demo_producer delivered)\n", $produced, $tenant_delivered, $demo_delivered;
	printf "  next_offset = high watermark on every partition: %s\n", @bad ? "NO: " . join("; ", @bad) : "yes";
	printf "  detector events %d + dead letters %d = %d: %s\n", $events, $dead, $events + $dead,
		$events + $dead == $produced ? "= produced" : "NOT the $produced produced";
	printf "  dead letters by reason: %s; anomalies: %d\n", $reasons || "none", $anom;
	printf "  duplicated anomalies %d, duplicated dead letters %d, both %d, beyond next_offset %d\n", $adup, $ddup, $both, $beyond;
	printf "  => %s\n", $lost_fail ? "FAIL" : "PASS";
	$fail ||= $lost_fail;

	# for information: the tables, a third into the run and at its end
	my @sized = grep { $_->{phase} eq "run" && $_->{sizes}[0] ne "" } @rows;
	my ($third) = grep { $_->{el} >= $duration / 3 } @sized;
	if ($third && @sized) {
		my @names = qw(anomalies dead_letters stream_state kafka_offsets);
		printf "table sizes at %s -> %s (MiB, for information): %s\n", $mmss->($third->{el}), $mmss->($sized[-1]{el}),
			join(", ", map { sprintf "%s %.2f -> %.2f", $names[$_], $third->{sizes}[$_] / 1048576, $sized[-1]{sizes}[$_] / 1048576 } 0 .. 3);
	}
	exit($fail ? 1 : 0);
' "$CSV" "$FINAL" "$DIR/watermarks" "$DURATION" "$RSS_WARMUP_S" "$RSS_WINDOW_S" "$RSS_MAX_GROWTH_PCT" \
	"$LAG_OK" "$drained" "$TENANT_DELIVERED" "$DEMO_DELIVERED" | tee "$OUT_DIR/verdict.txt"
verdict=${PIPESTATUS[0]}
echo "CSV: $CSV${PNG:+; plot: $PNG}; server log: $OUT_DIR/server.log"
if [ "$verdict" -eq 0 ]; then
	say "soak passed"
else
	say "soak FAILED"
fi
exit "$verdict"
