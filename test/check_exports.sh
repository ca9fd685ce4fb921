#!/usr/bin/env bash
#
# test/check_exports.sh -- driftlock.so exports only PostgreSQL's entry
# points: _PG_init, the magic block (Pg_magic_func), the Kafka worker's
# main function, and each SQL-callable function declared with
# DRIFTLOCK_SQL_FUNCTION(name) in src/ (name and pg_finfo_name).
#
# Usage: test/check_exports.sh [LIBRARY]   (default: driftlock.so beside src/)
#
# PostgreSQL 15 loads libraries with RTLD_GLOBAL, so any other global symbol
# (a helper called spi_run or metrics_init) could collide with another
# library's.  The build uses -fvisibility=hidden (see the Makefile); this
# fails, listing the difference, when a symbol is exported that should not
# be, or an entry point is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${1:-$ROOT/driftlock.so}
[ -f "$LIB" ] || { echo "$LIB not found: build first (make)" >&2; exit 2; }

expected=$(
	{
		printf '%s\n' _PG_init Pg_magic_func driftlock_kafka_worker_main
		grep -ho 'DRIFTLOCK_SQL_FUNCTION([a-z_0-9]*)' "$ROOT"/src/*.c |
			sed 's/DRIFTLOCK_SQL_FUNCTION(\(.*\))/\1\npg_finfo_\1/'
	} | sort -u)
# defined dynamic symbols, without the linker's own (_init, _end, ...)
actual=$(nm -D --defined-only "$LIB" | awk '{ print $3 }' |
	grep -v -x -E '_init|_fini|__bss_start|_edata|_end' | sort -u)

if [ "$expected" != "$actual" ]; then
	echo "driftlock.so exports differ from PostgreSQL's entry points (< expected, > exported):" >&2
	diff <(echo "$expected") <(echo "$actual") >&2 || true
	exit 1
fi
n=$(echo "$actual" | wc -l)
echo "exported symbols: $n, all PostgreSQL entry points ($(echo "$expected" | grep -c '^pg_finfo_') SQL functions)"
