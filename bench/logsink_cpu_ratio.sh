#!/bin/bash
#
# logsink_cpu_ratio.sh: echod's CPU per echoed message with the access log
# on (one line per connection, to a file, through the aio sink) against the
# same run with it off. Load: echoload in connect mode (one message per
# connection, so one access-log line per message). echod runs with one
# worker, pinned apart from the client; its CPU time is the sum over its
# threads (glibc's aio helper threads included) of /proc/PID/task/*/schedstat
# run time, taken while echod still runs, divided by the requests echoload
# completed. Runs alternate off/on REPS times; the median of each is used.
# Target: ratio <= 1.15.
#
# usage: bench/logsink_cpu_ratio.sh [BUILD_DIR]
# environment: ECHOD, ECHOLOAD (binaries), SERVER_CPU (0), CLIENT_CPU (1),
# REPS (5), DURATION (3s), CONNS (50), PORT (17210)

set -eu

BUILD=${1:-build}
ECHOD=${ECHOD:-$BUILD/server/echod}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-5}
DURATION=${DURATION:-3s}
CONNS=${CONNS:-50}
PORT=${PORT:-17210}
TARGET=1.15

for f in "$ECHOD" "$ECHOLOAD"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "$0: taskset not found" >&2; exit 1; }

TMP=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/lib.sh"	# cpu_ns

# run MODE (off|on): prints "ns_per_request lines requests"
run() {
	local access=off
	[ "$1" = on ] && access="$TMP/access.log"
	rm -f "$TMP/access.log"
	cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1
shutdown_timeout = 10s
[listen main]
address = 127.0.0.1:$PORT
[log]
error_log = $TMP/error.log
access_log = $access
access_format = text
EOF
	taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/stderr" &
	PID=$!
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
		sleep 0.05
	done
	local before after
	before=$(cpu_ns "$PID")
	taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q -m connect -c "$CONNS" -t 1 \
	    -d "$DURATION" --json "$TMP/load.json" "127.0.0.1:$PORT" >/dev/null
	# Let the last lines reach the file before reading the clock.
	sleep 0.1
	after=$(cpu_ns "$PID")
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
	local reqs lines=0
	reqs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$TMP/load.json")
	[ "$1" = on ] && lines=$(wc -l <"$TMP/access.log")
	echo "$(( (after - before) / reqs )) $lines $reqs"
}

echo "# $(uname -sr), $(nproc) CPUs; echod 1 worker on CPU $SERVER_CPU, echoload -m connect -c $CONNS -t 1 -d $DURATION on CPU $CLIENT_CPU"
offs=()
ons=()
for i in $(seq "$REPS"); do
	read -r off_ns _ off_reqs < <(run off)
	read -r on_ns on_lines on_reqs < <(run on)
	echo "rep $i: off ${off_ns} ns/msg ($off_reqs msgs); on ${on_ns} ns/msg ($on_reqs msgs, $on_lines access-log lines)"
	offs+=("$off_ns")
	ons+=("$on_ns")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
moff=$(median "${offs[@]}")
mon=$(median "${ons[@]}")
ratio=$(awk -v a="$mon" -v b="$moff" 'BEGIN { printf "%.3f", a / b }')
echo "median: off $moff ns/msg, on $mon ns/msg, ratio $ratio (target <= $TARGET)"
awk -v r="$ratio" -v t="$TARGET" 'BEGIN { exit !(r <= t) }'
