#!/bin/bash
#
# scale.sh: echoload at many connections, against echod with one worker,
# one echoload thread, on loopback. Four parts, all in one run:
#
#  1. connection phase: -c N (15000) three times back to back, so that the
#     earlier runs' TIME_WAIT sockets are present; the phase must report N
#     established within 2 s.
#  2. open loop at RATE (20000/s): 50 connections and N connections,
#     interleaved REPS times; the achieved rate must be within 1% of the
#     target and the service p50 at N at most 2x the p50 at 50.
#  3. memory: BIG connections (19000, or what the hard descriptor limit
#     leaves) held idle, RSS growth per connection of echod (against its
#     RSS before) and of echoload (against echoload with 50 connections):
#     at most 300 bytes and 1 KiB.
#  4. echoload's CPU per request at 50 connections (-P 1 and -P 16, as
#     bench/client_cpu.sh runs it) against the raw-epoll baseline server,
#     this build against OLD_ECHOLOAD (an echoload built from an earlier
#     commit), alternating, median of REPS: at most 5% more. Skipped
#     without OLD_ECHOLOAD.
#
# echod runs on SERVER_CPU and echoload on CLIENT_CPU (taskset).
#
# usage: bench/scale.sh [BUILD_DIR]
# environment: ECHOLOAD, ECHOD, BASELINE (the binaries), OLD_ECHOLOAD,
# N (15000), BIG (19000, capped by the hard limit), RATE (20000), REPS (3),
# SCALE (1; multiplies part 4's request counts), SERVER_CPU (0),
# CLIENT_CPU (1), PORT and BASE_PORT (echod's and the baseline's: free
# ones), OUT (bench/results/scale.txt; - for
# stdout only).

