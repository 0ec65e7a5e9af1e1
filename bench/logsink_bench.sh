#!/bin/bash
#
# logsink_bench.sh: lines per second one aio log sink writes to a file.
# Builds bench/logsink_bench.c against server/logsink.c (optimized, outside
# the meson tree), then runs the ceiling ("max": the producer appends
# whenever there is room) and a fixed rate that must drop nothing (target
# 200,000 access-log lines/s). Each case runs REPS times; all runs print.
#
# usage: bench/logsink_bench.sh [DIR_FOR_THE_LOG_FILE]
# environment: RATE (200000), DURATION (3, seconds), REPS (3), CC (cc)

set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-${TMPDIR:-/tmp}}
RATE=${RATE:-200000}
DURATION=${DURATION:-3}
REPS=${REPS:-3}
CC=${CC:-cc}
BIN=$(mktemp -d)/logsink_bench
trap 'rm -rf "$(dirname "$BIN")"' EXIT

$CC -O2 -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror \
	-I"$ROOT/server" -I"$ROOT/common" \
	"$ROOT/bench/logsink_bench.c" "$ROOT/server/logsink.c" \
	"$ROOT/common/util.c" -o "$BIN" \
	$(pkg-config --cflags --libs libevent_core) -lrt -lpthread

echo "# $(uname -sr), $(nproc) CPUs, file in $DIR ($(df -T "$DIR" | awk 'NR==2 {print $2}'))"
FILE="$DIR/logsink_bench.$$"
for i in $(seq "$REPS"); do
	"$BIN" "$FILE" max "$DURATION"
done
status=0
for i in $(seq "$REPS"); do
	"$BIN" "$FILE" rate "$RATE" "$DURATION" || status=1
done
[ $status -eq 0 ] && echo "# rate $RATE lines/s: no line dropped" ||
	echo "# rate $RATE lines/s: lines dropped"
exit $status
