#!/bin/sh
# Install what echoload needs to build and test, from Debian's archive.
# Does nothing when everything is there already; otherwise needs root (or
# sudo). Used by the Makefile and by CI.
set -e
PKGS="build-essential meson ninja-build pkg-config libevent-dev libssl-dev
libinih-dev libcmocka-dev python3 python3-pytest python3-prometheus-client
openssl redis-tools procps man-db"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && [ "$1" != "--update" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
[ -z "$missing" ] || $SUDO apt-get install -y -q $missing
