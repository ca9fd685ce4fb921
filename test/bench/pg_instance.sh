# test/bench/pg_instance.sh -- sourced by the benchmark scripts: a
# throwaway PostgreSQL instance in a temporary directory, as the postgres
# user when run as root, removed on exit.
#
#   pg_instance_start [postgresql.conf lines...]   initdb + start
#   pg_psql [psql args...]                         psql to it, -X -q
#   pg_q SQL                                       one query, unaligned rows
#
# Sets DIR (the directory, also the socket's), PORT, RUN and PG_BIN.

PG_BIN=$(dirname "$(${PG_CONFIG:-pg_config} --bindir)/x")
DIR=$(mktemp -d /tmp/driftlock-bench.XXXXXX)
RUN=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$DIR"
	RUN=(runuser -u postgres --)
fi
PORT=$((20000 + RANDOM % 20000))
PG_INSTANCE_CLEANUP=()

pg_instance_cleanup() {
	local c
	for c in "${PG_INSTANCE_CLEANUP[@]}"; do eval "$c"; done
	"${RUN[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap pg_instance_cleanup EXIT

pg_instance_start() {
	local line
	"${RUN[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust >/dev/null
	for line in "$@"; do echo "$line" >>"$DIR/data/postgresql.conf"; done
	"${RUN[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
		-o "-p $PORT -k $DIR -c listen_addresses= -c shared_buffers=256MB -c work_mem=256MB" start >/dev/null
}

pg_psql() { "${RUN[@]}" "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -d postgres "$@"; }
pg_q() { pg_psql -At -c "$1"; }
