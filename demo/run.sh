#!/usr/bin/env bash
#
# demo/run.sh -- driftlock end to end, in one command.
#
# Installs what is missing (as root), builds and installs the extension,
# starts a throwaway PostgreSQL cluster that preloads driftlock with its Kafka
# worker, an embedded Kafka (test/tools/mock_kafka), registers one stream per
# service and produces a deterministic stream of JSON log events with a few
# injected incidents (test/tools/demo_producer).  Shows progress while the
# worker consumes, then a report: events, the incidents with their severity
# and explanation, the raw anomalies, dead letters, Prometheus metrics, and
# how to connect with psql.
# With --otlp the messages are OpenTelemetry logs export batches instead
# (test/tools/otlp_gen, as the OpenTelemetry Collector's Kafka exporter
# writes them), read with driftlock.kafka_format = otlp_proto: one event per
# log record, its stream named by the service.name resource attribute.
# Cleans up afterwards unless --keep.  See demo/README.md and --help.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: demo/run.sh [options]

Runs the driftlock demo: a throwaway PostgreSQL 15 cluster with the Kafka
worker, an embedded Kafka, four service streams with injected incidents,
and a report of what driftlock found.  Run it as root (or with sudo) on a
fresh Debian 12 machine: it installs the missing packages with apt-get,
builds and installs the extension.  As another user it installs nothing:
the packages and the extension (sudo make install) must be there already.

options:
  --short            a quick run (fewer events, about 15 s)
  --otlp             OpenTelemetry logs instead of JSON events: export
                     batches of 4 services x 100 log records (otlp_proto),
                     read with driftlock.kafka_format = 'otlp_proto'; each
                     record is an event of the stream its service.name names
  --keep             leave PostgreSQL and Kafka running at the end and print
                     how to connect and how to stop them
  --brokers H:P      produce to and consume from this Kafka instead of the
                     embedded one (no mock is started)
  --topic NAME       topic to use (default driftlock-demo; with --brokers,
                     use a topic of its own: the demo reads it from the start)
  --events N         about N normal events (default 7000; 2000 with --short)
  --rate R           events per second the producer sends (default 175;
                     400 with --short; 0 = as fast as possible)
  --config JSON      detector settings of the four streams (default
                     '{"warmup": 100}'; see
                     demo/README.md and docs/detector.md)
  --no-build         do not run make (the extension must be installed and
                     "make tools" run)
  -h, --help         this text

environment: DRIFTLOCK_DEMO_SHORT=1 is --short; PG_CONFIG selects the
PostgreSQL installation (default: PostgreSQL 15's pg_config).
EOF
}

SHORT=${DRIFTLOCK_DEMO_SHORT:-0}
[ "$SHORT" = 1 ] || SHORT=0
OTLP=0
KEEP=0
BUILD=1
EXT_BROKERS=
TOPIC=driftlock-demo
EVENTS=
RATE=
STREAM_CONFIG='{"warmup": 100}'
while [ $# -gt 0 ]; do
	case $1 in
		--short) SHORT=1 ;;
		--otlp) OTLP=1 ;;
		--keep) KEEP=1 ;;
		--no-build) BUILD=0 ;;
		--brokers|--topic|--events|--rate|--config)
			[ $# -ge 2 ] || { echo "demo: $1 needs a value (see --help)" >&2; exit 2; }
			case $1 in
				--brokers) EXT_BROKERS=$2 ;;
				--topic) TOPIC=$2 ;;
				--events) EVENTS=$2 ;;
				--rate) RATE=$2 ;;
				--config) STREAM_CONFIG=$2 ;;
			esac
			shift ;;
		-h|--help) usage; exit 0 ;;
		*) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$SHORT" = 1 ]; then
	EVENTS=${EVENTS:-2000}
	RATE=${RATE:-400}
else
	EVENTS=${EVENTS:-7000}
	RATE=${RATE:-175}
