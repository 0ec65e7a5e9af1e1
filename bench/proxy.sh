#!/bin/bash
#
# proxy.sh: what a PROXY protocol listener costs against a plain one, in
# the same echod and the same run. One echod (one worker, pinned to
# SERVER_CPU) has two echo listeners, "plain" and "proxy" (proxy_protocol =
# v2); echoload (pinned to CLIENT_CPU) drives each in turn, with --proxy v2
# against the second, REPS times, alternating which goes first; the table
# shows medians and the ratio proxy / plain.
#
#   connect   -m connect: every request is a connection of its own, so the
#             header is read once per request. Connections per second
#             (target: proxy >= 0.97 x plain) and echod's CPU per
#             connection.
#   echo      established connections: the header was read once at the
#             start, then only echo. echod's CPU per message (target: the
#             same as plain; the parser is off the hot path).
#
# echod's CPU is the sum of its threads' run time from
# /proc/PID/task/*/schedstat, read around each run.
#
# usage: bench/proxy.sh [BUILD_DIR]
# environment: ECHOD, ECHOLOAD (the binaries), SERVER_CPU (0), CLIENT_CPU
# (1), REPS (15), CONNECT_TIME (1s per connect run), ECHO_REQUESTS (200000
# per echo run), PORT_BASE (17110 and the next).

set -eu

BUILD=${1:-build}
ECHOD=${ECHOD:-$BUILD/server/echod}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-15}
CONNECT_TIME=${CONNECT_TIME:-1s}
ECHO_REQUESTS=${ECHO_REQUESTS:-200000}
PORT_BASE=${PORT_BASE:-17110}

for f in "$ECHOD" "$ECHOLOAD"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for c in taskset python3; do
	command -v $c >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
ECHOD_PID=
cleanup() {
	[ -n "$ECHOD_PID" ] && kill "$ECHOD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/lib.sh"

PLAIN_PORT=$PORT_BASE
PROXY_PORT=$((PORT_BASE + 1))
cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1

[limits]
idle_timeout = 0
max_connections = 100000

[listen plain]
address = 127.0.0.1:$PLAIN_PORT

[listen proxy]
address = 127.0.0.1:$PROXY_PORT
proxy_protocol = v2
EOF

taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
ECHOD_PID=$!
wait_port "$PLAIN_PORT"
# (Not wait_port on the proxy listener: a bare connection there is a
# rejected header, which is fine, but the counters stay clean this way.)
sleep 0.2

# run KIND(plain|proxy) ECHOLOAD-ARGS...: prints "rate cpu_ns_per_request"
run() {
	local kind=$1 port extra=() before after
	shift
	if [ "$kind" = proxy ]; then port=$PROXY_PORT extra=(--proxy v2)
	else port=$PLAIN_PORT; fi
	before=$(cpu_ns "$ECHOD_PID")
	taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q --json "$TMP/run.json" -t 1 \
	    "${extra[@]}" "$@" "127.0.0.1:$port" >"$TMP/run.out" 2>&1 || {
		echo "$0: echoload failed on $kind:" >&2
		cat "$TMP/run.out" >&2
		exit 1
	}
	after=$(cpu_ns "$ECHOD_PID")
	kill -0 "$ECHOD_PID" 2>/dev/null || { echo "$0: echod died" >&2; exit 1; }
	python3 - "$TMP/run.json" "$((after - before))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["errors"] == 0, d
n = d["requests"]
print("%.1f %.1f" % (n / d["duration_s"], int(sys.argv[2]) / n))
PY
}

# case NAME ECHOLOAD-ARGS...: REPS interleaved pairs of runs, then a row:
# the medians of plain and proxy rate and ns, and the medians of the ratios
# of each pair (runs next to each other share the machine's mood: on a
# busy machine these are steadier than the ratio of the medians).
bench_case() {
	local name=$1 r order k rate ns
	shift
	for k in plain proxy; do : >"$TMP/$k.rate"; : >"$TMP/$k.ns"; done
	: >"$TMP/ratio.rate"; : >"$TMP/ratio.ns"
	r=0
	while [ $r -lt "$REPS" ]; do
		if [ $((r % 2)) -eq 0 ]; then order="plain proxy"
		else order="proxy plain"; fi
		for k in $order; do
			read -r rate ns < <(run "$k" "$@")
			echo "$rate" >"$TMP/$k.last.rate"
			echo "$ns" >"$TMP/$k.last.ns"
			echo "$rate" >>"$TMP/$k.rate"
			echo "$ns" >>"$TMP/$k.ns"
		done
		for m in rate ns; do
			awk -v p="$(cat "$TMP/plain.last.$m")" \
			    -v x="$(cat "$TMP/proxy.last.$m")" \
			    'BEGIN { printf "%.4f\n", x / p }' >>"$TMP/ratio.$m"
		done
		r=$((r + 1))
	done
	awk -v name="$name" -v pr="$(median <"$TMP/plain.rate")" \
	    -v xr="$(median <"$TMP/proxy.rate")" \
	    -v rr="$(median <"$TMP/ratio.rate")" \
	    -v pn="$(median <"$TMP/plain.ns")" \
	    -v xn="$(median <"$TMP/proxy.ns")" \
	    -v rn="$(median <"$TMP/ratio.ns")" 'BEGIN {
		printf "%-10s %11.0f %11.0f %7.3f %10.1f %10.1f %7.3f\n",
		    name, pr, xr, rr, pn, xn, rn }'
	for k in plain proxy ratio; do
		printf "  %-6s rate: %s\n" "$k" "$(tr '\n' ' ' <"$TMP/$k.rate")"
		printf "  %-6s ns:   %s\n" "$k" "$(tr '\n' ' ' <"$TMP/$k.ns")"
	done
}

echo "proxy: plain vs proxy_protocol = v2 listener in one echod (1 worker," \
    "cpu $SERVER_CPU), echoload on cpu $CLIENT_CPU, median of $REPS" \
    "interleaved runs"
echo "$(uname -sr), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-10s %11s %11s %7s %10s %10s %7s\n" case "plain /s" "proxy /s" \
    ratio* "plain ns" "proxy ns" ratio*
bench_case connect -m connect -c 20 -d "$CONNECT_TIME"
bench_case echo -c 50 -n "$ECHO_REQUESTS" -s 64
echo "ratio*: median of the per-pair ratios proxy / plain." \
    "Targets: connect rate >= 0.97; echo ns about 1 (the same as plain)"
