#!/usr/bin/env bash
# Make sure the command-line tools the test suite calls besides our own are
# present.  Today that is promtool (the alert rules are checked and unit-tested
# with it): taken from Debian's `prometheus` package, of which only the
# promtool binary is extracted into <cache>/tools (no service is installed).
# Nothing is fetched when promtool is on PATH or already in the cache.
set -euo pipefail
cache="${FMA_CACHE_DIR:-$HOME/.cache/fma}"
tools="$cache/tools"
command -v promtool >/dev/null 2>&1 && exit 0
[ -x "$tools/promtool" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test: promtool missing and this is not a Debian-like system; install Prometheus' promtool on PATH." >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "==> fetching promtool from Debian's prometheus package into $tools"
if ! apt-get download -q prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make test: promtool missing and the package lists are stale; run as root (or: sudo apt-get install -y prometheus)." >&2
    exit 2
  fi
  apt-get update -q >/dev/null
  apt-get download -q prometheus >/dev/null 2>&1
fi
dpkg-deb -x prometheus_*.deb root
mkdir -p "$tools"
install -m 0755 root/usr/bin/promtool "$tools/promtool"
"$tools/promtool" --version | head -1