fi
case $EVENTS in ''|*[!0-9]*) echo "demo: --events must be a number" >&2; exit 2 ;; esac
case $RATE in ''|*[!0-9]*) echo "demo: --rate must be a number" >&2; exit 2 ;; esac
[ "$EVENTS" -ge 400 ] || { echo "demo: --events must be at least 400" >&2; exit 2; }
case $TOPIC in ''|*[!A-Za-z0-9._-]*) echo "demo: --topic may hold letters, digits, '.', '_' and '-'" >&2; exit 2 ;; esac
case $STREAM_CONFIG in *"'"*) echo "demo: --config must not contain single quotes" >&2; exit 2 ;; esac
case $EXT_BROKERS in *"'"*|*\\*) echo "demo: --brokers must not contain quotes" >&2; exit 2 ;; esac

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
MOCK=$SRC_DIR/test/tools/mock_kafka
PRODUCER=$SRC_DIR/test/tools/demo_producer
OTLP_GEN=$SRC_DIR/test/tools/otlp_gen
PRODUCE_RAW=$SRC_DIR/test/tools/produce_raw
GROUP=driftlock-demo
STREAMS=(checkout payments search auth)
PARTITIONS=4
OTLP_RECORDS=100                # log records per service and batch
if [ "$OTLP" = 1 ]; then
	# otlp_gen names its services svc-0, svc-1, ...: one stream each.  One
	# partition: a batch holds every service, and a stream's records must
	# stay in one partition (docs/pipelines.md)
	STREAMS=(svc-0 svc-1 svc-2 svc-3)
	PARTITIONS=1
	[ "$TOPIC" != driftlock-demo ] || TOPIC=driftlock-demo-otlp
fi
PACKAGES=(postgresql-15 postgresql-server-dev-15 librdkafka-dev libzstd-dev kcat build-essential)
START=$(date +%s)

