#!/usr/bin/env bash
#
# test/sanitize_sql.sh -- the pg_regress tests (sql/*.sql, expected/*.out)
# and, on request, TAP tests (test/t/*.pl: the Kafka worker among them)
# against driftlock built with AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Nothing installed is touched: in a scratch directory this script
#
#   1. copies the source tree and builds it with
#      -fsanitize=address,undefined -fno-sanitize-recover=all
#      -fno-omit-frame-pointer -fno-wrapv;
#   2. copies PostgreSQL's bindir, pkglibdir and sharedir under a scratch
#      prefix with the same layout (PostgreSQL finds its files relative to
#      its executables, so the copy is a working installation) and installs
#      the sanitized build into the copy (make install DESTDIR=...);
#   3. replaces the copy's postgres executable by a wrapper that starts the
#      real one with gcc's libasan and a small helper library preloaded and
#      the sanitizer options below, so only server processes run with the
#      sanitizer runtimes;
#   4. runs "make installcheck" (the same tests, settings and temporary
#      instance as the ordinary run) with --bindir pointing at the copy;
#   5. with --tap, builds the test tools (make tools: mock_kafka, produce_raw,
#      demo_producer; without sanitizers, they are not the server) and runs
#      "make prove" with the copy's pg_config, whose bindir comes first in
#      PATH: PostgreSQL::Test::Cluster starts the copy's postgres, so every
#      server process of the TAP tests -- the Kafka worker, a background
#      worker of the sanitized postmaster, included -- runs sanitized.
#
# It fails when a test fails (a backend or worker stopped by a sanitizer
# report makes the server restart -- or, in the TAP tests, whose servers
# have restart_after_crash off, shut down -- and the tests then fail) and
# also when any sanitizer report shows up, even one that no test output
# noticed, or a server log (pg_regress's, or the TAP tests' in
# tmp_check/log) has a sanitizer message or a server process terminated by
# a signal; the reports are printed.  The last line is a summary:
# "sanitize_sql: PASS ..." or "sanitize_sql: FAIL ...".  The scratch
# directory is removed after a successful run and kept after a failed one.
#
# As root, the database part runs as the postgres user (PostgreSQL refuses
# to run as root) and the scratch directory is handed over to it; otherwise
# everything runs as the current user, who needs a writable scratch parent.
#
# Usage: test/sanitize_sql.sh [--keep] [--workdir DIR] [--tap TESTS [--no-regress]]
#   --keep          keep the scratch directory even after a successful run
#   --workdir DIR   create the scratch directory in DIR (default: $TMPDIR or /tmp)
#   --tap TESTS     run these TAP tests too, after pg_regress: a blank-separated
#                   list of test files (test/t/019_worker_bad_input.pl, or just
#                   019_worker_bad_input.pl or 019; globs are expanded in the
#                   tree), or
#                   "worker": the Kafka worker's 010, 011, 018, 019 and 034
#                   (the bad-input corpora) and 033 (OpenTelemetry batches), or
#                   "all": every test/t/*.pl except those that kill server
#                   processes on purpose (a test doing kill('KILL', ...) is
#                   refused: its crashes could not be told from a sanitizer's)
#   --no-regress    with --tap: skip pg_regress, run only the TAP tests
# Environment: PG_CONFIG (default: PostgreSQL 15's), SANITIZE_SQL_TAP (the
# TESTS of --tap when the option is not given), SANITIZE_SQL_TIMEOUT
# (seconds allowed for pg_regress, and as much again for the TAP tests,
# default 1200), SANITIZE_SQL_JOBS (parallel build jobs, default: the number
# of cores).

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
SRC_DIR=$(pwd)
START=$(date +%s)

