#!/bin/bash
#
# proxy.sh: what a PROXY protocol listener costs against a plain one,
# measured side by side. Two echods (one worker each, both pinned to
# SERVER_CPU) differ only in their listener: "plain", or "proxy" with
# proxy_protocol = v2. Two echoloads (both pinned to CLIENT_CPU) drive them
# at the same time, the second with --proxy v2, so that whatever else the
# machine is doing hits both alike; REPS rounds, alternating which starts
# first. Each round gives a ratio proxy / plain; the table shows the
# medians.
#
#   connect   -m connect: every request is a connection of its own, so the
#             header is read once per request. Connections per second
#             (target: proxy >= 0.97 x plain) and each echod's CPU per
#             connection.
#   echo      established connections: the header was read once at the
#             start, then only echo. Each echod's CPU per message (target:
#             the same as plain; the parser is off the hot path).
#
# An echod's CPU is the sum of its threads' run time from
# /proc/PID/task/*/schedstat, read around each round.
#
# usage: bench/proxy.sh [BUILD_DIR]
# environment: ECHOD, ECHOLOAD (the binaries), SERVER_CPU (0), CLIENT_CPU
# (1), REPS (11), CONNECT_TIME (2s per round), ECHO_TIME (2s per round),
# PORT_BASE (17110 and the next).

set -eu

BUILD=${1:-build}
ECHOD=${ECHOD:-$BUILD/server/echod}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-11}
CONNECT_TIME=${CONNECT_TIME:-2s}
ECHO_TIME=${ECHO_TIME:-2s}
PORT_BASE=${PORT_BASE:-17110}

for f in "$ECHOD" "$ECHOLOAD"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for c in taskset python3; do
	command -v $c >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/lib.sh"

PORT_plain=$PORT_BASE
PORT_proxy=$((PORT_BASE + 1))
for k in plain proxy; do
	port=PORT_$k
	cat >"$TMP/$k.conf" <<EOF
[server]
workers = 1

[limits]
idle_timeout = 0
max_connections = 100000

[listen $k]
address = 127.0.0.1:${!port}
EOF
	[ $k = proxy ] && echo "proxy_protocol = v2" >>"$TMP/$k.conf"
	taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/$k.conf" \
	    2>"$TMP/$k.err" &
	PIDS+=($!)
	eval "PID_$k=$!"
done
wait_port "$PORT_plain"
# A bare connection to the proxy listener would only be a rejected header.
sleep 0.3
for k in plain proxy; do
	pid=PID_$k
	kill -0 "${!pid}" 2>/dev/null || {
		echo "$0: the $k echod did not start:" >&2
		cat "$TMP/$k.err" >&2
		exit 1
	}
done

# client KIND ARGS...: one echoload against KIND's echod, in the background.
client() {
	local k=$1 port=PORT_$1 extra=()
	shift
	[ "$k" = proxy ] && extra=(--proxy v2)
	taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q --json "$TMP/$k.json" -t 1 \
	    "${extra[@]}" "$@" "127.0.0.1:${!port}" >"$TMP/$k.out" 2>&1 &
}

# round ARGS...: both clients at once; appends each kind's rate and ns per
# request, and the ratios, to $TMP/*.{rate,ns}.
round() {
	local first=$1 second b_plain b_proxy a_plain a_proxy p1 p2
	shift
	[ "$first" = plain ] && second=proxy || second=plain
	b_plain=$(cpu_ns "$PID_plain")
	b_proxy=$(cpu_ns "$PID_proxy")
	client "$first" "$@"
	p1=$!
	client "$second" "$@"
	p2=$!
	wait "$p1" || { cat "$TMP/$first.out" >&2; exit 1; }
	wait "$p2" || { cat "$TMP/$second.out" >&2; exit 1; }
	a_plain=$(cpu_ns "$PID_plain")
	a_proxy=$(cpu_ns "$PID_proxy")
	python3 - "$TMP" "$((a_plain - b_plain))" "$((a_proxy - b_proxy))" <<'PY'
import json, sys
tmp = sys.argv[1]
cpu = {"plain": int(sys.argv[2]), "proxy": int(sys.argv[3])}
v = {}
for k in ("plain", "proxy"):
    d = json.load(open(f"{tmp}/{k}.json"))
    assert d["errors"] == 0, (k, d["errors"])
    n = d["requests"]
    v[k] = (n / d["duration_s"], cpu[k] / n)
    with open(f"{tmp}/{k}.rate", "a") as f:
        print("%.1f" % v[k][0], file=f)
    with open(f"{tmp}/{k}.ns", "a") as f:
        print("%.1f" % v[k][1], file=f)
with open(f"{tmp}/ratio.rate", "a") as f:
    print("%.4f" % (v["proxy"][0] / v["plain"][0]), file=f)
with open(f"{tmp}/ratio.ns", "a") as f:
    print("%.4f" % (v["proxy"][1] / v["plain"][1]), file=f)
PY
}

bench_case() {
	local name=$1 r k m
	shift
	for k in plain proxy ratio; do : >"$TMP/$k.rate"; : >"$TMP/$k.ns"; done
	r=0
	while [ $r -lt "$REPS" ]; do
		if [ $((r % 2)) -eq 0 ]; then round plain "$@"
		else round proxy "$@"; fi
		r=$((r + 1))
	done
	printf "%-8s %10.0f %10.0f %7.3f %10.1f %10.1f %7.3f\n" "$name" \
	    "$(median <"$TMP/plain.rate")" "$(median <"$TMP/proxy.rate")" \
	    "$(median <"$TMP/ratio.rate")" "$(median <"$TMP/plain.ns")" \
	    "$(median <"$TMP/proxy.ns")" "$(median <"$TMP/ratio.ns")"
	for k in plain proxy ratio; do
		for m in rate ns; do
			printf "  %-5s %-4s %s\n" "$k" "$m" \
			    "$(tr '\n' ' ' <"$TMP/$k.$m")"
		done
	done
}

echo "proxy: a plain and a proxy_protocol = v2 echod (1 worker each, both on" \
    "cpu $SERVER_CPU) driven at the same time by two echoloads (both on cpu" \
    "$CLIENT_CPU), median of $REPS rounds"
echo "$(uname -sr), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-8s %10s %10s %7s %10s %10s %7s\n" case "plain /s" "proxy /s" \
    ratio "plain ns" "proxy ns" ratio
bench_case connect -m connect -c 20 -d "$CONNECT_TIME"
bench_case echo -c 50 -s 64 -d "$ECHO_TIME"
echo "ratio: median over the rounds of proxy / plain in that round." \
    "Targets: connect rate >= 0.97; echo ns per message the same as plain."
