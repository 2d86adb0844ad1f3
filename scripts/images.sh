#!/usr/bin/env bash
# `make images`: with a usable container engine, build the images from the
# Containerfiles (scripts/build-images.sh); without one, build them as OCI
# archives from Debian's packages and the locked wheels
# (devcluster/image_build.py, tools from scripts/image-tools.sh).
# An engine is usable when $CONTAINER_ENGINE names one, when docker or podman
# reaches its daemon or service, or when buildah (daemonless) is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON_BIN:-.venv/bin/python}

if [ -n "${CONTAINER_ENGINE:-}" ]; then exec scripts/build-images.sh; fi
for engine in docker podman; do
  if command -v "$engine" >/dev/null 2>&1 && "$engine" info >/dev/null 2>&1; then
    CONTAINER_ENGINE=$engine exec scripts/build-images.sh
  fi
done
if command -v buildah >/dev/null 2>&1; then CONTAINER_ENGINE=buildah exec scripts/build-images.sh; fi

echo "==> no usable container engine: building OCI archives with mmdebstrap and umoci (devcluster/image_build.py)"
scripts/image-tools.sh
exec "$python" -m devcluster.image_build
