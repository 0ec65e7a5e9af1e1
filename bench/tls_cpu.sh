#!/bin/bash
#
# tls_cpu.sh: echod's CPU cost per echoed message over TLS against Redis's
# own TLS server (redis-server --tls-port) answering ECHO, measured in the
# same run with the same third-party client: redis-benchmark --tls (an
# echoed RESP request is a valid reply). Server and client are pinned to
# different cores; a server's CPU time is the sum of its threads' run time
# from /proc/PID/task/*/schedstat, divided by the number of requests. The
# connections are made once per run (keep-alive), so this is the record
# path, not handshakes. Both servers use the same throwaway EC P-256
# certificate and negotiate TLS 1.3 with the same cipher suite. Each case
# runs REPS times, alternating the two servers; the median is reported.
# echod runs with one worker, Redis with its default single I/O thread.
#
# usage: bench/tls_cpu.sh [BUILD_DIR]
# environment: ECHOD, REDIS (redis-server), SERVER_CPU (0), CLIENT_CPU (1),
# REPS (5), SCALE (1; multiplies the request counts), PORT_BASE (17200),
# CIPHERSUITE (TLS_AES_128_GCM_SHA256), CASES ("1 2 3": which cases run).

set -eu

BUILD=${1:-build}
ECHOD=${ECHOD:-$BUILD/server/echod}
REDIS=${REDIS:-redis-server}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REPS=${REPS:-5}
SCALE=${SCALE:-1}
PORT_BASE=${PORT_BASE:-17200}
CIPHERSUITE=${CIPHERSUITE:-TLS_AES_128_GCM_SHA256}
CASES=${CASES:-1 2 3}
TARGET=0.80

[ -x "$ECHOD" ] || { echo "$0: $ECHOD not built (ninja -C $BUILD)" >&2; exit 1; }
for c in "$REDIS" redis-benchmark taskset openssl; do
	command -v "$c" >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
REDIS_PID=
ECHOD_PID=
cleanup() {
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
	[ -n "$ECHOD_PID" ] && kill "$ECHOD_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

REDIS_PORT=$PORT_BASE
ECHOD_PORT=$((PORT_BASE + 1))
. "$(dirname "$0")/lib.sh"

# A throwaway CA and server certificate.
(
	cd "$TMP"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout server.key -out server.csr -subj /CN=localhost
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
	    -CAcreateserial -out server.pem -days 1 -extfile server.ext
) >/dev/null 2>&1 || { echo "$0: cannot make certificates" >&2; exit 1; }

cat >"$TMP/echod.conf" <<EOF
[server]
workers = 1

[limits]
idle_timeout = 0

[tls]
certificate = $TMP/server.pem
key = $TMP/server.key
ciphersuites = $CIPHERSUITE

[listen t]
address = 127.0.0.1:$ECHOD_PORT
tls = yes
EOF

taskset -c "$SERVER_CPU" "$REDIS" --port 0 --tls-port "$REDIS_PORT" \
    --bind 127.0.0.1 --tls-cert-file "$TMP/server.pem" \
    --tls-key-file "$TMP/server.key" --tls-ca-cert-file "$TMP/ca.pem" \
    --tls-auth-clients no --tls-ciphersuites "$CIPHERSUITE" \
    --save "" --appendonly no --daemonize no --maxclients 10000 \
    --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
taskset -c "$SERVER_CPU" "$ECHOD" -f -c "$TMP/echod.conf" 2>"$TMP/echod.err" &
ECHOD_PID=$!
wait_port "$REDIS_PORT"
wait_port "$ECHOD_PORT"

REF_NAME=redis REF_PID=$REDIS_PID REF_PORT=$REDIS_PORT
RB_EXTRA=(--tls --cacert "$TMP/ca.pem" --sni localhost)

# The cases chosen by CASES, by number.
CASE_NO=0
run_case() {
	CASE_NO=$((CASE_NO + 1))
	case " $CASES " in *" $CASE_NO "*) compare_case "$@" ;; esac
}

echo "tls_cpu: echod vs redis-server $("$REDIS" --version | sed 's/.*v=\([^ ]*\).*/\1/'), TLS 1.3 $CIPHERSUITE," \
    "server on cpu $SERVER_CPU, redis-benchmark --tls on cpu $CLIENT_CPU, median of $REPS runs"
echo "$(uname -sr), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(openssl version)"
compare_header
run_case "50 conns x 64 B"      50 1  200000  "$P64"
run_case "50 conns x 64 B, P16" 50 16 1000000 "$P64"
run_case "10 conns x 4 KiB"     10 1  100000  "$P4K"
