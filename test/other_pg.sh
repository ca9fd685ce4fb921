#!/usr/bin/env bash
#
# test/other_pg.sh NN -- driftlock on PostgreSQL NN (17: Debian trixie, 18:
# Debian sid), in a Debian chroot: the build with -Werror, the exported
# symbols, the pg_regress suite and the worker's TAP tests.
#
# The chroot is made with mmdebstrap the first time (about a minute and a
# half) and kept under DRIFTLOCK_CHROOTS (default
# /var/cache/driftlock-chroots)/pgNN; it is made again when missing or when
# the package list below changed.  The tree (as it is in the working copy)
# is copied into it and built and tested there as an ordinary user, since
# initdb refuses root.  Needs root (chroot, mounts) and Debian's archive
# (DEBIAN_MIRROR, default http://deb.debian.org/debian).  TAP_TESTS (default
# 001, 002, 003, 010-019, 020, 023-027, 029, 031, 032, 034, 041-043) chooses the
# TAP tests.  Exits 0 when everything passed.
set -euo pipefail

usage() { echo "usage: $0 17|18" >&2; exit 2; }
[ $# -eq 1 ] || usage
V=$1
case "$V" in
	17) SUITE=trixie ;;
	18) SUITE=sid ;;
	*) usage ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "$0 needs root (chroot and mounts)" >&2; exit 2; }

SRC=$(cd "$(dirname "$0")/.." && pwd)
CHROOTS=${DRIFTLOCK_CHROOTS:-/var/cache/driftlock-chroots}
ROOTFS=$CHROOTS/pg$V
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES="postgresql-$V,postgresql-server-dev-$V,postgresql-$V-partman,librdkafka-dev,libzstd-dev,kcat,libipc-run-perl,build-essential,perl"
STAMP=$ROOTFS/.driftlock-chroot
PG_CONFIG=/usr/lib/postgresql/$V/bin/pg_config
TAP_TESTS=${TAP_TESTS:-"test/t/001_preload.pl test/t/002_no_preload.pl test/t/003_mock_kafka.pl
	test/t/01[0-9]_*.pl test/t/020_metrics.pl test/t/023_checkpoint_replay.pl
	test/t/024_standby_failover.pl test/t/025_two_instances.pl test/t/026_retention.pl
	test/t/027_misconfiguration.pl test/t/029_consumer_options.pl test/t/031_message_metadata.pl
	test/t/032_auto_create_streams.pl test/t/033_otlp.pl test/t/034_worker_bad_otlp.pl
	test/t/04[1-3]_*.pl"}
# not into make's environment: TAP_TESTS=1 is what makes PGXS's installcheck
# run prove too
export -n TAP_TESTS

step() { echo "-- PostgreSQL $V: $*"; }

# ---- the chroot
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$SUITE $PACKAGES" ]; then
	command -v mmdebstrap >/dev/null || {
		step "installing mmdebstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
	}
	step "making the $SUITE chroot in $ROOTFS (once)"
	rm -rf "$ROOTFS" "$ROOTFS.new"
	mkdir -p "$CHROOTS"
	# sid's Release file may be past its Valid-Until on a mirror snapshot
	mmdebstrap --variant=apt --include="$PACKAGES" \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--customize-hook='chroot "$1" useradd --create-home tester' \
		"$SUITE" "$ROOTFS.new" "$MIRROR" >"$CHROOTS/pg$V.log" 2>&1 ||
		{ tail -20 "$CHROOTS/pg$V.log" >&2; exit 1; }
	echo "$SUITE $PACKAGES" >"$ROOTFS.new/.driftlock-chroot"
	mv "$ROOTFS.new" "$ROOTFS"
fi
step "$(chroot "$ROOTFS" "$PG_CONFIG" --version), $(chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}, ' librdkafka-dev libzstd-dev)"

# ---- mounts for PostgreSQL (shared memory, /proc), undone on exit
cleanup() {
	umount -R "$ROOTFS/dev" 2>/dev/null || true
	umount "$ROOTFS/proc" 2>/dev/null || true
}
trap cleanup EXIT
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
if ! mountpoint -q "$ROOTFS/dev"; then
	mount --rbind /dev "$ROOTFS/dev"
	mount --make-rslave "$ROOTFS/dev"
fi

# ---- the tree, as in the working copy, without build products
BUILD=/home/tester/driftlock
rm -rf "${ROOTFS:?}$BUILD"
mkdir -p "$ROOTFS$BUILD"
(cd "$SRC" && tar --exclude=./.git --exclude='./tmp_check*' --exclude=./results \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - .) | tar -C "$ROOTFS$BUILD" -xf -
(cd "$ROOTFS$BUILD" && rm -f regression.diffs regression.out test/tools/mock_kafka \
	test/tools/demo_producer test/tools/produce_raw test/tools/kafka_committed \
	sql/driftlock--0.2.0.sql sql/driftlock--0.1.0--0.2.0.sql)
chroot "$ROOTFS" chown -R tester: "$BUILD"

# without TAP_TESTS: in make's environment, PGXS would run prove on t/*.pl
# as part of installcheck
as_tester() { chroot "$ROOTFS" runuser -u tester -- env -u TAP_TESTS bash -c "cd $BUILD && $*"; }

fail=0
step "build (-Wall -Wextra -Werror)"
as_tester "make -s PG_CONFIG=$PG_CONFIG && make -s PG_CONFIG=$PG_CONFIG tools"
chroot "$ROOTFS" make -s -C "$BUILD" PG_CONFIG="$PG_CONFIG" install >/dev/null

step "exported symbols"
as_tester "test/check_exports.sh" || fail=1

step "pg_regress (make installcheck)"
if ! as_tester "make --no-print-directory PG_CONFIG=$PG_CONFIG installcheck"; then
	head -100 "$ROOTFS$BUILD/regression.diffs" 2>/dev/null || true
	fail=1
fi

step "TAP tests: $(echo $TAP_TESTS | tr -s ' \t\n' ' ')"
# shellcheck disable=SC2086
if ! as_tester "make --no-print-directory PG_CONFIG=$PG_CONFIG prove PROVE_FLAGS=-j2 PROVE_TESTS='$(echo $TAP_TESTS)'"; then
	for log in "$ROOTFS$BUILD"/tmp_check/log/regress_log_*; do
		grep -q '^not ok\|not ok ' "$log" 2>/dev/null || continue
		echo "---- failures in $log"
		grep -A8 'not ok' "$log" | head -40 || true
	done
	fail=1
fi

if [ "$fail" -eq 0 ]; then
	step "all passed"
else
	step "FAILED"
fi
exit "$fail"
