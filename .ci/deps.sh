#!/bin/sh
# Install what echoload needs from Debian's archive, in sets:
#   build  what echod and echoload need to build (all `make demo` installs)
#   test   what the suites need on top (`make test`), and the npm packages
#          of tests/package.json (an independent HdrHistogram reader)
#   bench  what the benchmarks in bench/ compare against
# Usage: deps.sh [--update] SET...   (default: build)
# Does nothing when every package of the sets is there already; otherwise
# needs root (or sudo). apt's own output goes to a log file; the terminal
# gets one line per step, and a failure names what failed.
set -e
BUILD="build-essential meson ninja-build pkg-config libevent-dev libssl-dev
libinih-dev zlib1g-dev libjansson-dev"
TEST="libcmocka-dev python3 python3-pytest python3-prometheus-client
python3-matplotlib python3-yaml openssl procps man-db iproute2 haproxy pdsh"
BENCH="redis-tools redis-server libuv1-dev"

update=no
sets=""
for a in "$@"; do
	case $a in
	--update) update=yes ;;
	build|test|bench) sets="$sets $a" ;;
	*) echo "deps.sh: unknown set '$a' (build, test, bench)" >&2; exit 2 ;;
	esac
done
[ -n "$sets" ] || sets=build
pkgs=""
for s in $sets; do
	case $s in
	build) pkgs="$pkgs $BUILD" ;;
	test) pkgs="$pkgs $TEST" ;;
	bench) pkgs="$pkgs $BENCH" ;;
	esac
done

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
log=${TMPDIR:-/tmp}/echoload-deps.log
tests=$(cd "$(dirname "$0")/../tests" && pwd)

# The test set's npm packages, at the versions tests/package-lock.json
# pins, with the machine's Node.js (Debian's nodejs and npm if it has none).
npm_deps() {
	case " $sets " in *" test "*) ;; *) return 0 ;; esac
	if ! command -v npm >/dev/null 2>&1; then
		echo "deps: installing nodejs npm"
		$SUDO apt-get install -y -q --no-install-recommends nodejs npm \
		    >>"$log" 2>&1 || { echo "deps: cannot install nodejs npm;" \
		    "see $log" >&2; exit 1; }
	fi
	[ -f "$tests/node_modules/hdr-histogram-js/package.json" ] && return 0
	echo "deps: npm ci in tests/"
	(cd "$tests" && npm ci --no-audit --no-fund) >>"$log" 2>&1 ||
	    { echo "deps: npm ci in tests/ failed; see $log" >&2; exit 1; }
}

if [ -z "$missing" ] && [ $update = no ]; then
	npm_deps
	exit 0
fi
: >"$log"
echo "deps: apt-get update (log: $log)"
if ! $SUDO apt-get update -q >>"$log" 2>&1; then
	echo "deps: apt-get update failed; see $log" >&2
	tail -5 "$log" >&2
	exit 1
fi
if [ -z "$missing" ]; then
	npm_deps
	exit 0
fi
echo "deps: installing$missing"
if ! $SUDO apt-get install -y -q --no-install-recommends $missing \
    >>"$log" 2>&1; then
	# Name the package that could not be had, one at a time.
	for p in $missing; do
		$SUDO apt-get install -y -q --no-install-recommends "$p" \
		    >>"$log" 2>&1 || echo "deps: cannot install $p; see $log" >&2
	done
	exit 1
fi
npm_deps
echo "deps: done"
