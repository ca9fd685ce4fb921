#!/usr/bin/env bash
#
# test/run_all.sh -- the driftlock test command.
#
# On Debian 12, as root: installs the build and test dependencies with apt
# (skipped when they are all installed), builds with -Werror, installs the
# extension, and runs every test: C unit tests (also under ASan/UBSan),
# pg_regress tests (make installcheck, on a temporary instance) and TAP tests
# (make prove), plus the reliability checks: a static check of the SPI
# statements, valgrind over the unit tests, libFuzzer targets for
# FUZZ_SECONDS each, and the pg_regress tests and the Kafka worker's TAP
# tests against an ASan/UBSan build (see docs/testing.md); then the build,
# pg_regress and the worker's TAP tests on PostgreSQL 17 and 18, in Debian
# chroots (test/other_pg.sh; OTHER_PG="" skips them).  PostgreSQL refuses
# to run as root, so as root the database tests run as the postgres user in
# a copy of the tree under /tmp.
#
# Prints one line per step and, last, "N passed, N failed"; exits non-zero
# when any step failed.  Environment: PG_CONFIG (default: PostgreSQL 15's),
# FUZZ_SECONDS (default 20).

set -uo pipefail

cd "$(dirname "$0")/.."
SRC_DIR=$(pwd)

PACKAGES=(postgresql-15 postgresql-server-dev-15 librdkafka-dev libzstd-dev kcat
	libipc-run-perl build-essential pgtap clang valgrind jq
	prometheus prometheus-postgres-exporter curl mmdebstrap)

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
export PG_CONFIG
# Seconds each libFuzzer target runs (make fuzz); longer runs: docs/testing.md
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
# Other PostgreSQL major versions tested in chroots (test/other_pg.sh)
OTHER_PG=${OTHER_PG-17 18}
# Tests start their own servers: ignore any connection settings around us.
unset PGHOST PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS

MAKE=(make --no-print-directory -j"$(nproc 2>/dev/null || echo 2)")
is_root() { [ "$(id -u)" -eq 0 ]; }

passed=0
failed=0
summary=()
stop_now=0

# run_step NAME COMMAND...: run one step and record its result
# Both run on one core each for minutes: side by side on the two cores
# they take the time of the longer.  The valgrind log follows the fuzzing's.
valgrind_and_fuzz() {
	local log rc=0
	log=$(mktemp /tmp/driftlock-valgrind.XXXXXX)
	"${MAKE[@]}" valgrind >"$log" 2>&1 &
	local pid=$!
	"${MAKE[@]}" fuzz FUZZ_SECONDS="$FUZZ_SECONDS" || rc=1
	wait "$pid" || rc=1
	echo "---- valgrind memcheck"
	cat "$log"
	rm -f "$log"
	return "$rc"
}

run_step() {
	local name=$1
	shift
	if [ "$stop_now" -eq 1 ]; then
		summary+=("skip  $name")
		return 0
	fi
	echo
	echo "==== $name"
	local start=$SECONDS
	if "$@"; then
		passed=$((passed + 1))
		summary+=("ok    $name ($((SECONDS - start)) s)")
		return 0
	fi
	failed=$((failed + 1))
	summary+=("FAIL  $name ($((SECONDS - start)) s)")
	return 1
}