set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
ECHOD=${ECHOD:-$BUILD/server/echod}
BASELINE=${BASELINE:-$BUILD/bench/epoll_echo}
OLD_ECHOLOAD=${OLD_ECHOLOAD:-}
N=${N:-15000}
BIG=${BIG:-19000}
RATE=${RATE:-20000}
REPS=${REPS:-3}
SCALE=${SCALE:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=${PORT:-$(free_port)}
BASE_PORT=${BASE_PORT:-$(free_port)}
OUT=${OUT:-$HERE/results/scale.txt}
MEASURE=$HERE/client_cpu_measure.py

for f in "$ECHOLOAD" "$ECHOD" "$BASELINE"; do
	[ -x "$f" ] || { echo "$0: $f not built (ninja -C $BUILD)" >&2; exit 1; }
done
for c in taskset python3 ss; do
	command -v $c >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

# One process holds at most the hard limit of descriptors: size to it.
HARD=$(ulimit -Hn)
ulimit -n "$HARD"
if [ "$HARD" != unlimited ] && [ "$BIG" -gt $((HARD - 200)) ]; then
	BIG=$((HARD - 200))
fi
if [ "$HARD" != unlimited ] && [ "$N" -gt "$BIG" ]; then
	N=$BIG
fi

TMP=$(mktemp -d)
ECHOD_PID=
BASE_PID=
cleanup() {
	[ -n "$ECHOD_PID" ] && kill "$ECHOD_PID" 2>/dev/null
	[ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_port PORT PID: until PID (still alive) listens on PORT.
wait_port() {
	local i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: nothing listens on $1" >&2; exit 1; }
		sleep 0.05
	done
	kill -0 "$2" 2>/dev/null || { echo "$0: the server on $1 exited" >&2; exit 1; }
}

start_echod() {
	cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1
[limits]
max_connections = $((BIG + 100))
idle_timeout = 0
[listen main]
address = 127.0.0.1:$PORT
backlog = 4096
EOF
	taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" \
	    2>"$TMP/echod.err" &
	ECHOD_PID=$!
	wait_port "$PORT" "$ECHOD_PID"
}

stop_echod() {
	kill "$ECHOD_PID" 2>/dev/null || true
	wait "$ECHOD_PID" 2>/dev/null || true
	ECHOD_PID=
}

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status
}

# jget FILE EXPR: a value out of echoload's JSON (EXPR indexes r).
jget() {
	python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

timewait() {
	ss -Htan state time-wait | wc -l
}

part_phase() {
	local i j ok=ok
	echo "## 1. connection phase: $N connections, 1 thread, 3 runs back to back"
	printf '%-4s %10s %11s %9s %9s %9s %9s %8s\n' run time_wait \
	    established failed retried phase_s p50_ms p99_ms
	for i in 1 2 3; do
		j=$TMP/phase.$i.json
		tw=$(timewait)
		taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q -t 1 -c "$N" -d 500ms \
		    -R 1000 --json "$j" "127.0.0.1:$PORT" >/dev/null 2>&1 || true
		set -- $(jget "$j" '"%d %d %d %.3f %.2f %.2f" % (
		    r["connection_phase"]["established"],
		    r["connection_phase"]["failed"],
		    r["connection_phase"]["retried"],
		    r["connection_phase"]["duration_s"],
		    r["connection_phase"]["latency_us"]["p50"] / 1e3,
		    r["connection_phase"]["latency_us"]["p99"] / 1e3)')
		printf '%-4s %10s %11s %9s %9s %9s %9s %8s\n' "$i" "$tw" \
		    "$1" "$2" "$3" "$4" "$5" "$6"
		if [ "$1" != "$N" ] || python3 -c "import sys; sys.exit($4 <= 2.0)"; then
			ok=MISS
		fi
	done
	echo "target: $N established in at most 2 s, every run: $ok"
}

part_open_loop() {
	local i c j ok=ok
	echo "## 2. open loop at $RATE/s, 1 thread: 50 vs $N connections, interleaved, median of $REPS"
	for c in 50 "$N"; do : >"$TMP/ach.$c"; : >"$TMP/svc.$c"; : >"$TMP/rsp.$c"; done
	for i in $(seq "$REPS"); do
		for c in 50 "$N"; do
			j=$TMP/ol.$c.$i.json
			taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q -t 1 -c "$c" \
			    -R "$RATE" -w 2s -d 10s --json "$j" \
			    "127.0.0.1:$PORT" >/dev/null 2>&1 || true
			jget "$j" 'r["rate"]["achieved_per_s"]' >>"$TMP/ach.$c"
			jget "$j" 'r["service_latency_us"]["p50"]' >>"$TMP/svc.$c"
			jget "$j" 'r["latency_us"]["p50"]' >>"$TMP/rsp.$c"
		done
	done
	printf '%-12s %12s %14s %15s\n' connections achieved/s service_p50_us response_p50_us
	for c in 50 "$N"; do
		printf '%-12s %12.1f %14s %15s\n' "$c" "$(median <"$TMP/ach.$c")" \
		    "$(median <"$TMP/svc.$c")" "$(median <"$TMP/rsp.$c")"
	done
	python3 - "$RATE" "$(median <"$TMP/ach.$N")" "$(median <"$TMP/svc.50")" \
	    "$(median <"$TMP/svc.$N")" <<'EOF'
import sys
rate, ach, s50, sbig = map(float, sys.argv[1:])
print("achieved at %d%% of target (>= 99%%): %s" % (round(100 * ach / rate, 2),
      "ok" if ach >= 0.99 * rate else "MISS"))
print("service p50 ratio %.2f (<= 2): %s" % (sbig / s50,
      "ok" if sbig <= 2 * s50 else "MISS"))
EOF
}

# Start echoload with $1 connections, nearly idle (1 request/s), and wait
# until echod holds them; its PID goes to HOLD_PID.
hold_idle() {
	local c=$1 want i=0
	taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q -t 1 -c "$c" -R 1 -d 8s \
	    "127.0.0.1:$PORT" >/dev/null 2>&1 &
	HOLD_PID=$!
	want=$c
	while [ "$(ss -Htn state established "( sport = :$PORT )" | wc -l)" -lt "$want" ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "$0: only $(ss -Htn state established "( sport = :$PORT )" | wc -l) of $c connections up" >&2; exit 1; }
		sleep 0.05
	done
}

part_memory() {
	local base big r50 rbig
	echo "## 3. memory: $BIG idle connections (hard descriptor limit $HARD)"
	stop_echod
	start_echod
	sleep 0.5
	base=$(rss_kib "$ECHOD_PID")
	hold_idle 50
	sleep 1
	r50=$(rss_kib "$HOLD_PID")
	wait "$HOLD_PID" || true
	hold_idle "$BIG"
	sleep 1
	big=$(rss_kib "$ECHOD_PID")
	rbig=$(rss_kib "$HOLD_PID")
	wait "$HOLD_PID" || true
	python3 - "$BIG" "$base" "$big" "$r50" "$rbig" <<'EOF'
import sys
n, base, big, r50, rbig = map(int, sys.argv[1:])
e = (big - base) * 1024 / n
c = (rbig - r50) * 1024 / (n - 50)
print("echod    RSS %d KiB -> %d KiB: %.0f bytes per connection (<= 300): %s"
      % (base, big, e, "ok" if e <= 300 else "MISS"))
print("echoload RSS %d KiB at 50 -> %d KiB at %d: %.0f bytes per connection "
      "(<= 1024): %s" % (r50, rbig, n, c, "ok" if c <= 1024 else "MISS"))
EOF
}

# cpu_per_req BINARY DEPTH REQUESTS: CPU seconds per request.
cpu_per_req() {
	local bin=$1 depth=$2 n=$3 cpu rc j=$TMP/cpu.json
	read -r cpu rc < <(python3 "$MEASURE" "$CLIENT_CPU" - "$bin" -q -t 1 \
	    -c 50 -n "$n" -P "$depth" -s 64 --json "$j" "127.0.0.1:$BASE_PORT")
	[ "$rc" = 0 ] || { echo "$0: $bin exited $rc" >&2; exit 1; }
	n=$(jget "$j" 'r["requests"]')
	python3 -c "print('%.9f' % ($cpu / $n))"
}

part_cpu() {
	local depth n i o e
	echo "## 4. echoload CPU per request at 50 connections, this build vs $OLD_ECHOLOAD"
	if [ -z "$OLD_ECHOLOAD" ]; then
		echo "skipped: set OLD_ECHOLOAD to an echoload built from the commit to compare with"
		return
	fi
	taskset -c "$SERVER_CPU" "$BASELINE" "$BASE_PORT" &
	BASE_PID=$!
	wait_port "$BASE_PORT" "$BASE_PID"
	printf '%-6s %10s %12s %12s %7s\n' case requests old_us/req new_us/req ratio
	for depth in 1 16; do
		if [ "$depth" = 1 ]; then n=$(python3 -c "print(int(500000 * $SCALE))")
		else n=$(python3 -c "print(int(4000000 * $SCALE))"); fi
		: >"$TMP/old.$depth"
		: >"$TMP/new.$depth"
		for i in $(seq "$REPS"); do
			if [ $((i % 2)) = 1 ]; then
				cpu_per_req "$OLD_ECHOLOAD" "$depth" "$n" >>"$TMP/old.$depth"
				cpu_per_req "$ECHOLOAD" "$depth" "$n" >>"$TMP/new.$depth"
			else
				cpu_per_req "$ECHOLOAD" "$depth" "$n" >>"$TMP/new.$depth"
				cpu_per_req "$OLD_ECHOLOAD" "$depth" "$n" >>"$TMP/old.$depth"
			fi
		done
		o=$(median <"$TMP/old.$depth")
		e=$(median <"$TMP/new.$depth")
		python3 -c "
o, e = $o, $e
print('%-6s %10d %12.3f %12.3f %7.3f  %s' % ('P=$depth', $n, o * 1e6, e * 1e6,
    e / o, 'ok' if e / o <= 1.05 else 'ABOVE 1.05'))"
	done
	kill "$BASE_PID" 2>/dev/null || true
	wait "$BASE_PID" 2>/dev/null || true
	BASE_PID=
}

report() {
	echo "# echoload at scale: loopback, echod with 1 worker on CPU $SERVER_CPU," \
	    "echoload with 1 thread on CPU $CLIENT_CPU"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) CPUs, load" \
	    "$(cut -d' ' -f1-3 /proc/loadavg), ip_local_port_range" \
	    "$(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)"
	start_echod
	part_phase
	part_open_loop
	part_memory
	stop_echod
	part_cpu
}

if [ "$OUT" = - ]; then
	report
else
	mkdir -p "$(dirname "$OUT")"
	report | tee "$OUT"
fi