KEEP=0
WORK_PARENT=${TMPDIR:-/tmp}
TAP_SPEC=${SANITIZE_SQL_TAP:-}
RUN_REGRESS=1
while [ $# -gt 0 ]; do
	case $1 in
		--keep) KEEP=1 ;;
		--tap)
			if [ $# -lt 2 ] || [ -z "$2" ]; then
				echo "--tap needs a list of TAP tests, \"worker\" or \"all\"" >&2
				exit 2
			fi
			TAP_SPEC=$2
			shift
			;;
		--no-regress) RUN_REGRESS=0 ;;
		--workdir)
			[ $# -ge 2 ] || { echo "--workdir needs a directory" >&2; exit 2; }
			WORK_PARENT=$2
			shift
			;;
		-h | --help)
			sed -n '3,/^$/s/^# \{0,1\}//p' "$0"
			exit 0
			;;
		*) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# ---- the TAP tests to run (paths relative to the tree, as prove wants them)
#
# "worker": the worker's data path end to end -- resolution and anomalies
# (010), every dead-letter reason (011), a message failing every time (018),
# the hostile-input corpora, test/corpus/bad_input (019) and
# test/corpus/bad_otlp (034), and OpenTelemetry batches decoded into
# records (033).
TAP_WORKER="test/t/010_worker_basic.pl test/t/011_worker_dead_letters.pl
	test/t/018_worker_poison.pl test/t/019_worker_bad_input.pl test/t/033_otlp.pl
	test/t/034_worker_bad_otlp.pl"
