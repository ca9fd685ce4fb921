#!/bin/sh
#
# node_exporter_textfile.sh -- write driftlock's metrics for node_exporter's
# textfile collector.
#
#   node_exporter_textfile.sh [-d DIR] [-f FILE] [-- PSQL_OPTIONS...]
#
# Runs "SELECT driftlock_prometheus()" with psql and replaces DIR/FILE
# (default /var/lib/prometheus/node-exporter/driftlock.prom, the directory
# of Debian's prometheus-node-exporter) atomically: the text goes to a
# temporary file in DIR, whose name does not end in .prom so that the
# collector never reads it half-written, and is renamed over FILE.  On any
# error FILE is left as it was and the script exits non-zero; alert on
# node_textfile_mtime_seconds{file="driftlock.prom"} to notice a stale file.
#
# The connection comes from the usual libpq variables (PGHOST, PGPORT,
# PGDATABASE, PGUSER, ...) or from psql options after "--"; connect to the
# database where the extension is installed.  Any role can read the
# metrics.  Example crontab line (user postgres, every minute):
#
#   * * * * * /usr/local/bin/node_exporter_textfile.sh -- -d mydb
#
# The directory must be writable by the user running the script.

set -eu

dir=/var/lib/prometheus/node-exporter
file=driftlock.prom

while [ $# -gt 0 ]; do
	case $1 in
	-d) dir=$2; shift 2 ;;
	-f) file=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '3,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: $0 [-d DIR] [-f FILE] [-- PSQL_OPTIONS...]" >&2; exit 2 ;;
	esac
done

case $file in
*.prom) ;;
*) echo "$0: FILE must end in .prom (the collector reads only those)" >&2; exit 2 ;;
esac

tmp=$(mktemp "$dir/.$file.XXXXXX")
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# -X: no psqlrc; -A -t: the text alone; ON_ERROR_STOP: a failed query is a
# non-zero exit status
psql -X -A -t -q -v ON_ERROR_STOP=1 -c 'SELECT driftlock_prometheus()' "$@" >"$tmp"
if [ ! -s "$tmp" ]; then
	echo "$0: driftlock_prometheus() returned nothing" >&2
	exit 1
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/$file"
trap - EXIT
