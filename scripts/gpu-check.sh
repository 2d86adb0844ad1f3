#!/usr/bin/env bash
# The GPU tier in one command: tests/gpu and benchmarks/gpu_wake.py on a GPU machine.
#
# Meant for a machine that has a CUDA GPU, torch and nvidia-ml-py and nothing
# else of ours, possibly without network (a fresh GPU node type, a lent
# accelerator box).  The project's other Python dependencies come from wheels
# brought along with the tree, listed in requirements/gpu-check.txt:
#
#   scripts/gpu-check.sh --fetch-wheels     where the network is: download them into .wheelhouse/
#                                           (git-ignored; about 16 MB) for the GPU machine's Python
#   scripts/gpu-check.sh [OUTDIR]           on the GPU machine: install them into a private directory
#                                           (nothing is installed into the machine's environment), then
#                                           run the GPU tests and the benchmark; logs, the JUnit XML and
#                                           gpu_wake.json go to OUTDIR (default ./gpu-check-out)
#
# Environment: PYTHON (the interpreter that has torch; default python3),
# WHEELHOUSE (default .wheelhouse), GPU_PYTHON_VERSION (for --fetch-wheels;
# default 3.12), BENCH_GIB (model size of the benchmark; default 8),
# FMA_COMMIT (recorded in the results; default: git rev-parse HEAD when git
# works here).  Exit status: 0 when every GPU test passed and the benchmark
# ran; the benchmark's targets are reported, not enforced.  On an H200 the
# whole run takes about 3 minutes.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELHOUSE:-$ROOT/.wheelhouse}"
REQ="$ROOT/requirements/gpu-check.txt"

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    set -e
    version="${GPU_PYTHON_VERSION:-3.12}"
    mkdir -p "$WHEELS"
    platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
        platforms+=(--platform "$p")
    done
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$version" --implementation cp "${platforms[@]}" -d "$WHEELS" -r "$REQ"
    echo "==> wheels for CPython $version in $WHEELS ($(du -sh "$WHEELS" | cut -f1))"
    exit 0
fi

OUT="${1:-$ROOT/gpu-check-out}"
mkdir -p "$OUT"
cd "$ROOT"
started=$(date +%s)
say() { echo "==> [$(( $(date +%s) - started ))s] $*"; }

say "the machine"
nvidia-smi --query-gpu=name,uuid,memory.total,driver_version --format=csv,noheader || {
    echo "no GPU answers nvidia-smi here: nothing to check" >&2
    exit 2
}
"$PYTHON" - <<'PY' || exit 2
import platform

import pynvml
import torch

print(f"    python {platform.python_version()} | torch {torch.__version__} | CUDA available {torch.cuda.is_available()}")
pynvml.nvmlInit()
print(f"    NVML driver {pynvml.nvmlSystemGetDriverVersion()} | GPUs {pynvml.nvmlDeviceGetCount()}")
PY

say "installing the project's dependencies from $WHEELS (no index)"
SITE="$(mktemp -d /tmp/fma-gpu-site.XXXXXX)"
if ! compgen -G "$WHEELS/*.whl" >/dev/null; then
    echo "no wheels in $WHEELS: run 'scripts/gpu-check.sh --fetch-wheels' where the network is" >&2
    exit 2
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
    --target "$SITE" "$WHEELS"/*.whl || exit 2
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 FMA_ASSUME_GPU=1
if [[ -z "${FMA_COMMIT:-}" ]]; then
    FMA_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
fi
export FMA_COMMIT
"$PYTHON" -c "import fastapi, kubernetes, pydantic, uvicorn, launcher.tensor_engine, devcluster.pytest_plugin" || exit 2

say "GPU tests (tests/gpu)"
# Third-party deprecation warnings of this image's packages are not ours to fail on.
"$PYTHON" -m pytest tests/gpu -m gpu -v -p no:cacheprovider \
    -W "ignore::DeprecationWarning" -W "ignore::FutureWarning" -W "ignore::UserWarning" \
    --junitxml "$OUT/gpu-tests.xml" 2>&1 | tee "$OUT/gpu-tests.log"
tests_rc=${PIPESTATUS[0]}

say "benchmark (benchmarks/gpu_wake.py, ${BENCH_GIB:-8} GiB)"
"$PYTHON" benchmarks/gpu_wake.py --gib "${BENCH_GIB:-8}" --out "$OUT/gpu_wake.json" 2>&1 | tee "$OUT/gpu_wake.log"
bench_rc=${PIPESTATUS[0]}

say "done: tests exit status $tests_rc, benchmark exit status $bench_rc; results in $OUT"
rm -rf "$SITE"
[[ $tests_rc -eq 0 && $bench_rc -eq 0 ]]
