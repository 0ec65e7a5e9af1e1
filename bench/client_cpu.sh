#!/bin/bash
#
# client_cpu.sh: echoload's own CPU cost per request against redis-benchmark
# (redis-benchmark -c 50 ECHO <64-byte payload>), both driving the raw-epoll
# baseline server (bench/epoll_echo) in the same run: an echoed RESP request
# is a valid RESP reply, so redis-benchmark works against a plain echo
# server. 50 connections, one client thread each, unpipelined and with 16
# requests in flight per connection. The server is pinned to SERVER_CPU and
# the clients to CLIENT_CPU. A client's CPU is utime + stime of the whole
# process from /proc/PID/stat (bench/client_cpu_measure.py), divided by the
# requests it made. Each case runs REPS times, alternating the clients, and
# the median is reported. The issue's target: ratio at most 0.8.
#
# usage: bench/client_cpu.sh [BUILD_DIR]
# environment: ECHOLOAD and BASELINE (the binaries), SERVER_CPU (0),
# CLIENT_CPU (1), REPS (3), SCALE (1; multiplies the request counts),
# PORT (17300), OUT (bench/results/client_cpu.txt; - for stdout only).

set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
BASELINE=${BASELINE:-$BUILD/bench/epoll_echo}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-3}
SCALE=${SCALE:-1}
PORT=${PORT:-17300}
OUT=${OUT:-$HERE/results/client_cpu.txt}
MEASURE=$HERE/client_cpu_measure.py
TARGET=0.8

. "$HERE/lib.sh"
need "$BUILD" "$ECHOLOAD" "$BASELINE" -- redis-benchmark taskset python3
scratch

PAYLOAD=$(printf '%064d' 0 | tr 0 x)

taskset -c "$SERVER_CPU" "$BASELINE" "$PORT" &
SERVER_PID=$!
wait_port "$PORT"

# run_client NAME DEPTH REQUESTS: prints CPU seconds per request.
run_client() {
	local name=$1 depth=$2 n=$3 out rc cpu
	out=$TMP/$name.out
	case $name in
	redis)
		set -- redis-benchmark -h 127.0.0.1 -p "$PORT" -c 50 -n "$n" \
		    -P "$depth" -q ECHO "$PAYLOAD" ;;
	echoload)
		set -- "$ECHOLOAD" -q -t 1 -c 50 -n "$n" -P "$depth" -s 64 \
		    --json "$TMP/echoload.json" "127.0.0.1:$PORT" ;;
	esac
	read -r cpu rc < <(python3 "$MEASURE" "$CLIENT_CPU" "$out" "$@")
	if [ "$rc" != 0 ]; then
		echo "$0: $name exited $rc" >&2
		exit 1
	fi
	if [ "$name" = echoload ]; then
		# Count what echoload says it did, not what it was asked.
		n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' \
		    "$TMP/echoload.json")
	fi
	python3 -c "print('%.9f' % ($cpu / $n))"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

report() {
	echo "# echoload vs redis-benchmark: client CPU per request"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) CPUs," \
	    "$(redis-benchmark --version 2>/dev/null | head -1)"
	echo "# server: epoll_echo on CPU $SERVER_CPU; clients on CPU" \
	    "$CLIENT_CPU; 50 connections, 64-byte payload, 1 client thread;" \
	    "median of $REPS runs"
	printf '%-12s %10s %16s %16s %8s\n' case requests \
	    "redis us/req" "echoload us/req" ratio
	for depth in 1 16; do
		if [ "$depth" = 1 ]; then
			n=$(python3 -c "print(int(500000 * $SCALE))")
		else
			n=$(python3 -c "print(int(4000000 * $SCALE))")
		fi
		: >"$TMP/redis.$depth"
		: >"$TMP/echoload.$depth"
		for _ in $(seq "$REPS"); do
			run_client redis "$depth" "$n" >>"$TMP/redis.$depth"
			run_client echoload "$depth" "$n" >>"$TMP/echoload.$depth"
		done
		r=$(median <"$TMP/redis.$depth")
		e=$(median <"$TMP/echoload.$depth")
		python3 -c "
r, e = $r, $e
print('%-12s %10d %16.3f %16.3f %8.2f  %s' % ('P=$depth', $n, r * 1e6,
    e * 1e6, e / r, 'ok' if e / r <= $TARGET else 'ABOVE TARGET $TARGET'))"
	done
}

if [ "$OUT" = - ]; then
	report
else
	mkdir -p "$(dirname "$OUT")"
	report | tee "$OUT"
fi