say() { printf '==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
elapsed() { echo $(( $(date +%s) - START )); }

# ---- state the cleanup needs; set as things start
DIR=
PG_CTL=
MOCK_PID=
PRODUCER_PID=
PG_STARTED=0
PSQL_HINT=
STOP_HINT=
print_keep_hint() {
	echo
	echo "Kept running (--keep):"
	[ -n "$PSQL_HINT" ] && echo "  connect:  $PSQL_HINT"
	[ "$PG_STARTED" = 1 ] && echo "  stop:     $STOP_HINT"
	[ -n "$MOCK_PID" ] && echo "            kill $MOCK_PID      # the embedded Kafka"
	echo "            rm -rf $DIR"
	return 0
}
RUN=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$PRODUCER_PID" ] && kill -0 "$PRODUCER_PID" 2>/dev/null; then
		kill "$PRODUCER_PID" 2>/dev/null || true
		wait "$PRODUCER_PID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ] && [ -n "$DIR" ]; then
		print_keep_hint
		exit "$rc"
	fi
	if [ "$PG_STARTED" = 1 ]; then
		"${RUN[@]}" "$PG_CTL" -D "$DIR/data" -m fast -t 30 stop >/dev/null 2>&1 ||
			"${RUN[@]}" "$PG_CTL" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [ -n "$MOCK_PID" ]; then
		kill "$MOCK_PID" 2>/dev/null || true
		wait "$MOCK_PID" 2>/dev/null || true
	fi
	[ -n "$DIR" ] && rm -rf "$DIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. packages (root only)
if is_root; then
	missing=()
	for pkg in "${PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		command -v apt-get >/dev/null || die "missing packages ${missing[*]}, and no apt-get to install them"
		say "installing ${missing[*]} (apt-get)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
command -v "$PG_CONFIG" >/dev/null ||
	die "pg_config not found: install postgresql-15 and postgresql-server-dev-15 (or run this script as root)"
export PG_CONFIG
PG_BIN=$("$PG_CONFIG" --bindir)
PG_CTL=$PG_BIN/pg_ctl
# our own server only: ignore connection settings around us
unset PGHOST PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS PGSSLMODE

DIR=$(mktemp -d /tmp/driftlock-demo.XXXXXX)

# ---- 2. build and install
if [ "$BUILD" = 1 ]; then
	say "building driftlock and the demo tools (log: make.log)"
	jobs=$(nproc 2>/dev/null || echo 2)
	build() { make -C "$SRC_DIR" --no-print-directory -j"$jobs" "$@" >>"$DIR/make.log" 2>&1; }
	if is_root; then
		build all && build install && build tools ||
			{ tail -30 "$DIR/make.log" >&2; die "the build failed (see above)"; }
	else
		build tools || { tail -30 "$DIR/make.log" >&2; die "make tools failed (see above)"; }
	fi
fi
[ -f "$("$PG_CONFIG" --pkglibdir)/driftlock.so" ] &&
	[ -f "$("$PG_CONFIG" --sharedir)/extension/driftlock.control" ] ||
	die "the extension is not installed in $("$PG_CONFIG" --pkglibdir): run \"make && sudo make install\" (or this script as root)"
if [ "$OTLP" = 1 ]; then
	for tool in "$OTLP_GEN" "$PRODUCE_RAW"; do
		[ -x "$tool" ] || die "$tool not found: run \"make tools\""
	done
else
	[ -x "$PRODUCER" ] || die "$PRODUCER not found: run \"make tools\""
fi
[ -n "$EXT_BROKERS" ] || [ -x "$MOCK" ] || die "$MOCK not found: run \"make tools\""

# ---- 3. PostgreSQL: initdb as the postgres user when root
if is_root; then
	id postgres >/dev/null 2>&1 || die "no postgres user (it comes with the postgresql-15 package)"
	chown postgres: "$DIR"
	RUN=(runuser -u postgres --)
	DB_USER=postgres
else
	DB_USER=$(id -un)
fi

# a port no server uses (we listen on a socket in $DIR only, but keep clear anyway)
port_free() {
	local p=$1 d
	for d in /var/run/postgresql /tmp; do
		[ -e "$d/.s.PGSQL.$p" ] && return 1
	done
	! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}
PORT=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 30000))
	if port_free "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || die "no free port found"

if is_root; then
	# root may use the socket directly; pg_ctl must run as postgres
	PSQL_HINT="psql -h $DIR -p $PORT -U postgres -d postgres"
	STOP_HINT="runuser -u postgres -- $PG_CTL -D $DIR/data stop"
else
	PSQL_HINT="psql -h $DIR -p $PORT -d postgres"
	STOP_HINT="$PG_CTL -D $DIR/data stop"
