#!/usr/bin/env bash
# Build the FMA image and the launcher image (images/*/Containerfile) with the
# first container engine found: docker, podman or buildah ($CONTAINER_ENGINE
# picks one).  Names: $IMAGE_REPO:$IMAGE_TAG and $IMAGE_REPO-launcher:$IMAGE_TAG
# (defaults ghcr.io/llm-d/fma and the project version).  Extra build arguments:
# $VLLM_IMAGE (the launcher's base), $PYTHON_IMAGE (the FMA image's base).
# SCHEDULER_IMAGE=1 also builds FMA's kube-scheduler (images/fma-scheduler,
# only for the chart's placementNominate: plugin; a Kubernetes build, minutes)
# as $IMAGE_REPO-scheduler:$IMAGE_TAG.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
repo=${IMAGE_REPO:-ghcr.io/llm-d/fma}
tag=${IMAGE_TAG:-$version}

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  for candidate in docker podman buildah; do
    if command -v "$candidate" >/dev/null 2>&1; then engine=$candidate; break; fi
  done
fi
if [ -z "$engine" ]; then
  echo "make images: no container engine found (looked for docker, podman and buildah on PATH)." >&2
  echo "Install one of them, or set CONTAINER_ENGINE; nothing was built." >&2
  exit 2
fi
if ! command -v "$engine" >/dev/null 2>&1; then
  echo "make images: CONTAINER_ENGINE=$engine is not on PATH; nothing was built." >&2
  exit 2
fi

case "$(basename "$engine")" in
  docker | podman)
    if ! "$engine" info >/dev/null 2>&1; then
      echo "make images: $engine is installed but cannot reach its daemon or service ($engine info fails); nothing was built." >&2
      exit 2
    fi
    ;;
esac

build() {  # build <containerfile> <image> [build args...]
  local file=$1 image=$2
  shift 2
  local args=()
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  echo "==> $engine: building $image from $file"
  case "$(basename "$engine")" in
    buildah) "$engine" bud --layers -f "$file" -t "$image" "${args[@]}" . ;;
    *) "$engine" build -f "$file" -t "$image" "${args[@]}" . ;;
  esac
}

fma_args=()
[ -n "${PYTHON_IMAGE:-}" ] && fma_args+=("PYTHON_IMAGE=$PYTHON_IMAGE")
launcher_args=()
[ -n "${VLLM_IMAGE:-}" ] && launcher_args+=("VLLM_IMAGE=$VLLM_IMAGE")
build images/fma/Containerfile "$repo:$tag" "${fma_args[@]+"${fma_args[@]}"}"
build images/launcher/Containerfile "$repo-launcher:$tag" "${launcher_args[@]+"${launcher_args[@]}"}"
if [ "${SCHEDULER_IMAGE:-}" = 1 ]; then
  build images/fma-scheduler/Containerfile "$repo-scheduler:$tag"
  echo "==> built $repo:$tag, $repo-launcher:$tag and $repo-scheduler:$tag with $engine"
else
  echo "==> built $repo:$tag and $repo-launcher:$tag with $engine" \
    "(FMA's kube-scheduler image, for placementNominate: plugin, only with SCHEDULER_IMAGE=1)"
fi
