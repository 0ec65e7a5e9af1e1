#!/bin/bash
#
# server_cpu.sh: echod's CPU cost per echoed message against the raw-epoll
# baseline (bench/epoll_echo), measured in the same run with the same
# third-party client (redis-benchmark: an echoed RESP request is a valid
# reply). Server and client are pinned to different cores; the server's CPU
# time is the sum of its threads' run time from /proc/PID/task/*/schedstat,
# divided by the number of requests. Each case runs REPS times, alternating
# the two servers, and the median is reported. echod runs with one worker.
#
# usage: bench/server_cpu.sh [BUILD_DIR]
# environment: ECHOD and BASELINE (the binaries), SERVER_CPU (0),
# CLIENT_CPU (1), REPS (5), SCALE (1; multiplies the request counts, e.g. 0.2
# for a quick look), PORT_BASE (17100: the baseline's port; echod's is next).

set -eu

BUILD=${1:-build}
ECHOD=${ECHOD:-$BUILD/server/echod}
BASELINE=${BASELINE:-$BUILD/bench/epoll_echo}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-5}
SCALE=${SCALE:-1}
PORT_BASE=${PORT_BASE:-17100}
TARGET=1.10

for f in "$ECHOD" "$BASELINE"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for c in redis-benchmark taskset; do
	command -v $c >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
BASE_PID=
ECHOD_PID=
cleanup() {
	[ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null
	[ -n "$ECHOD_PID" ] && kill "$ECHOD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

BASE_PORT=$PORT_BASE
ECHOD_PORT=$((PORT_BASE + 1))
. "$(dirname "$0")/lib.sh"
RB_EXTRA=()

cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1

[limits]
idle_timeout = 0

[listen a]
address = 127.0.0.1:$ECHOD_PORT
EOF

taskset -c "$SERVER_CPU" "$BASELINE" "$BASE_PORT" 2>"$TMP/base.err" &
BASE_PID=$!
taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
ECHOD_PID=$!
wait_port "$BASE_PORT"
wait_port "$ECHOD_PORT"
REF_NAME=base REF_PID=$BASE_PID REF_PORT=$BASE_PORT


echo "server_cpu: echod vs epoll_echo, server on cpu $SERVER_CPU," \
    "redis-benchmark on cpu $CLIENT_CPU, median of $REPS runs"
echo "$(uname -sr), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
compare_header
compare_case "50 conns x 64 B"      50 1  200000  "$P64"
compare_case "50 conns x 64 B, P16" 50 16 2000000 "$P64"
compare_case "10 conns x 4 KiB"     10 1  200000  "$P4K"
