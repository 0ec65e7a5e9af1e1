#!/bin/bash
# Build and run every suite: unit tests and the functional suite on a release
# build, the functional suite again with libevent's poll and select back ends
# forced (echod must not depend on epoll), and everything once more under
# AddressSanitizer and UndefinedBehaviorSanitizer. Ends with one line that
# counts every test.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
results=$(mktemp -d)
status=0

build() {	# dir, extra meson options...
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	else
		meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >/dev/null || { ninja -C "$dir"; return 1; }
}

unit() {	# dir, label
	echo "== unit tests ($2)"
	if meson test -C "$1" --suite unit --print-errorlogs \
	    >"$results/unit-$2.log" 2>&1; then
		grep -E "^(Ok|Fail):" "$results/unit-$2.log"
	else
		cat "$results/unit-$2.log"; status=1
	fi
	# meson test counts test programs; count the cmocka cases inside.
	grep -hoE "\[  PASSED  \] [0-9]+ test" "$1/meson-logs/testlog.txt" |
	    awk '{n += $3} END {print n+0}' >"$results/unit-$2.passed"
	grep -hoE "\[  FAILED  \] [0-9]+ test" "$1/meson-logs/testlog.txt" |
	    awk '{n += $3} END {print n+0}' >"$results/unit-$2.failed"
}

functional() {	# dir, label, env...
	local dir=$1 label=$2; shift 2
	echo "== functional tests ($label)"
	env ECHOLOAD_BUILD="$PWD/$dir" "$@" $PY -m pytest -q -p no:cacheprovider \
	    --junitxml="$results/func-$label.xml" tests/functional ||
	    status=1
}

build build || exit 1
unit build release
functional build release
functional build poll EVENT_NOEPOLL=1
functional build select EVENT_NOEPOLL=1 EVENT_NOPOLL=1

build build-asan -Dsanitize=address,undefined -Dbuildtype=debugoptimized \
    -Db_lundef=false || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unit build-asan asan
functional build-asan asan ECHOLOAD_SLOW=3

$PY - "$results" <<'PYEOF'
import glob, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
passed = failed = skipped = 0
for f in glob.glob(d + "/unit-*.passed"):
    passed += int(open(f).read() or 0)
for f in glob.glob(d + "/unit-*.failed"):
    failed += int(open(f).read() or 0)
for f in glob.glob(d + "/func-*.xml"):
    for s in ET.parse(f).getroot().iter("testsuite"):
        t, e, fl, sk = (int(s.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
        failed += e + fl
        skipped += sk
        passed += t - e - fl - sk
print(f"all: {passed} passed, {failed} failed, {skipped} skipped")
PYEOF
rm -rf "$results"
exit $status
