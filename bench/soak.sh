#!/bin/bash
# soak.sh: echod under mixed load for a long time, watching for growth.
#
#   bench/soak.sh [BUILD_DIR] [DURATION_S]
#
# One echod (2 workers; a plain echo listener, a TLS listener, the admin
# endpoint, an access log and an event log on files) gets, all at once:
# echo traffic (echoload, open loop), connect churn, TLS echo with session
# resumption and TLS connect churn with full handshakes, slow readers (a
# flood of echo data read back a little at a time, reconnecting), SIGHUP
# every 5 s and a log rotation (rename + SIGUSR1) every 3 s, and one admin
# scraper (GET /metrics once a second). Every SAMPLE_S (10) seconds it
# records echod's VmRSS, open descriptors (/proc/PID/fd) and threads
# (/proc/PID/task). Verdict: after the first minute (warm-up: buffers,
# TLS session cache, aio helpers reach their working size) each series must
# be flat within noise: the median of the last third of the samples at
# most the median of the first third plus a margin (RSS: 10% + 2 MiB;
# descriptors: 10% + 16; threads: + 4, glibc's aio helpers come and go).
# Samples and verdict go to OUT (bench/results/soak.txt). Not part of
# make test. Environment: SAMPLE_S, OUT, PORT_BASE (17300..17302), ECHOD,
# ECHOLOAD, HUP_S (5) and ROTATE_S (3), 0 to leave that signal out (to tell
# which part of the load a growth comes with).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${2:-600}
SAMPLE_S=${SAMPLE_S:-10}
HUP_S=${HUP_S:-5}
ROTATE_S=${ROTATE_S:-3}
OUT=${OUT:-bench/results/soak.txt}
PORT_BASE=${PORT_BASE:-17300}
ECHOD=${ECHOD:-$BUILD/server/echod}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
PORT=$PORT_BASE TLS_PORT=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2))
WARMUP=60

for c in openssl python3 curl; do
	command -v $c >/dev/null || { echo "$0: needs $c" >&2; exit 1; }
done
for b in "$ECHOD" "$ECHOLOAD"; do
	[ -x "$b" ] || { echo "$0: $b is not built" >&2; exit 1; }
