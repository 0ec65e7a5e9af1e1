#!/bin/bash
#
# hlog_cpu.sh: what --hlog costs echoload. The client_cpu.sh runs of
# echoload (50 connections, one thread, 64-byte messages, unpipelined and
# 16 in flight, against the raw-epoll baseline server bench/epoll_echo),
# each case twice in the same run: as client_cpu.sh runs it, and with
# --hlog (and --json, which then carries every second's histograms too).
# A client's CPU is utime + stime of the whole process from /proc/PID/stat
# (bench/client_cpu_measure.py), divided by the requests it reports. Each
# case runs REPS times, alternating which variant goes first, and the
# medians are compared. The issue's target: --hlog within 5% (ratio at most
# 1.05) of the figure without it.
#
# usage: bench/hlog_cpu.sh [BUILD_DIR]
# environment: ECHOLOAD and BASELINE (the binaries), SERVER_CPU (0),
# CLIENT_CPU (1), REPS (5), SCALE (1; multiplies the request counts),
# DEPTHS ("1 16": the cases, requests in flight per connection),
# PORT (17310), OUT (bench/results/hlog_cpu.txt; - for stdout only).

set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
BASELINE=${BASELINE:-$BUILD/bench/epoll_echo}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-5}
SCALE=${SCALE:-1}
PORT=${PORT:-17310}
DEPTHS=${DEPTHS:-1 16}
OUT=${OUT:-$HERE/results/hlog_cpu.txt}
MEASURE=$HERE/client_cpu_measure.py
TARGET=1.05

for f in "$ECHOLOAD" "$BASELINE"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for c in taskset python3; do
	command -v $c >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

taskset -c "$SERVER_CPU" "$BASELINE" "$PORT" &
SERVER_PID=$!
for _ in $(seq 50); do
	(exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
	sleep 0.1
done

# run_client VARIANT DEPTH REQUESTS: prints CPU seconds per request.
run_client() {
	local variant=$1 depth=$2 n=$3 cpu rc extra=()
	[ "$variant" = hlog ] && extra=(--hlog "$TMP/run.hlog")
	read -r cpu rc < <(python3 "$MEASURE" "$CLIENT_CPU" - "$ECHOLOAD" -q \
	    -t 1 -c 50 -n "$n" -P "$depth" -s 64 --json "$TMP/run.json" \
	    "${extra[@]}" "127.0.0.1:$PORT")
	[ "$rc" = 0 ] || { echo "$0: echoload ($variant) exited $rc" >&2; exit 1; }
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' \
	    "$TMP/run.json")
	if [ "$variant" = hlog ]; then
		grep -q '^Tag=response,' "$TMP/run.hlog" ||
		    { echo "$0: no interval lines in the log" >&2; exit 1; }
	fi
	python3 -c "print('%.9f' % ($cpu / $n))"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

report() {
	echo "# echoload CPU per request, without and with --hlog"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) CPUs"
	echo "# server: epoll_echo on CPU $SERVER_CPU; echoload on CPU" \
	    "$CLIENT_CPU; 50 connections, 64-byte messages, 1 thread;" \
	    "median of $REPS runs"
	printf '%-8s %10s %14s %14s %8s\n' case requests "plain us/req" \
	    "hlog us/req" ratio
	for depth in $DEPTHS; do
		if [ "$depth" = 1 ]; then
			n=$(python3 -c "print(int(500000 * $SCALE))")
		else
			n=$(python3 -c "print(int(4000000 * $SCALE))")
		fi
		: >"$TMP/plain.$depth"
		: >"$TMP/hlog.$depth"
		for r in $(seq "$REPS"); do
			if [ $((r % 2)) = 1 ]; then order="plain hlog"
			else order="hlog plain"; fi
			for v in $order; do
				run_client "$v" "$depth" "$n" >>"$TMP/$v.$depth"
			done
		done
		p=$(median <"$TMP/plain.$depth")
		h=$(median <"$TMP/hlog.$depth")
		python3 -c "
p, h = $p, $h
print('%-8s %10d %14.3f %14.3f %8.3f  %s' % ('P=$depth', $n, p * 1e6,
    h * 1e6, h / p, 'ok' if h / p <= $TARGET else 'ABOVE TARGET $TARGET'))"
	done
}

if [ "$OUT" = - ]; then
	report
else
	mkdir -p "$(dirname "$OUT")"
	report | tee "$OUT"
fi
