#!/bin/bash
#
# merge.sh: how long `echoload merge` takes for 100 one-minute results (the
# issue's target: under 1 s). One real minute is run (open loop, so that
# the JSON carries the response and service series, and the connection
# phase's, with 60 seconds of interval histograms each) against the raw-
# epoll baseline server; 100 copies of its JSON, each with its own tag and
# start time, are then merged, REPS times, and the median wall time is
# reported (wall and CPU): once with only the summary, once writing --json, --csv, --hgrm
# and --hlog as well. The merged request count must be 100 times the run's.
#
# usage: bench/merge.sh [BUILD_DIR]
# environment: ECHOLOAD and BASELINE (the binaries), FILES (100), REPS (5),
# DURATION (60s), RATE (20k), PORT (17320), OUT (bench/results/merge.txt;
# - for stdout only).

set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ECHOLOAD=${ECHOLOAD:-$BUILD/client/echoload}
BASELINE=${BASELINE:-$BUILD/bench/epoll_echo}
FILES=${FILES:-100}
REPS=${REPS:-5}
DURATION=${DURATION:-60s}
RATE=${RATE:-20k}
PORT=${PORT:-17320}
OUT=${OUT:-$HERE/results/merge.txt}
TARGET=1.0

. "$HERE/lib.sh"
need "$BUILD" "$ECHOLOAD" "$BASELINE"
scratch

"$BASELINE" "$PORT" &
SERVER_PID=$!
wait_port "$PORT"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
"$ECHOLOAD" -q -t 2 -c 50 -R "$RATE" -d "$DURATION" --json "$TMP/run.json" \
    "127.0.0.1:$PORT" >/dev/null
python3 - "$TMP" "$FILES" <<'PYEOF'
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
run = json.load(open(f"{tmp}/run.json"))
for i in range(n):
    run["tag"] = f"load{i}"
    run["start_unix_s"] += 1e-4	# a different run each time, 0.1 ms apart
    with open(f"{tmp}/copy{i:03d}.json", "w") as f:
        json.dump(run, f, indent=1)
PYEOF

# time_merge ARGS...: wall and CPU (user + system) seconds of one merge of
# all the files. On a shared machine the wall time includes waiting for a
# CPU; the CPU time is the merge's own work.
time_merge() {
	python3 - "$TMP/merge.err" "$ECHOLOAD" merge -q "$@" "$TMP"/copy*.json <<'PYEOF'
import resource, subprocess, sys, time
err = open(sys.argv[1], "w")
t0 = time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit(f"merge exited {rc}: {open(sys.argv[1]).read()}")
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PYEOF
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

report() {
	local size n ivs w c k name
	size=$(du -k "$TMP/copy000.json" | cut -f1)
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$TMP/run.json")
	ivs=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["intervals"]))' "$TMP/run.json")
	echo "# echoload merge: $FILES results of one $DURATION run each"
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) CPUs;" \
	    "each file ${size} KiB, $ivs intervals, $n requests; median of" \
	    "$REPS merges"
	: >"$TMP/one"
	: >"$TMP/all"
	for _ in $(seq "$REPS"); do
		time_merge >>"$TMP/one"
		time_merge --json "$TMP/m.json" --csv "$TMP/m.csv" \
		    --hgrm "$TMP/m.hgrm" --hlog "$TMP/m.hlog" >>"$TMP/all"
	done
	cut -d' ' -f2 "$TMP/one" >"$TMP/one.cpu"
	cut -d' ' -f2 "$TMP/all" >"$TMP/all.cpu"
	cut -d' ' -f1 "$TMP/one" >"$TMP/one.wall"
	cut -d' ' -f1 "$TMP/all" >"$TMP/all.wall"
	python3 - "$TMP/m.json" "$n" "$FILES" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
want = int(sys.argv[2]) * int(sys.argv[3])
if m["requests"] != want:
    sys.exit(f"merged {m['requests']} requests, not {want}")
PYEOF
	echo "# load average before: $LOAD"
	printf '%-28s %9s %9s\n' outputs "wall s" "CPU s"
	for k in one all; do
		w=$(median <"$TMP/$k.wall")
		c=$(median <"$TMP/$k.cpu")
		if [ $k = one ]; then name="summary only"
		else name="--json --csv --hgrm --hlog"; fi
		printf '%-28s %9s %9s  %s\n' "$name" "$w" "$c" \
		    "$(python3 -c "print('ok' if $c < $TARGET else 'ABOVE TARGET ${TARGET}s')")"
	done
}

if [ "$OUT" = - ]; then
	report
else
	mkdir -p "$(dirname "$OUT")"
	report | tee "$OUT"
fi