done
[ "$DURATION" -gt $((WARMUP + 3 * SAMPLE_S)) ] ||
	{ echo "$0: DURATION must exceed $((WARMUP + 3 * SAMPLE_S)) s" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${ECHOD_PID:-}" ] && kill "$ECHOD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. bench/lib.sh

ossl() { openssl "$@" >/dev/null 2>&1 </dev/null; }
( cd "$TMP"
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.pem -days 2 -subj /CN=localhost \
      -addext subjectAltName=DNS:localhost,IP:127.0.0.1 ) ||
	{ echo "$0: openssl failed" >&2; exit 1; }

cat >"$TMP/echod.conf" <<EOF
[server]
workers = 2
shutdown_timeout = 2s
[limits]
max_connections = 4000
idle_timeout = 30s
[tls]
certificate = $TMP/server.pem
key = $TMP/server.key
[listen plain]
address = 127.0.0.1:$PORT
[listen tls]
address = 127.0.0.1:$TLS_PORT
tls = yes
[log]
error_log = $TMP/error.log
access_log = $TMP/access.log
[admin]
address = 127.0.0.1:$ADMIN
EOF

"$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
ECHOD_PID=$!
wait_port "$PORT"
wait_port "$TLS_PORT"
END=$(( $(date +%s) + DURATION ))

# Each load runs in a loop until END, so that one failed run does not end
# the soak; failures are counted in $TMP/fail.
fail() { echo "$1" >>"$TMP/fail"; }
until_end() {	# name, port, echoload options...
	local name=$1 port=$2 left; shift 2
	while [ "$(date +%s)" -lt "$END" ]; do
		left=$(( END - $(date +%s) ))
		[ $left -gt 0 ] || break
		"$ECHOLOAD" -q -t 1 "$@" -d "${left}s" "127.0.0.1:$port" \
		    >>"$TMP/$name.out" 2>&1 || { fail "$name"; sleep 1; }
	done
}
until_end echo "$PORT" -c 32 -R 2000 -s 256 & PIDS+=($!)
until_end connect "$PORT" -c 4 -m connect -R 100 & PIDS+=($!)
until_end tls "$TLS_PORT" -c 8 -R 500 --tls --insecure & PIDS+=($!)
until_end tlsconnect "$TLS_PORT" -c 2 -m connect -R 20 --tls --insecure \
    --no-resume & PIDS+=($!)

# Slow readers: each sends 256 KiB and reads it back 4 KiB at a time, a
# read every 50 ms, then reconnects: echod holds their unsent bytes.
python3 - "$PORT" "$END" >"$TMP/slow.out" 2>&1 <<'PYEOF' & PIDS+=($!)
import socket, sys, threading, time
port, end = int(sys.argv[1]), int(sys.argv[2])
done = [0]
def one():
    while time.time() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            total = 256 * 1024
            out, got = b"s" * total, 0
            while got < total and time.time() < end:
                if out:
                    try:
                        n = s.send(out[:65536]); out = out[n:]
                    except BlockingIOError:
                        pass
                try:
                    b = s.recv(4096)
                    if not b:
                        break
                    got += len(b)
                except BlockingIOError:
                    pass
                time.sleep(0.05)
            s.close()
            done[0] += 1
        except OSError:
            time.sleep(0.5)
ts = [threading.Thread(target=one) for _ in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("slow reader connections:", done[0])
PYEOF

# Signals: HUP every 5 s, a rotation every 3 s (the rotated file deleted).
( n=0
  while [ "$(date +%s)" -lt "$END" ]; do
	sleep 1; n=$((n + 1))
	if [ "$HUP_S" -gt 0 ] && [ $((n % HUP_S)) -eq 0 ]; then
		kill -HUP "$ECHOD_PID"; echo hup
	fi
	if [ "$ROTATE_S" -gt 0 ] && [ $((n % ROTATE_S)) -eq 0 ]; then
		mv -f "$TMP/access.log" "$TMP/access.log.1" 2>/dev/null
		mv -f "$TMP/error.log" "$TMP/error.log.1" 2>/dev/null
		kill -USR1 "$ECHOD_PID"; echo usr1
		sleep 0.5; rm -f "$TMP/access.log.1" "$TMP/error.log.1"
	fi
  done >"$TMP/signals.out" ) & PIDS+=($!)

# One admin scraper.
( while [ "$(date +%s)" -lt "$END" ]; do
	curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN/metrics" &&
	    echo ok || echo failed
	sleep 1
  done >"$TMP/scrape.out" 2>&1 ) & PIDS+=($!)

# Sample.
START=$(date +%s)
: >"$TMP/samples"
while [ "$(date +%s)" -lt "$END" ]; do
	kill -0 "$ECHOD_PID" 2>/dev/null || { echo "$0: echod died" >&2; break; }
	t=$(( $(date +%s) - START ))
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$ECHOD_PID"/status)
	fds=$(ls /proc/"$ECHOD_PID"/fd | wc -l)
	thr=$(ls /proc/"$ECHOD_PID"/task | wc -l)
	echo "$t $rss $fds $thr" >>"$TMP/samples"
	sleep "$SAMPLE_S"
done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()
alive=yes
kill -0 "$ECHOD_PID" 2>/dev/null || alive=no
metrics=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" 2>/dev/null)
kill -TERM "$ECHOD_PID" 2>/dev/null
wait "$ECHOD_PID"; rc=$?
ECHOD_PID=

mkdir -p "$(dirname "$OUT")"
{
	echo "# bench/soak.sh $BUILD $DURATION: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# $(uname -srm), $(nproc) CPUs, load average at the end:" \
	    "$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# echod $("$ECHOD" -V)"
	echo "# load: echo 2000/s x 256 B on 32 conns; connect 100/s;" \
	    "TLS echo 500/s on 8 conns; TLS full handshakes 20/s;" \
	    "16 slow readers; HUP every $HUP_S s; rotation+USR1 every" \
	    "$ROTATE_S s (0: none); /metrics 1/s"
	echo "#"
	echo "# t_s rss_kib fds threads"
	cat "$TMP/samples"
	echo "#"
	echo "# signals sent: $(grep -c hup "$TMP/signals.out") HUP," \
	    "$(grep -c usr1 "$TMP/signals.out") USR1;" \
	    "scrapes: $(grep -c ok "$TMP/scrape.out") ok," \
	    "$(grep -c failed "$TMP/scrape.out") failed;" \
	    "$(tail -n 1 "$TMP/slow.out")"
	echo "# load runs that failed: $(sort "$TMP/fail" 2>/dev/null |
	    uniq -c | tr '\n' ' ')"
	echo "# echod alive until the end: $alive; exit status after SIGTERM: $rc"
	echo "$metrics" | grep -E '^echod_log_lines_(written|dropped)_total|^echod_log_reopens_total' |
	    sed 's/^/# /'
	awk -v warm="$WARMUP" -v alive="$alive" -v rc="$rc" '
	function median(a, lo, hi,   n, i, j, t, v) {
		n = 0
		for (i = lo; i <= hi; i++) v[++n] = a[i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
				t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
			}
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	$1 >= warm { n++; rss[n] = $2; fds[n] = $3; thr[n] = $4 }
	END {
		k = int(n / 3)
		if (k < 1) { print "# verdict: FAIL (too few samples)"; exit }
		r0 = median(rss, 1, k); r1 = median(rss, n - k + 1, n)
		f0 = median(fds, 1, k); f1 = median(fds, n - k + 1, n)
		t0 = median(thr, 1, k); t1 = median(thr, n - k + 1, n)
		okr = r1 <= r0 * 1.10 + 2048
		okf = f1 <= f0 * 1.10 + 16
		okt = t1 <= t0 + 4
		printf "# after %d s, %d samples: first third vs last third " \
		    "(medians)\n", warm, n
		printf "#   rss_kib %d -> %d (%+.1f%%) %s\n", r0, r1,
		    (r1 - r0) * 100 / r0, okr ? "flat" : "GROWS"
		printf "#   fds     %d -> %d %s\n", f0, f1, okf ? "flat" : "GROWS"
		printf "#   threads %d -> %d %s\n", t0, t1, okt ? "flat" : "GROWS"
		ok = okr && okf && okt && alive == "yes" && rc == 0
		printf "# verdict: %s\n", ok ? "PASS" : "FAIL"
	}' "$TMP/samples"
} >"$OUT"
cat "$OUT"
grep -q "^# verdict: PASS" "$OUT"
