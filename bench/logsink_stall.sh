#!/bin/bash
#
# logsink_stall.sh: issue 5's stalled-disk check. echod writes its access
# log (one line per connection) either to a regular file or into a FIFO
# whose reader never reads, so that the sink's write stalls for good once
# the pipe is full. echoload drives the same open-loop connect-mode load
# at a rate the server keeps up with, and we compare the echo latency
# percentiles of the two runs, and echod's memory growth in the stalled run
# against the configured [log] buffer. Runs alternate file/FIFO REPS times.
# Expected: p99 (stalled) / p99 (file) within noise, memory growth within
# the buffer bound (the sink's buffer plus the hand-off queue's, each
# `buffer`), and lines dropped counted.
#
# usage: bench/logsink_stall.sh [BUILD_DIR]
# environment: REPS (3), RATE (4000), DURATION (4s), BUFFER (1m), PORT (17230)

set -eu
BUILD=${1:-build}
ECHOD=$BUILD/server/echod
ECHOLOAD=$BUILD/client/echoload
REPS=${REPS:-3}
RATE=${RATE:-4000}
DURATION=${DURATION:-4s}
BUFFER=${BUFFER:-1m}
PORT=${PORT:-17230}
PY=/usr/bin/python3

for f in "$ECHOD" "$ECHOLOAD"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
TMP=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

# run file|fifo: prints "p50 p99 p999 rss_growth_kib errors"; the growth
# is from just after startup to the end of the load
run() {
	local log="$TMP/access.log"
	rm -f "$log"
	if [ "$1" = fifo ]; then
		mkfifo "$log"
		exec 3<>"$log"		# a reader that never reads
	fi
	cat >"$TMP/echod.conf" <<CONF
[server]
workers = 1
[listen main]
address = 127.0.0.1:$PORT
[log]
error_log = $TMP/error.log
access_log = $log
buffer = $BUFFER
CONF
	"$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/stderr" &
	PID=$!
	for _ in $(seq 100); do
		"$ECHOLOAD" -q -t 1 -c 1 -n 1 127.0.0.1:$PORT >/dev/null 2>&1 &&
		    break
		sleep 0.05
	done
	local before
	before=$(rss_kib $PID)
	# Fill the pipe and the buffers first, so the measured part runs
	# with the sink stalled from its start.
	"$ECHOLOAD" -q -t 1 -c 20 -m connect -d 2s 127.0.0.1:$PORT \
	    >/dev/null 2>&1 || true
	"$ECHOLOAD" -q -t 1 -c 20 -m connect -R $RATE -d $DURATION \
	    --json "$TMP/r.json" 127.0.0.1:$PORT >/dev/null 2>&1 || true
	local after
	after=$(rss_kib $PID)
	kill $PID; wait $PID 2>/dev/null || true
	PID=
	[ "$1" = fifo ] && exec 3<&-
	$PY - "$TMP/r.json" $((after - before)) <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(l["p50"], l["p99"], l["p99_9"], sys.argv[2], r["errors"])
PYEOF
}

echo "logsink_stall: connect mode, open loop $RATE/s for $DURATION, buffer $BUFFER, 1 worker"
printf "%-6s %10s %10s %10s %14s %7s\n" log p50_us p99_us p99.9_us rss_growth_KiB errors
: >"$TMP/file.txt"; : >"$TMP/fifo.txt"
for _ in $(seq "$REPS"); do
	for mode in file fifo; do
		line=$(run $mode)
		echo "$line" >>"$TMP/$mode.txt"
		printf "%-6s %10s %10s %10s %14s %7s\n" $mode $line
	done
done
$PY - "$TMP/file.txt" "$TMP/fifo.txt" "$BUFFER" <<'PYEOF'
import statistics, sys
def col(path, i):
    return [float(l.split()[i]) for l in open(path) if l.strip()]
f99, s99 = statistics.median(col(sys.argv[1], 1)), statistics.median(col(sys.argv[2], 1))
grow = max(col(sys.argv[2], 3))
unit = {"k": 1, "m": 1024, "g": 1024 * 1024}
b = sys.argv[3]
buf_kib = float(b[:-1]) * unit[b[-1].lower()] if b[-1].isalpha() else float(b) / 1024
print(f"median p99: file {f99:.0f} us, stalled fifo {s99:.0f} us, ratio {s99 / f99:.2f}")
print(f"largest RSS growth while stalled: {grow:.0f} KiB (bound: 2 x buffer = {2 * buf_kib:.0f} KiB)")
PYEOF
