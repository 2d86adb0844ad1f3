#!/usr/bin/env bash
# Install what `make images` needs to build OCI images without a container
# engine (devcluster/image_build.py): mmdebstrap (a Debian root file system
# from Debian's packages) and umoci (OCI image layouts).  Both come from
# Debian's own packages; nothing is installed when they are already there.
set -euo pipefail
missing=()
for tool in mmdebstrap umoci; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make images: ${missing[*]} missing and this is not a Debian-like system; install them with your package manager." >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "make images: ${missing[*]} missing; run as root (or: sudo apt-get install -y mmdebstrap umoci)." >&2
  exit 2
fi
echo "==> installing ${missing[*]} from Debian's packages"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap umoci >/dev/null