fi
psql_cmd=("${RUN[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres)
psql_q() { "${psql_cmd[@]}" -At -c "$1"; }

# ---- 4. Kafka: the embedded mock, or the given brokers
if [ -n "$EXT_BROKERS" ]; then
	BOOTSTRAP=$EXT_BROKERS
	say "using Kafka at $BOOTSTRAP, topic $TOPIC"
else
	say "starting the embedded Kafka (test/tools/mock_kafka)"
	# its own session: with --keep it outlives this script and its terminal
	setsid "$MOCK" --topic "$TOPIC" --partitions "$PARTITIONS" --port-file "$DIR/mock.port" \
		</dev/null >"$DIR/mock.log" 2>&1 &
	MOCK_PID=$!
	for _ in $(seq 150); do
		[ -s "$DIR/mock.port" ] && break
		kill -0 "$MOCK_PID" 2>/dev/null || { cat "$DIR/mock.log" >&2; die "mock_kafka exited"; }
		sleep 0.1
	done
	[ -s "$DIR/mock.port" ] || { cat "$DIR/mock.log" >&2; die "mock_kafka did not start within 15 s"; }
	BOOTSTRAP=$(cat "$DIR/mock.port")
	echo "    bootstrap servers $BOOTSTRAP, topic $TOPIC ($PARTITIONS partition$([ "$PARTITIONS" = 1 ] || echo s)), pid $MOCK_PID"
fi

say "starting PostgreSQL on port $PORT (data and socket in $DIR)"
"${RUN[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust -U "$DB_USER" >"$DIR/initdb.log" 2>&1 ||
	{ tail -20 "$DIR/initdb.log" >&2; die "initdb failed"; }
cat >>"$DIR/data/postgresql.conf" <<CONF

# ---- driftlock demo
listen_addresses = ''
port = $PORT
unix_socket_directories = '$DIR'
fsync = off                     # a throwaway cluster
shared_preload_libraries = 'driftlock'
driftlock.kafka_enabled = off   # switched on once the streams exist
driftlock.kafka_brokers = '$BOOTSTRAP'
driftlock.kafka_topic = '$TOPIC'
driftlock.kafka_group_id = '$GROUP'
driftlock.kafka_properties = 'session.timeout.ms=6000;heartbeat.interval.ms=500'
driftlock.kafka_max_in_flight = 500
driftlock.kafka_batch_ms = 200
CONF
if [ "$OTLP" = 1 ]; then
	cat >>"$DIR/data/postgresql.conf" <<CONF
driftlock.kafka_format = 'otlp_proto'             # OpenTelemetry logs export batches
driftlock.otlp_stream_attribute = 'service.name'  # the default: a record's stream
CONF
else
	echo "driftlock.kafka_stream_id_header = 'X-Stream-Id'" >>"$DIR/data/postgresql.conf"
fi
"${RUN[@]}" "$PG_CTL" -D "$DIR/data" -l "$DIR/postgresql.log" -w -t 60 start >/dev/null ||
	{ tail -20 "$DIR/postgresql.log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1

say "creating the extension and the streams ${STREAMS[*]} with config $STREAM_CONFIG"
values=
for s in "${STREAMS[@]}"; do values+="${values:+, }('$s', '$STREAM_CONFIG')"; done
psql_q "CREATE EXTENSION driftlock" >/dev/null
psql_q "INSERT INTO driftlock.streams (name, config) VALUES $values" >/dev/null
"${psql_cmd[@]}" -c "ALTER SYSTEM SET driftlock.kafka_enabled = on" -c "SELECT pg_reload_conf()" >/dev/null

# ---- 5. produce, and watch the worker consume

# --otlp: export batches of otlp_gen, each sent as one message to partition
# 0 by produce_raw, at about RATE records a second; the status file has the
# lines of demo_producer's, counting log records.  Batch b has seed b + 1;
# the batches at 40% and 75% get anomalous records (otlp_gen -a: the same
# record numbers in every service), listed in $DIR/injected as "offset
# record_index service".  Half-way come a message that is no batch
# (invalid_otlp) and a batch of 5 records of the service billing-0, which
# has no stream (5 unknown_stream dead letters, one per record).
OTLP_BATCH_RECORDS=$(( ${#STREAMS[@]} * OTLP_RECORDS ))
OTLP_BATCHES=$(( (EVENTS + OTLP_BATCH_RECORDS - 1) / OTLP_BATCH_RECORDS ))
[ "$OTLP_BATCHES" -ge 3 ] || OTLP_BATCHES=3
OTLP_INJECT_AT=$(( OTLP_BATCHES * 40 / 100 ))
OTLP_INJECT_AT2=$(( OTLP_BATCHES * 75 / 100 ))
[ "$OTLP_INJECT_AT2" -gt "$OTLP_INJECT_AT" ] || OTLP_INJECT_AT2=$(( OTLP_INJECT_AT + 1 ))
OTLP_TOTAL=$(( OTLP_BATCHES * OTLP_BATCH_RECORDS + 5 + 1 ))
otlp_producer() {
	local b produced=0 messages=0 last= out n args=() anomalous=
	otlp_status() {
		{
			printf 'produced %d\ndelivered %d\nfailed 0\ntotal %d\ndone %d\n' \
				"$produced" "$produced" "$OTLP_TOTAL" "$1"
			[ "$1" = 0 ] || printf 'end 0 %d\nmessages %d\n' $((last + 1)) "$messages"
		} >"$DIR/producer.status.tmp" && mv "$DIR/producer.status.tmp" "$DIR/producer.status"
	}
	# one file as one message; its offset in $last
	send() {
		out=$({ printf 'message 0 %d\n' "$(stat -c %s "$1")"; cat "$1"; } |
			"$PRODUCE_RAW" --brokers "$BOOTSTRAP" --topic "$TOPIC" --partition 0) || return 1
		last=${out##* }
		messages=$((messages + 1))
	}
	otlp_status 0
	for ((b = 0; b < OTLP_BATCHES; b++)); do
		case $b in
			"$OTLP_INJECT_AT") anomalous=30,70 ;;
			"$OTLP_INJECT_AT2") anomalous=55 ;;
			*) anomalous= ;;
		esac
		args=(-e proto -s "${#STREAMS[@]}" -r "$OTLP_RECORDS" -S $((b + 1)) -p svc- -o "$DIR/batch.bin")
		[ -z "$anomalous" ] || args+=(-a "$anomalous")
		"$OTLP_GEN" "${args[@]}" && send "$DIR/batch.bin" || return 1
		echo "batch $b: offset $last, ${OTLP_BATCH_RECORDS} records${anomalous:+, anomalous record numbers $anomalous}"
		for n in ${anomalous//,/ }; do
			for ((s = 0; s < ${#STREAMS[@]}; s++)); do
				echo "$last $((s * OTLP_RECORDS + n)) svc-$s" >>"$DIR/injected"
			done
		done
		produced=$((produced + OTLP_BATCH_RECORDS))
		if [ "$b" = $((OTLP_BATCHES / 2)) ]; then
			printf 'this is not an export batch' >"$DIR/garbage.bin"
			"$OTLP_GEN" -e proto -s 1 -r 5 -p billing- -S 99 -o "$DIR/billing.bin" &&
				send "$DIR/garbage.bin" && send "$DIR/billing.bin" || return 1
			echo "a message that is no batch, and a batch of billing-0 (no such stream)"
			produced=$((produced + 6))
		fi
		otlp_status 0
		[ "$RATE" = 0 ] || sleep "$(awk -v n="$OTLP_BATCH_RECORDS" -v r="$RATE" 'BEGIN { printf "%.2f", n / r }')"
	done
	otlp_status 1
}
if [ "$OTLP" = 1 ]; then
	say "producing $OTLP_BATCHES OpenTelemetry logs batches (otlp_proto, ${#STREAMS[@]} services x $OTLP_RECORDS records) at about ${RATE} records/s with injected anomalies (test/tools/otlp_gen)"
	: >"$DIR/injected"
	otlp_producer </dev/null >"$DIR/producer.log" 2>&1 &
else
	say "producing about $EVENTS events at ${RATE}/s with injected incidents (test/tools/demo_producer)"
	"$PRODUCER" --brokers "$BOOTSTRAP" --topic "$TOPIC" --events "$EVENTS" --rate "$RATE" \
		--status-file "$DIR/producer.status" </dev/null >"$DIR/producer.log" 2>&1 &
fi
PRODUCER_PID=$!

status() { awk -v k="$1" '$1 == k { print $2 }' "$DIR/producer.status" 2>/dev/null || true; }
server_log_tail() {
	echo "---- last lines of the server log ($DIR/postgresql.log):" >&2
	tail -25 "$DIR/postgresql.log" >&2 || true
}
METRICS_SQL="SELECT coalesce(sum(value) FILTER (WHERE metric = 'driftlock_events_processed_total'), 0)::bigint,
	coalesce(sum(value) FILTER (WHERE metric = 'driftlock_dead_letters_total'), 0)::bigint,
	coalesce(sum(value) FILTER (WHERE metric = 'driftlock_anomalies_detected_total'), 0)::bigint
FROM driftlock.metrics"

STALL_LIMIT=60                  # seconds without progress while messages wait
if [ "$RATE" -gt 0 ]; then
	DEADLINE=$(( $(date +%s) + EVENTS / RATE + 120 ))
else
	DEADLINE=$(( $(date +%s) + 180 ))
fi
last_seen=-1
last_change=$(date +%s)
producer_rc=
t0=$(date +%s)
while :; do
	sleep 1
	now=$(date +%s)
	if [ -z "$producer_rc" ] && ! kill -0 "$PRODUCER_PID" 2>/dev/null; then
		producer_rc=0
		wait "$PRODUCER_PID" || producer_rc=$?
		PRODUCER_PID=
		if [ "$producer_rc" -ne 0 ]; then
			cat "$DIR/producer.log" >&2
			die "the producer failed (exit status $producer_rc): is Kafka at $BOOTSTRAP reachable?"
		fi
	fi
	IFS='|' read -r scored dead anomalies < <(psql_q "$METRICS_SQL" || echo '||')
	[ -n "$scored" ] || { server_log_tail; die "cannot query the server"; }
	produced=$(status produced)
	total=$(status total)
	printf '    [%3ds] produced %6s/%-6s  processed %6s  anomalies %4s  dead letters %s\n' \
		$((now - t0)) "${produced:-0}" "${total:-?}" $((scored + dead)) "$anomalies" "$dead"
	# done: the producer finished and the worker committed every partition's end
	if [ "$producer_rc" = 0 ]; then
		ends=$(awk '$1 == "end" { printf "%s(%d, %d)", (n++ ? ", " : ""), $2, $3 }' "$DIR/producer.status")
		[ -n "$ends" ] || die "the producer delivered nothing"
		nparts=$(grep -c '^end ' "$DIR/producer.status")
		caught_up=$(psql_q "SELECT count(*) = $nparts FROM (VALUES $ends) e(p, o)
			JOIN driftlock.kafka_offsets k ON k.group_id = '$GROUP' AND k.topic = '$TOPIC'
			 AND k.partition = e.p AND k.next_offset >= e.o")
		[ "$caught_up" = t ] && break
	fi
	if [ $((scored + dead)) -ne "$last_seen" ]; then
		last_seen=$((scored + dead))
		last_change=$now
	elif [ $((now - last_change)) -ge "$STALL_LIMIT" ]; then
		server_log_tail
		if [ "$last_seen" -eq 0 ]; then
			die "the worker consumed nothing in $STALL_LIMIT s"
		fi
		die "the worker made no progress for $STALL_LIMIT s (at $last_seen messages)"
	fi
	if [ "$now" -ge "$DEADLINE" ]; then
		server_log_tail
		die "the run did not finish in time (at $last_seen messages)"
	fi
done
say "the worker has consumed every message ($(elapsed) s since the start)"

# ---- 6. the report
report() { "${psql_cmd[@]}" -At -c "$1"; }

echo
echo "================================ driftlock demo report ================================"
if [ "$OTLP" = 1 ]; then
	report "SELECT format('Messages: %s produced (%s OpenTelemetry batches of %s log records, 1 that is no batch, 1 of 5 records of billing-0), %s processed by the worker.',
	$(status messages), $OTLP_BATCHES, $OTLP_BATCH_RECORDS,
	(SELECT sum(next_offset) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'))
UNION ALL
SELECT format('Events: %s log records produced, %s scored by the detectors, %s dead letters (%s of single records).',
	$(status delivered) - 1, $scored, count(*), count(kafka_record_index)) FROM driftlock.dead_letters"
else
	report "SELECT format('Events: %s produced, %s processed by the worker: %s scored by the detectors, %s dead letters.',
	$(status delivered), (SELECT sum(next_offset) FROM driftlock.kafka_offsets WHERE group_id = '$GROUP' AND topic = '$TOPIC'),
	$scored, (SELECT count(*) FROM driftlock.dead_letters))"
fi
report "
SELECT format('Incidents: %s (%s high, %s medium, %s low severity), grouping %s anomalies.',
  count(*), count(*) FILTER (WHERE severity >= 75), count(*) FILTER (WHERE severity >= 50 AND severity < 75),
  count(*) FILTER (WHERE severity < 50), coalesce(sum(anomalies), 0))
  FROM driftlock.incidents"

echo
echo "Incidents, most severe first (stream, severity, anomalies, first-last seen, pattern; then why):"
report "
SELECT format(E'%2s. %-9s %3s %-6s x%-3s %s-%s  %s\n      why: %s',
  row_number() OVER (ORDER BY i.severity DESC, i.first_seen), s.name, i.severity,
  CASE WHEN i.severity >= 75 THEN 'high' WHEN i.severity >= 50 THEN 'medium' ELSE 'low' END,
  i.anomalies, to_char(i.first_seen, 'HH24:MI:SS'), to_char(i.last_seen, 'HH24:MI:SS'),
  CASE WHEN length(i.pattern) > 60 THEN left(i.pattern, 57) || '...' ELSE i.pattern END,
  CASE WHEN length(i.explanation) > 700 THEN left(i.explanation, 697) || '...' ELSE i.explanation END)
FROM driftlock.incidents i JOIN driftlock.streams s ON s.id = i.stream_id
ORDER BY i.severity DESC, i.first_seen LIMIT 12"
report "SELECT format('  (%s incidents in all: SELECT * FROM driftlock.open_incidents; resolved ones stay in driftlock.incidents)', count(*))
  FROM driftlock.incidents HAVING count(*) > 12"

echo
if [ "$OTLP" = 1 ]; then
injected=$(awk '{ printf "%s(%s, %s, \x27%s\x27)", (n++ ? ", " : ""), $1, $2, $3 }' "$DIR/injected")
echo "Injected anomalous log records, how driftlock reported them (batches $OTLP_INJECT_AT and $OTLP_INJECT_AT2):"
report "
WITH injected(kafka_offset, kafka_record_index, service) AS (VALUES $injected),
flagged AS (
  SELECT s.name, a.kafka_offset, a.kafka_record_index, i.severity
  FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id
  LEFT JOIN driftlock.incidents i ON i.id = a.incident_id)
SELECT format('  %-6s %s of %s injected records flagged (incident severity %s); other records flagged: %s',
  st.name,
  (SELECT count(*) FROM injected j JOIN flagged f ON f.name = j.service
     AND (f.kafka_offset, f.kafka_record_index) = (j.kafka_offset, j.kafka_record_index) WHERE j.service = st.name),
  (SELECT count(*) FROM injected j WHERE j.service = st.name),
  coalesce((SELECT string_agg(DISTINCT f.severity::text, ', ') FROM injected j JOIN flagged f ON f.name = j.service
     AND (f.kafka_offset, f.kafka_record_index) = (j.kafka_offset, j.kafka_record_index) WHERE j.service = st.name), '-'),
  (SELECT count(*) FROM flagged f WHERE f.name = st.name AND NOT EXISTS (SELECT FROM injected j
     WHERE (j.kafka_offset, j.kafka_record_index) = (f.kafka_offset, f.kafka_record_index))))
FROM driftlock.streams st WHERE st.name LIKE 'svc-%' ORDER BY st.name"

echo
echo "Anomalies, most significant first: stream, Kafka offset and record index, p-value, the record's text as scored:"
report "
SELECT format('  %-6s %3s #%-4s p=%-6s %s', s.name, a.kafka_offset, a.kafka_record_index, round(a.p_value::numeric, 4),
  CASE WHEN length(t) > 100 THEN left(t, 97) || '...' ELSE t END)
FROM driftlock.anomalies a JOIN driftlock.streams s ON s.id = a.stream_id,
  LATERAL replace(convert_from(a.payload, 'UTF8'), E'\n', '\n') t
ORDER BY a.p_value, a.score DESC, a.id LIMIT 10"
else
echo "Injected incidents, how driftlock reported them:"
report "
SELECT format('  %-46s %s', label,
  CASE WHEN c.flagged = 0 THEN format('NOT flagged (0 of %s events)', n)
       ELSE format('incident, severity %s, %s of %s events flagged', c.severity, c.flagged, n) END)
FROM (VALUES
  (1, 'payments: error burst \"database timeout\"', '%charge failed: database timeout%', 30),
  (2, 'auth: new message \"account locked ...\"', '%account locked after repeated failures%', 3),
  (3, 'search: SQL-injection-looking query', '%UNION SELECT username%', 1),
  (4, 'search: huge nested payload with a blob', '%debug_blob%', 1)) v(o, label, pat, n)
CROSS JOIN LATERAL (
  SELECT count(*) AS flagged, max(i.severity) AS severity
  FROM driftlock.anomalies a LEFT JOIN driftlock.incidents i ON i.id = a.incident_id
  WHERE encode(a.payload, 'escape') LIKE v.pat) c
ORDER BY o"
fi

echo
echo "Raw anomalies per stream (every flagged event is a row of driftlock.anomalies):"
"${psql_cmd[@]}" -P footer=off -c "
SELECT s.name AS stream, coalesce(st.events, 0) AS events, count(a.id) AS anomalies,
       count(DISTINCT a.incident_id) AS incidents, round(max(a.score)::numeric, 2) AS top_score
FROM driftlock.streams s
LEFT JOIN driftlock.stream_state st ON st.stream_id = s.id
LEFT JOIN driftlock.anomalies a ON a.stream_id = s.id
GROUP BY s.name, st.events ORDER BY s.name" | sed 's/^/  /'

echo
if [ "$OTLP" = 1 ]; then
echo "Dead letters by reason (set aside, not dropped; a record index: that log record alone, replayable):"
report "
SELECT format('  %-18s %3s   e.g. offset %s/%s%s: %s', reason, count(*),
  (array_agg(kafka_partition ORDER BY id))[1], (array_agg(kafka_offset ORDER BY id))[1],
  coalesce(' #' || (array_agg(kafka_record_index ORDER BY id))[1], ' (whole message)'),
  regexp_replace((array_agg(detail ORDER BY id))[1], '^(.{100}).+$', '\\1...'))
FROM driftlock.dead_letters GROUP BY reason ORDER BY reason"
else
echo "Dead letters by reason (messages set aside, not dropped):"
report "
SELECT format('  %-18s %3s   e.g. offset %s/%s: %s', reason, count(*),
  (array_agg(kafka_partition ORDER BY id))[1], (array_agg(kafka_offset ORDER BY id))[1],
  left(coalesce((array_agg(encode(payload, 'escape') ORDER BY id))[1], '(no payload)'), 70))
FROM driftlock.dead_letters GROUP BY reason ORDER BY reason"
fi

echo
echo "Prometheus (SELECT driftlock_prometheus(), a few lines):"
report "SELECT driftlock_prometheus()" |
	grep -E '^driftlock_(events_processed_total|anomalies_detected_total|incidents_total|incidents_open|dead_letters_total|batches_total)[ {]' |
	head -15 | sed 's/^/  /'

echo
echo "To look further (SQL examples in demo/README.md):"
if [ "$KEEP" = 1 ]; then
	echo "  $PSQL_HINT"
else
	echo "  run demo/run.sh --keep, then: $PSQL_HINT"
	echo "  (this run's cluster is removed now; a --keep run prints its own command)"
fi
echo "  e.g.  SELECT stream, severity, anomalies, pattern FROM driftlock.open_incidents;"
echo "        SELECT driftlock_mark_normal_incident(7);   -- a false alarm: learnt, closed"
echo "========================================================================================"
echo "done in $(elapsed) s"
