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

cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1

[limits]
idle_timeout = 0

[listen a]
address = 127.0.0.1:$ECHOD_PORT
EOF

wait_port() {
	i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: nothing listens on $1" >&2; exit 1; }
		sleep 0.05
	done
}

# Run time of every thread of process $1, in ns.
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

taskset -c "$SERVER_CPU" "$BASELINE" "$BASE_PORT" 2>"$TMP/base.err" &
BASE_PID=$!
taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
ECHOD_PID=$!
wait_port "$BASE_PORT"
wait_port "$ECHOD_PORT"

# One client run against pid $1 on port $2; prints ns of server CPU per
# request. The rest of the arguments go to redis-benchmark.
measure() {
	pid=$1 port=$2 n=$3
	shift 3
	before=$(cpu_ns "$pid")
	taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port" \
	    -n "$n" --csv "$@" >"$TMP/rb.out" 2>&1 || {
		echo "$0: redis-benchmark failed on port $port:" >&2
		cat "$TMP/rb.out" >&2
		exit 1
	}
	after=$(cpu_ns "$pid")
	kill -0 "$pid" 2>/dev/null || { echo "$0: server $pid died" >&2; exit 1; }
	[ "$after" -gt "$before" ] || { echo "$0: no CPU time for $pid" >&2; exit 1; }
	rps=$(tail -n 1 "$TMP/rb.out" | cut -d, -f2 | tr -d '"')
	echo "$((after - before)) $n $rps" | awk '{ printf "%.1f %.0f\n", $1 / $2, $3 }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

P64=$(printf '%064d' 0 | tr 0 x)
P4K=$(printf '%04096d' 0 | tr 0 x)

# name, connections, pipeline, requests, payload
run_case() {
	name=$1 conns=$2 pipe=$3 payload=$5
	n=$(awk -v n="$4" -v s="$SCALE" 'BEGIN { printf "%d\n", n * s }')
	: >"$TMP/base.ns"
	: >"$TMP/echod.ns"
	: >"$TMP/base.rps"
	: >"$TMP/echod.rps"
	r=0
	while [ $r -lt "$REPS" ]; do
		# Alternate which server goes first, so drift hits both alike.
		if [ $((r % 2)) -eq 0 ]; then order="base echod"; else order="echod base"; fi
		for s in $order; do
			if [ $s = base ]; then pid=$BASE_PID port=$BASE_PORT
			else pid=$ECHOD_PID port=$ECHOD_PORT; fi
			set -- $(measure "$pid" "$port" "$n" -c "$conns" \
			    -P "$pipe" ECHO "$payload")
			echo "$1" >>"$TMP/$s.ns"
			echo "$2" >>"$TMP/$s.rps"
		done
		r=$((r + 1))
	done
	b=$(median <"$TMP/base.ns")
	e=$(median <"$TMP/echod.ns")
	brps=$(median <"$TMP/base.rps")
	erps=$(median <"$TMP/echod.rps")
	awk -v name="$name" -v b="$b" -v e="$e" -v brps="$brps" \
	    -v erps="$erps" -v t="$TARGET" 'BEGIN {
		r = e / b
		printf "%-22s %10.1f %10.1f %7.3f %6s %9.0f %9.0f\n",
		    name, b, e, r, r <= t ? "ok" : "MISS", brps, erps }'
}

echo "server_cpu: echod vs epoll_echo, server on cpu $SERVER_CPU," \
    "redis-benchmark on cpu $CLIENT_CPU, median of $REPS runs"
echo "$(uname -sr), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-22s %10s %10s %7s %6s %9s %9s\n" case "base ns" "echod ns" ratio \
    "<=$TARGET" "base rps" "echod rps"
run_case "50 conns x 64 B"      50 1  200000  "$P64"
run_case "50 conns x 64 B, P16" 50 16 2000000 "$P64"
run_case "10 conns x 4 KiB"     10 1  200000  "$P4K"
