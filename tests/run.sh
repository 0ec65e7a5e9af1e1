#!/bin/bash
# Build and run every suite: unit tests and the functional suite on a release
# build; the functional suite again on libevent's select back end and on a
# build that takes every POSIX fallback (-Dportable=true) with the poll back
# end, so that neither program depends on epoll or on a Linux-only call (the
# two runs go side by side: the suite mostly waits on sockets and timers);
# and everything once more under AddressSanitizer and
# UndefinedBehaviorSanitizer. Ends with one line that counts every test.
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
	rm -f "$1/meson-logs/testlog.json"
	if meson test -C "$1" --suite unit --print-errorlogs \
	    >"$results/unit-$2.log" 2>&1; then
		grep -E "^(Ok|Fail):" "$results/unit-$2.log"
	else
		cat "$results/unit-$2.log"; status=1
	fi
	# meson test counts programs; the closing line counts the cmocka cases
	# inside them, from the per-test record meson keeps.
	cp "$1/meson-logs/testlog.json" "$results/unit-$2.json" 2>/dev/null ||
	    : >"$results/unit-$2.json"
}

functional() {	# dir, label, env...
	local dir=$1 label=$2; shift 2
	echo "== functional tests ($label)"
	: >"$results/func-$label.expected"
	env ECHOLOAD_BUILD="$PWD/$dir" "$@" $PY -m pytest -q -p no:cacheprovider \
	    --junitxml="$results/func-$label.xml" tests/functional ||
	    status=1
}

# The same, in the background with its output kept for later; the caller
# waits for it.
functional_bg() {	# dir, label, env...
	local dir=$1 label=$2; shift 2
	: >"$results/func-$label.expected"
	env ECHOLOAD_BUILD="$PWD/$dir" "$@" $PY -m pytest -q -p no:cacheprovider \
	    --junitxml="$results/func-$label.xml" tests/functional \
	    >"$results/func-$label.log" 2>&1
}

build build || exit 1
unit build release
functional build release

# The code macOS and the BSDs run: every POSIX fallback (-Dportable=true)
# on libevent's poll back end; beside it, the release build on select. Two
# suites share the machine, so their time bounds are doubled.
build build-portable -Dportable=true || exit 1
unit build-portable portable
echo "== functional tests (select and portable, side by side)"
functional_bg build select ECHOLOAD_SLOW=2 EVENT_NOEPOLL=1 EVENT_NOPOLL=1 &
select_pid=$!
functional_bg build-portable portable ECHOLOAD_SLOW=2 EVENT_NOEPOLL=1 &
portable_pid=$!
wait $select_pid || status=1
wait $portable_pid || status=1
for label in select portable; do
	echo "== functional tests ($label)"
	cat "$results/func-$label.log"
done

build build-asan -Dsanitize=address,undefined -Dbuildtype=debugoptimized \
    -Db_lundef=false || exit 1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unit build-asan asan
functional build-asan asan ECHOLOAD_SLOW=3

$PY - "$results" <<'PYEOF' || status=1
# Every suite's count must be read, or the line would hide tests: a missing
# or unreadable record is an error, never a zero.
import glob, json, re, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
passed = failed = skipped = 0
unreadable = []

def cmocka(name, out, result):
    """Cases of one cmocka program: (passed, failed), or None if unread."""
    run = re.search(r"^\[==========\] Running (\d+) test\(s\)\.", out, re.M)
    ok = re.search(r"^\[  PASSED  \] (\d+) test\(s\)\.", out, re.M)
    bad = re.search(r"^\[  FAILED  \] (\d+) test\(s\)", out, re.M)
    if not run:
        return None
    n = int(run.group(1))
    f = int(bad.group(1)) if bad else 0
    if ok:
        p = int(ok.group(1))
    else:	# it crashed: the cases it finished are those marked OK
        p = len(re.findall(r"^\[       OK \] ", out, re.M))
    if result == "OK" and (not ok or p + f != n):
        return None
    if result != "OK":	# a crash leaves cases unreported: they failed
        f = max(f, n - p, 1)
    return p, f

for f in sorted(glob.glob(d + "/unit-*.json")):
    label = f[len(d) + 6:-5]
    tests = [json.loads(l) for l in open(f) if l.strip()]
    if not tests:
        unreadable.append(f"unit tests ({label}): no meson test log")
    for t in tests:
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        if t["result"] == "SKIP":
            skipped += 1
        elif "[==========]" in out or "[ RUN      ]" in out:
            c = cmocka(t["name"], out, t["result"])
            if c is None:
                unreadable.append(f"unit tests ({label}): {t['name']}")
                continue
            passed += c[0]
            failed += c[1]
        elif t["result"] == "OK":	# not cmocka: one test
            passed += 1
        else:
            failed += 1
for f in sorted(glob.glob(d + "/func-*.expected")):
    xml = f[:-len(".expected")] + ".xml"
    try:
        suites = list(ET.parse(xml).getroot().iter("testsuite"))
    except (OSError, ET.ParseError):
        suites = []
    if not suites:
        unreadable.append("functional tests (" + xml[len(d) + 6:-4] + ")")
    for s in suites:
        t, e, fl, sk = (int(s.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
        failed += e + fl
        skipped += sk
        passed += t - e - fl - sk
print(f"all: {passed} passed, {failed} failed, {skipped} skipped")
for u in unreadable:
    print(f"all: cannot read the count of {u}", file=sys.stderr)
sys.exit(1 if unreadable else 0)
PYEOF
rm -rf "$results"
exit $status