install_dependencies() {
	local missing=() pkg
	for pkg in "${PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "all packages installed"
		return 0
	fi
	if ! is_root; then
		echo "missing packages: ${missing[*]} (run as root to install them)" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# prometheus and prometheus-postgres-exporter start their services at
	# install, and a start that fails (no init system, say) fails the
	# install: forbid service starts meanwhile, unless a policy is in place
	local policy=/usr/sbin/policy-rc.d own_policy=0 rc
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# test/run_all.sh: no service starts during its apt-get install\nexit 101\n' >"$policy" &&
			chmod 0755 "$policy" && own_policy=1
	fi
	# a mirror hiccup should not fail the whole run: try up to three times
	local attempt
	for attempt in 1 2 3; do
		apt-get update -qq &&
			apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
		rc=$?
		[ "$rc" -eq 0 ] && break
		echo "apt-get failed (attempt $attempt of 3)" >&2
		sleep $((attempt * 10))
	done
	if [ "$own_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
	return "$rc"
}

# META.json is valid JSON and its versions equal the control file's
check_metadata() {
	local control_version
	control_version=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" driftlock.control)
	echo "driftlock.control default_version: $control_version"
	jq -e --arg v "$control_version" \
		'.version == $v and .provides.driftlock.version == $v and ."meta-spec".version == "1.0.0"' \
		META.json >/dev/null &&
		[ -f "sql/parts/$control_version.sql" ]
}

build() {
	"${MAKE[@]}" clean >/dev/null && "${MAKE[@]}"
}

install_extension() {
	if is_root || [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
		"${MAKE[@]}" install
	else
		sudo -n "${MAKE[@]}" install
	fi
}

# Where the database tests run: the tree itself, or as root a copy owned by
# postgres (the checkout may sit where postgres cannot read, e.g. /root).
TEST_DIR=$SRC_DIR
RUN_AS=()
prepare_test_tree() {
	if ! is_root; then
		return 0
	fi
	TEST_DIR=$(mktemp -d /tmp/driftlock-test.XXXXXX) || return 1
	tar -C "$SRC_DIR" -cf - --exclude=./.git --exclude='./tmp_check*' \
		--exclude=./results . | tar -C "$TEST_DIR" -xf - &&
		chown -R postgres: "$TEST_DIR" &&
		RUN_AS=(runuser -u postgres --) &&
		echo "database tests run as postgres in $TEST_DIR"
}

in_test_tree() {
	(cd "$TEST_DIR" && "${RUN_AS[@]}" env PG_CONFIG="$PG_CONFIG" "$@")
}

regress_tests() {
	if in_test_tree "${MAKE[@]}" installcheck; then
		return 0
	fi
	if [ -f "$TEST_DIR/regression.diffs" ]; then
		echo "---- regression.diffs"
		cat "$TEST_DIR/regression.diffs"
	fi
	return 1
}

tap_tests() {
	if in_test_tree "${MAKE[@]}" tools && in_test_tree make --no-print-directory prove PROVE_FLAGS=-j2; then
		return 0
	fi
	local log
	for log in "$TEST_DIR"/tmp_check/log/regress_log_*; do
		[ -f "$log" ] || continue
		echo "---- tail of $log"
		tail -n 40 "$log"
	done
	return 1
}

run_step "dependencies" install_dependencies || stop_now=1
run_step "metadata (META.json, control file)" check_metadata
run_step "build (-Wall -Wextra -Werror)" build || stop_now=1
run_step "install" install_extension || stop_now=1
run_step "static check: every SPI statement parameterised" test/check_spi_parameterised.sh
run_step "exported symbols: only PostgreSQL's entry points" test/check_exports.sh
run_step "unit tests" "${MAKE[@]}" unit
run_step "unit tests (ASan/UBSan)" "${MAKE[@]}" unit SANITIZE=1
run_step "unit tests (valgrind memcheck) beside fuzzing (libFuzzer, ${FUZZ_SECONDS} s per target)" \
	valgrind_and_fuzz
run_step "pg_regress + Kafka worker TAP tests (ASan/UBSan build)" test/sanitize_sql.sh --tap worker
run_step "benchmarks build" "${MAKE[@]}" bench-build
run_step "prepare test tree" prepare_test_tree || stop_now=1
run_step "pg_regress tests (make installcheck)" regress_tests
run_step "TAP tests (make prove)" tap_tests
for v in $OTHER_PG; do
	run_step "PostgreSQL $v: build, pg_regress, worker TAP tests (Debian chroot)" test/other_pg.sh "$v"
done

# Leave a failed run's tree for inspection; remove a successful one.
if [ "$TEST_DIR" != "$SRC_DIR" ]; then
	if [ "$failed" -eq 0 ]; then
		rm -rf "$TEST_DIR"
	else
		echo
		echo "test tree kept in $TEST_DIR"
	fi
fi

echo
echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