# A test that kills server processes on purpose leaves "terminated by
# signal" in its server log, which here means a sanitizer abort.
KILLS_SERVER="kill\\([[:space:]]*['\"]?(SIG)?(KILL|ABRT|SEGV|BUS|9)['\"]?[[:space:]]*,"
TAP_TESTS=()
TAP_SKIPPED=()
if [ -n "$TAP_SPEC" ]; then
	skip_killers=0
	case $TAP_SPEC in
		worker) TAP_SPEC=$TAP_WORKER ;;
		all) TAP_SPEC='test/t/*.pl'; skip_killers=1 ;;
	esac
	# word splitting and globbing on purpose, in the tree (the current directory)
	for item in $TAP_SPEC; do
		test_file=$item
		numbered=()
		case $item in
			*[!0-9]*) ;;
			*) numbered=(test/t/"$item"_*.pl) ;;	# 019: test/t/019_*.pl
		esac
		for candidate in "$item" "test/t/$item" "test/t/$item.pl" "${numbered[@]}"; do
			if [ -f "$candidate" ]; then
				test_file=$candidate
				break
			fi
		done
		test_file=${test_file#./}
		case $test_file in
			test/t/*.pl) [ -f "$test_file" ] ;;
			*) false ;;
		esac || { echo "--tap: no TAP test $item (expected test/t/NAME.pl in $SRC_DIR)" >&2; exit 2; }
		if grep -Eq "$KILLS_SERVER" "$test_file"; then
			if [ "$skip_killers" -eq 1 ]; then
				TAP_SKIPPED+=("$test_file")
				continue
			fi
			echo "--tap: $test_file kills server processes on purpose; its crashes could not be told from a sanitizer's" >&2
			exit 2
		fi
		TAP_TESTS+=("$test_file")
	done
	[ "${#TAP_TESTS[@]}" -gt 0 ] || { echo "--tap: no test to run" >&2; exit 2; }
fi
if [ "$RUN_REGRESS" -eq 0 ] && [ "${#TAP_TESTS[@]}" -eq 0 ]; then
	echo "--no-regress needs --tap (nothing to run otherwise)" >&2
	exit 2
fi

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
export PG_CONFIG
TIMEOUT=${SANITIZE_SQL_TIMEOUT:-1200}
JOBS=${SANITIZE_SQL_JOBS:-$(nproc 2>/dev/null || echo 2)}
# The tests start their own server: ignore any connection settings around us.
unset PGHOST PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS
# Run from make (make sanitize-sql), the variables given on that make's
# command line reach every make below through MAKEFLAGS and override the
# environment: PG_CONFIG=... there would send the TAP tests to the installed
# PostgreSQL instead of the copy.  The makes here get what they need.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

# -fno-wrapv comes after PostgreSQL's -fwrapv: with -fwrapv signed overflow
# is defined behaviour and UBSan would not check it.
SANITIZE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -fno-wrapv"
# detect_leaks=0: PostgreSQL frees memory by context and at process exit, so
# leak reports would be noise.  abort_on_error=1: a report ends the backend
# with SIGABRT, which the postmaster treats as a crash (an exit status of 1
# would look like an ordinary FATAL exit).  allocator_may_return_null=1: an
# impossible allocation fails like with the C library's malloc.
ASAN_OPTS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:print_summary=1"
UBSAN_OPTS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:print_summary=1"

result() {
	local verdict=$1 detail=$2
	echo
	echo "sanitize_sql: $verdict: $detail ($(($(date +%s) - START)) s)"
}

fail_early() {
	echo "$1" >&2
	[ -n "${WORK:-}" ] && [ -d "$WORK" ] && echo "scratch directory kept: $WORK"
	result FAIL "$1"
	exit 1
}

# ---- prerequisites
command -v "$PG_CONFIG" >/dev/null 2>&1 || fail_early "pg_config not found: $PG_CONFIG"
command -v gcc >/dev/null 2>&1 || fail_early "gcc not found"
LIBASAN=$(gcc -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || fail_early "gcc's libasan.so not found (it comes with gcc: build-essential)"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
[ -x "$BINDIR/postgres" ] || fail_early "no postgres executable in $BINDIR"
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || fail_early "running as root needs a postgres user"
	RUN_AS=(runuser -u postgres --)
fi

mkdir -p "$WORK_PARENT" 2>/dev/null
WORK=$(mktemp -d "$WORK_PARENT/driftlock-sanitize.XXXXXX") ||
	fail_early "cannot create a scratch directory in $WORK_PARENT (use --workdir)"
echo "scratch directory: $WORK"
case $WORK in
	*[[:space:]\\\"]*) fail_early "the scratch directory's path must not contain blanks, quotes or backslashes" ;;
esac
if [ "${#RUN_AS[@]}" -gt 0 ]; then
	chown postgres: "$WORK" && runuser -u postgres -- test -w "$WORK" ||
		fail_early "the postgres user cannot reach $WORK (choose another --workdir)"
fi
BUILD=$WORK/src
PREFIX=$WORK/pg
REPORTS=$WORK/reports
mkdir -p "$BUILD" "$PREFIX" "$REPORTS"

# ---- 1. the sanitized build, in a copy of the tree
echo "==== build (ASan + UBSan) in a copy of the tree"
tar -C "$SRC_DIR" -cf - --exclude=./.git --exclude='*.o' --exclude='*.so' \
	--exclude='*.bc' --exclude='./tmp_check*' --exclude=./results --exclude=./log \
	--exclude=./regression.diffs --exclude=./regression.out . |
	tar -C "$BUILD" -xf - || fail_early "copying the source tree failed"
if ! make -C "$BUILD" --no-print-directory -j"$JOBS" COPT="$SANITIZE_CFLAGS" \
	>"$WORK/build.log" 2>&1; then
	grep -E ': (error|warning): |\*\*\*' "$WORK/build.log" | head -n 40
	fail_early "sanitized build failed (log: $WORK/build.log)"
fi
echo "built driftlock.so with $SANITIZE_CFLAGS"
if [ "${#TAP_TESTS[@]}" -gt 0 ]; then
	# the copy may hold the tree's own builds of the tools: make them anew
	if ! make -C "$BUILD" --no-print-directory -B tools >>"$WORK/build.log" 2>&1; then
		grep -E ': (error|warning): |\*\*\*' "$WORK/build.log" | head -n 40
		fail_early "building the test tools failed (log: $WORK/build.log)"
	fi
	echo "built the test tools (make tools, without sanitizers)"
fi

# ---- 2. a private copy of PostgreSQL holding the sanitized build
echo "==== private copy of PostgreSQL under $PREFIX"
for dir in "$BINDIR" "$PKGLIBDIR" "$SHAREDIR"; do
	[ -e "$PREFIX$dir" ] && continue	# already copied as part of another
	mkdir -p "$PREFIX$(dirname "$dir")" && cp -a "$dir" "$PREFIX$dir" ||
		fail_early "copying $dir failed"
done
# PostgreSQL locates its files relative to its executables: check that the
# copy does, rather than finding out from a confusing test failure.
for pair in "bindir:$BINDIR" "sharedir:$SHAREDIR" "pkglibdir:$PKGLIBDIR"; do
	got=$("$PREFIX$BINDIR/pg_config" "--${pair%%:*}")
	[ "$got" = "$PREFIX${pair#*:}" ] ||
		fail_early "the copied PostgreSQL is not relocatable: pg_config --${pair%%:*} says $got"
done
if ! make -C "$BUILD" --no-print-directory install DESTDIR="$PREFIX" >>"$WORK/build.log" 2>&1; then
	tail -n 20 "$WORK/build.log"
	fail_early "make install DESTDIR=$PREFIX failed"
fi
cmp -s "$BUILD/driftlock.so" "$PREFIX$PKGLIBDIR/driftlock.so" ||
	fail_early "the sanitized driftlock.so is not in the copy"

# ---- 3. the postgres wrapper and its preloaded helper
#
# Two problems of sanitizer runtimes in an executable not built with them,
# both solved by a small library preloaded after libasan:
#
# - gcc's ASan runtime initialises lazily when preloaded.  Here the first
#   intercepted call comes from a library constructor (libp11-kit's, through
#   GnuTLS) that holds the C library's locale lock; the initialisation looks
#   up the symbol "swift_demangle", fails, and calls dlerror(), which
#   translates its message and takes the same lock: the lock ends up
#   corrupted and the process hangs a moment later in bindtextdomain().
#   Defining swift_demangle (never called for C symbols) makes the lookup
#   succeed.
#
# - the UBSan runtime is loaded with driftlock.so and initialises at its
#   first report.  It reads UBSAN_OPTIONS from /proc/self/environ, which by
#   then shows PostgreSQL's process title (written over the original
#   environment block), and would run with its defaults: report on stderr
#   without a stack trace, exit with status 1.  The runtime also reads
#   __ubsan_default_options(), defined here.
cat >"$WORK/sanitizer_helper.c" <<END_OF_C
/* preloaded into the sanitized postgres (written by test/sanitize_sql.sh) */
#include <stddef.h>

char	   *swift_demangle(const char *name, size_t len, char *out, size_t *outlen, unsigned flags);
const char *__ubsan_default_options(void);

char *
swift_demangle(const char *name, size_t len, char *out, size_t *outlen, unsigned flags)
{
	(void) name;
	(void) len;
	(void) out;
	(void) outlen;
	(void) flags;
	return NULL;
}

const char *
__ubsan_default_options(void)
{
	return "$UBSAN_OPTS:log_path=$REPORTS/ubsan";
}
END_OF_C
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$WORK/sanitizer_helper.so" "$WORK/sanitizer_helper.c" ||
	fail_early "building sanitizer_helper.so failed"

mv "$PREFIX$BINDIR/postgres" "$PREFIX$BINDIR/postgres.bin" || fail_early "cannot move postgres"
cat >"$PREFIX$BINDIR/postgres" <<END_OF_WRAPPER
#!/bin/bash
# postgres with the sanitizer runtime preloaded (written by test/sanitize_sql.sh)
export LD_PRELOAD="$LIBASAN:$WORK/sanitizer_helper.so\${LD_PRELOAD:+:\$LD_PRELOAD}"
export ASAN_OPTIONS="$ASAN_OPTS:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="$UBSAN_OPTS:log_path=$REPORTS/ubsan"
# one line per start: shows that the tests' servers came from this copy
printf '%s\\n' "\$*" >>"$WORK/postgres_runs.log" 2>/dev/null
exec -a "\$0" "\$0.bin" "\$@"
END_OF_WRAPPER
chmod 755 "$PREFIX$BINDIR/postgres"
"$PREFIX$BINDIR/postgres" -V >/dev/null 2>&1 ||
	fail_early "the wrapped postgres does not start ($PREFIX$BINDIR/postgres -V)"

# ---- 4. the tests
if [ "${#RUN_AS[@]}" -gt 0 ]; then
	chown -R postgres: "$WORK" || fail_early "chown of $WORK failed"
	echo "database tests run as postgres"
fi
regress_rc=0
if [ "$RUN_REGRESS" -eq 1 ]; then
	echo "==== pg_regress (make installcheck) against the sanitized build"
	(cd "$BUILD" && "${RUN_AS[@]}" env PG_CONFIG="$PG_CONFIG" \
		timeout --kill-after=30 "$TIMEOUT" \
		make --no-print-directory installcheck EXTRA_REGRESS_OPTS="--bindir=$PREFIX$BINDIR") 2>&1 |
		tee "$WORK/regress.log"
	regress_rc=${PIPESTATUS[0]}
fi

# stop_leftover PIDFILE: a timeout may leave a server behind; stop it by its pid
stop_leftover() {
	local pm
	[ -f "$1" ] || return 0
	pm=$(head -n 1 "$1")
	if [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; then
		echo "stopping a leftover server (pid $pm, $1)"
		kill -QUIT "$pm" 2>/dev/null
	fi
}
stop_leftover "$BUILD/tmp_check_regress/data/postmaster.pid"

# ---- 5. the TAP tests
#
# PGXS's prove_installcheck puts the bindir of PG_CONFIG -- the copy's --
# first in PATH, where PostgreSQL::Test::Cluster looks for initdb, pg_ctl
# and psql; pg_ctl and initdb start the postgres next to them: the wrapper.
# PATH is set here too, for anything started outside that macro.
tap_rc=0
if [ "${#TAP_TESTS[@]}" -gt 0 ]; then
	echo "==== TAP tests (make prove) against the sanitized build: ${TAP_TESTS[*]}"
	[ "${#TAP_SKIPPED[@]}" -gt 0 ] &&
		echo "not run (they kill server processes on purpose): ${TAP_SKIPPED[*]}"
	tap_start=$(date +%s)
	(cd "$BUILD" && "${RUN_AS[@]}" env PG_CONFIG="$PREFIX$BINDIR/pg_config" \
		PATH="$PREFIX$BINDIR:$PATH" \
		timeout --kill-after=30 "$TIMEOUT" \
		make --no-print-directory prove PG_CONFIG="$PREFIX$BINDIR/pg_config" \
		PROVE_TESTS="${TAP_TESTS[*]}" PROVE_FLAGS=--timer) 2>&1 |
		tee "$WORK/tap.log"
	tap_rc=${PIPESTATUS[0]}
	tap_seconds=$(($(date +%s) - tap_start))
	# PostgreSQL::Test::Cluster's data directories: tmp_check/t_<test>_<node>_data/pgdata
	for pidfile in "$BUILD"/tmp_check/t_*_data/pgdata/postmaster.pid; do
		stop_leftover "$pidfile"
	done
fi

# ---- verdict
problems=()
summaries=()
if [ "$RUN_REGRESS" -eq 1 ]; then
	# pg_regress's own summary ("All 7 tests passed.", "2 of 7 tests failed.")
	tests_line=$(grep -hE 'tests? (passed|failed)' "$WORK/regress.log" 2>/dev/null | tail -n 1 |
		sed 's/^[[:space:]]*//; s/[.[:space:]]*$//')
	tests_summary=$(echo "$tests_line" | sed 's/^All \([0-9]*\) tests passed$/all \1 pg_regress tests passed/')
	summaries+=("${tests_summary:-pg_regress tests passed}")
	if [ "$regress_rc" -eq 124 ] || [ "$regress_rc" -eq 137 ]; then
		problems+=("the tests did not finish within $TIMEOUT s")
	elif [ "$regress_rc" -ne 0 ]; then
		problems+=("pg_regress failed (${tests_line:-exit status $regress_rc})")
		if [ -s "$BUILD/regression.diffs" ]; then
			echo
			echo "---- regression.diffs (first 200 lines; all of it in $BUILD/regression.diffs)"
			head -n 200 "$BUILD/regression.diffs"
		fi
	fi
fi

if [ "${#TAP_TESTS[@]}" -gt 0 ]; then
	# prove's summary: "Files=4, Tests=249, 47 wallclock secs (...)", and on
	# failure "Failed 1/4 test programs. 2/249 subtests failed." or, after a
	# test bailed out, "FAILED--Further testing stopped: pg_ctl stop failed"
	tap_counts=$(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 TAP test files (\2 tests)/p' "$WORK/tap.log" | tail -n 1)
	tap_failed=$(grep -E '^(Failed [0-9]+/[0-9]+ test programs|FAILED--)' "$WORK/tap.log" | tail -n 1 |
		sed 's/^FAILED--//; s/[.[:space:]]*$//')
	summaries+=("${tap_counts:-TAP tests} passed in $tap_seconds s")
	if [ "$tap_rc" -eq 124 ] || [ "$tap_rc" -eq 137 ]; then
		problems+=("the TAP tests did not finish within $TIMEOUT s")
	elif [ "$tap_rc" -ne 0 ] || [ -n "$tap_failed" ]; then
		problems+=("TAP tests failed (${tap_failed:-exit status $tap_rc})")
	fi
	# the test log of every failed test, from prove's "Test Summary Report"
	for t in $(sed -n 's/^\(test\/t\/[^ ]*\.pl\) (Wstat: .*/\1/p' "$WORK/tap.log" | sort -u); do
		log=$BUILD/tmp_check/log/regress_log_$(basename "$t" .pl)
		[ -f "$log" ] || continue
		echo
		echo "---- tail of $log"
		tail -n 40 "$log"
	done
	if [ "$tap_rc" -ne 124 ] && [ "$tap_rc" -ne 137 ] &&
		! grep -qF "$BUILD/tmp_check/t_" "$WORK/postgres_runs.log" 2>/dev/null; then
		problems+=("no server of the TAP tests was started through the sanitized copy ($PREFIX$BINDIR)")
	fi
fi

# Sanitizer reports: the files written through log_path, and anything that
# reached a server or initdb log (the postgres -V check above, say): those
# of pg_regress and the TAP tests' server logs (tmp_check/log/*.log; the
# tests' own logs there, regress_log_*, are not servers').
reports=$(find "$REPORTS" -type f -size +0c 2>/dev/null | sort)
logs=$(find "$BUILD/log" "$BUILD/tmp_check_regress/log" "$BUILD/tmp_check/log" \
	-type f -name '*.log' 2>/dev/null | sort)
pattern='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'
if [ -n "$reports" ]; then
	problems+=("sanitizer reports: $(echo "$reports" | wc -l) file(s) in $REPORTS")
	for f in $reports; do
		echo
		echo "---- $f (first 60 lines)"
		head -n 60 "$f"
	done
fi
if [ -n "$logs" ] && grep -hE "$pattern" $logs >/dev/null 2>&1; then
	problems+=("sanitizer messages in the server log")
	echo
	echo "---- sanitizer reports in the server logs (first 80 lines)"
	grep -E -A 30 "$pattern" $logs | head -n 80
fi
if [ -n "$logs" ]; then
	crashes=$(grep -E 'terminated by signal|terminating any other active server processes' $logs 2>/dev/null | head -n 10)
	if [ -n "$crashes" ]; then
		problems+=("server processes crashed")
		echo
		echo "---- crashes in the server logs"
		echo "$crashes"
	fi
fi

verdict_details=$(IFS=';'; echo "${summaries[*]}" | sed 's/;/, /g')
if [ "${#problems[@]}" -eq 0 ]; then
	if [ "$KEEP" -eq 1 ]; then
		echo "scratch directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	result PASS "$verdict_details, driftlock built with ASan + UBSan, no sanitizer report"
	exit 0
fi
echo
where=()
[ "$RUN_REGRESS" -eq 1 ] && where+=("pg_regress's server log: $BUILD/log/postmaster.log")
[ "${#TAP_TESTS[@]}" -gt 0 ] && where+=("TAP logs: $BUILD/tmp_check/log")
echo "scratch directory kept: $WORK ($(IFS=';'; echo "${where[*]}" | sed 's/;/; /g'))"
result FAIL "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
exit 1
