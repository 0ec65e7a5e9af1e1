#!/bin/bash
#
# tls_handshake.sh: TLS handshakes per second that echoload sustains in
# connect mode (TLS 1.3, with and without session resumption) against
# openssl s_time -new and -reuse, all against the same echod TLS listener
# in the same run. echod runs with one worker pinned to SERVER_CPU; every
# client is pinned to CLIENT_CPU. Both sides verify: echoload with --ca,
# s_time with -CAfile -verify. A throwaway CA and server certificate (EC
# P-256) are made with the openssl CLI in a temp dir.
#
# s_time runs one connection at a time and only does the handshake (no
# application data); echoload keeps CONNS connections going, and each one
# also echoes a 64-byte message before the server closes it. Handshakes
# per second are counted over wall time: s_time's own "real seconds" are
# whole seconds. s_time marks each connection that resumed with "r": the
# count is reported, since s_time -reuse cannot resume over TLS 1.3 (it
# never reads the tickets, which arrive after the handshake).
#
# usage: bench/tls_handshake.sh [BUILD_DIR]
# environment: ECHOLOAD and ECHOD (the binaries), SERVER_CPU (0),
# CLIENT_CPU (1), SECONDS_EACH (5), CONNS (16), REPS (3; the median is
# reported), PORT (17400), OUT (bench/results/tls_handshake.txt; - for
# stdout only).

set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
ECHOD=${ECHOD:-$BUILD/server/echod}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SECONDS_EACH=${SECONDS_EACH:-5}
CONNS=${CONNS:-16}
REPS=${REPS:-3}
PORT=${PORT:-17400}
OUT=${OUT:-$HERE/results/tls_handshake.txt}

. "$HERE/lib.sh"
need "$BUILD" "$ECHOLOAD" "$ECHOD" -- openssl taskset python3
scratch

ossl() { openssl "$@" >/dev/null 2>&1 </dev/null; }

( cd "$TMP"
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj /CN=localhost
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
  ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 2 -extfile server.ext )

cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1
[tls]
certificate = $TMP/server.pem
key = $TMP/server.key
[listen t]
address = 127.0.0.1:$PORT
tls = yes
EOF

taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
SERVER_PID=$!
wait_port "$PORT"

# Each prints: handshakes/s resumed-count total-count
run_stime() {
	python3 - "$CLIENT_CPU" "$SECONDS_EACH" "$1" "$PORT" "$TMP/ca.pem" <<'EOF'
import subprocess, sys, time
cpu, secs, how, port, ca = sys.argv[1:]
t0 = time.monotonic()
p = subprocess.run(["taskset", "-c", cpu, "openssl", "s_time", "-connect",
                    f"127.0.0.1:{port}", how, "-time", secs, "-tls1_3",
                    "-CAfile", ca, "-verify", "1"],
                   capture_output=True, text=True, stdin=subprocess.DEVNULL)
wall = time.monotonic() - t0
marks = "".join(l for l in p.stdout.splitlines()
                if set(l) <= set("*r") and l)
n = None
for l in p.stdout.splitlines():
    if "connections in" in l and "real seconds" not in l:
        n = int(l.split()[0])
if n is None:
    sys.exit("s_time: " + p.stdout[-300:] + p.stderr[-300:])
# -new and -reuse each end with a timed loop of about secs seconds; the
# wall time also has the start (and -reuse's first connection).
print("%.1f %d %d" % (n / wall, marks.count("r"), n))
EOF
}

run_echoload() {
	taskset -c "$CLIENT_CPU" "$ECHOLOAD" -q -m connect --tls \
	    --tls-version 1.3 --ca "$TMP/ca.pem" -t 1 -c "$CONNS" \
	    -d "${SECONDS_EACH}s" --json "$TMP/el.json" "$@" \
	    "127.0.0.1:$PORT" >/dev/null
	python3 - "$TMP/el.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["tls"]
if r["errors"]:
    sys.exit("echoload: %d errors" % r["errors"])
print("%.1f %d %d %d %d %d" % (
    t["handshakes_per_s"], t["resumed"], t["handshakes"],
    t["handshake_latency_us"]["p50"], t["handshake_latency_us"]["p99"],
    r["connections"]))
EOF
}

median_line() {
	sort -g | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'
}

report() {
	local f
	echo "# TLS 1.3 handshakes per second against echod (1 worker)"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) CPUs," \
	    "$(openssl version | cut -d' ' -f1-2), load average" \
	    "$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# echod on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU;" \
	    "${SECONDS_EACH}s per case, median of $REPS; EC P-256," \
	    "verified; echoload -t 1 -c $CONNS -m connect --tls-version 1.3"
	for c in stime_new stime_reuse el_resume el_full; do
		: >"$TMP/$c"
	done
	for _ in $(seq "$REPS"); do
		run_stime -new >>"$TMP/stime_new"
		run_stime -reuse >>"$TMP/stime_reuse"
		run_echoload >>"$TMP/el_resume"
		run_echoload --no-resume >>"$TMP/el_full"
	done
	printf '%-34s %12s %9s %9s %9s\n' client "handshakes/s" resumed \
	    "p50 us" "p99 us"
	for f in stime_new stime_reuse; do
		read -r rate res n < <(median_line <"$TMP/$f")
		printf '%-34s %12s %9s %9s %9s\n' "openssl s_time ${f#stime_}" \
		    "$rate" "$res/$n" - -
	done
	for f in el_resume el_full; do
		read -r rate res n p50 p99 conns < <(median_line <"$TMP/$f")
		printf '%-34s %12s %9s %9s %9s\n' "echoload ($f)" "$rate" \
		    "$res/$n" "$p50" "$p99"
	done
	python3 - "$TMP" <<'EOF'
import sys
d = sys.argv[1]
def med(name):
    v = sorted(float(l.split()[0]) for l in open(f"{d}/{name}"))
    return v[(len(v) - 1) // 2]
best = max(med("stime_new"), med("stime_reuse"))
for name, what in (("el_resume", "with resumption"),
                   ("el_full", "full handshakes only")):
    r = med(name) / best
    print("# echoload %s / best s_time: %.2f  %s" % (
        what, r, "ok" if r >= 1 else "BELOW TARGET 1.0"))
EOF
}

if [ "$OUT" = - ]; then
	report
else
	mkdir -p "$(dirname "$OUT")"
	report | tee "$OUT"
fi
