# lib.sh: what the benchmarks share; sourced, not run. need and scratch
# are every script's preamble. For the rest the caller sets TMP,
# CLIENT_CPU, REPS, SCALE and TARGET; for compare_case also
# REF_NAME, REF_PID, REF_PORT (the server echod is compared against),
# ECHOD_PID, ECHOD_PORT, and RB_EXTRA (an array of extra redis-benchmark
# arguments, e.g. its TLS options).

# need BUILD_DIR FILE... [-- COMMAND...]: exit with one line unless every
# FILE is built and every COMMAND is on PATH.
need() {
	local build=$1 c
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		[ -x "$1" ] || { echo "$0: $1 not built (ninja -C $build)" >&2; exit 1; }
		shift
	done
	[ $# -gt 0 ] && shift
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "$0: $c not found" >&2; exit 1; }
	done
}

# scratch: a temporary directory in TMP; at exit the server whose pid is in
# SERVER_PID, if any, is stopped and the directory removed.
scratch() {
	TMP=$(mktemp -d)
	SERVER_PID=
	trap scratch_cleanup EXIT
	trap 'exit 1' INT TERM
}

scratch_cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$TMP"
}

# Wait until something accepts on 127.0.0.1:$1.
wait_port() {
	local i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: nothing listens on $1" >&2; exit 1; }
		sleep 0.05
	done
}

# Run time of every thread of process $1, in ns (%.0f: awk's %d would
# stop at 2^31).
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
	    awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# The median of the numbers on standard input.
median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One redis-benchmark run against pid $1 on port $2, $3 requests, the rest
# of the arguments passed on; prints ns of server CPU per request and the
# client's requests per second.
measure() {
	local pid=$1 port=$2 n=$3 before after rps
	shift 3
	before=$(cpu_ns "$pid")
	taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port" \
	    "${RB_EXTRA[@]}" -n "$n" --csv "$@" >"$TMP/rb.out" 2>&1 || {
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

# compare_case NAME CONNECTIONS PIPELINE REQUESTS PAYLOAD: REPS runs of each
# server, alternating which goes first so that drift hits both alike; one
# table row of medians and the ratio echod / reference.
compare_case() {
	local name=$1 conns=$2 pipe=$3 payload=$5 n r s pid port order
	local b e brps erps
	n=$(awk -v n="$4" -v s="$SCALE" 'BEGIN { printf "%d\n", n * s }')
	for s in ref echod; do : >"$TMP/$s.ns"; : >"$TMP/$s.rps"; done
	r=0
	while [ $r -lt "$REPS" ]; do
		if [ $((r % 2)) -eq 0 ]; then order="ref echod"; else order="echod ref"; fi
		for s in $order; do
			if [ $s = ref ]; then pid=$REF_PID port=$REF_PORT
			else pid=$ECHOD_PID port=$ECHOD_PORT; fi
			set -- $(measure "$pid" "$port" "$n" -c "$conns" \
			    -P "$pipe" ECHO "$payload")
			echo "$1" >>"$TMP/$s.ns"
			echo "$2" >>"$TMP/$s.rps"
		done
		r=$((r + 1))
	done
	b=$(median <"$TMP/ref.ns")
	e=$(median <"$TMP/echod.ns")
	brps=$(median <"$TMP/ref.rps")
	erps=$(median <"$TMP/echod.rps")
	awk -v name="$name" -v b="$b" -v e="$e" -v brps="$brps" \
	    -v erps="$erps" -v t="$TARGET" 'BEGIN {
		r = e / b
		printf "%-22s %10.1f %10.1f %7.3f %6s %9.0f %9.0f\n",
		    name, b, e, r, r <= t ? "ok" : "MISS", brps, erps }'
}

# The table header for compare_case.
compare_header() {
	printf "%-22s %10s %10s %7s %6s %9s %9s\n" case "$REF_NAME ns" \
	    "echod ns" ratio "<=$TARGET" "$REF_NAME rps" "echod rps"
}

P64=$(printf '%064d' 0 | tr 0 x)
P4K=$(printf '%04096d' 0 | tr 0 x)
