"""Real vLLM (CPU build): instance start-to-healthy, forked from the preloaded launcher versus a fresh process.

Why: ``benchmarks/launcher_spawn.py`` measures the launcher's fork against a
stand-in import set; this one measures it against the real thing.  Both
paths serve the same tiny generated Llama (``tests/fixtures/tiny_model.py``)
with the same options and environment, from the vLLM virtualenv made by
``scripts/vllm-env.sh``:

- fork: one ``fma-launcher --engine vllm`` (its preloaded parent imports
  vLLM's API server once, before the first round); each sample is PUT
  instance → the instance's ``/health`` answers 200; then DELETE (timed too).
- fresh: ``python -m vllm.entrypoints.openai.api_server`` started for each
  sample; process start → ``/health`` 200; then SIGTERM and wait.

The rounds alternate (fork, fresh, fork, ...) so that load from others on a
shared machine hits both alike; the load average after each round is
recorded, and the best (minimum) of each path is reported beside the median
because others' load only ever adds time.  What the fork
cannot save: vLLM's CPU platform forces ``spawn`` for its engine-core and
worker processes, which import vLLM again; only the API server's imports are
skipped.  Prints a table and writes
``benchmarks/results/launcher_spawn_vllm.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import pathlib
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types

import httpx
import run_record

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "launcher_spawn_vllm.json"
ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_SERVER_DEV_MODE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_HOST_IP": "127.0.0.1",
}


def _fixture(name: str) -> types.ModuleType:
    path = REPO / "tests" / "fixtures" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fma_fixtures_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, timeout: float, alive: object = None) -> float:
    """Seconds until ``url`` answers 200; raises if ``alive()`` turns false or time runs out."""
    started = time.monotonic()
    with httpx.Client(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return time.monotonic() - started
            if callable(alive) and not alive():
                raise RuntimeError(f"{url}: the server exited before it became healthy")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{url} not healthy within {timeout}s")
            time.sleep(0.05)  # measurement resolution, not a wait for correctness


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _start_launcher(
    python: pathlib.Path, workdir: pathlib.Path, timeout: float
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _free_port()
    argv = [str(python), "-m", "launcher", "--engine", "vllm", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-dir", str(workdir), "--mock-gpus", "--mock-gpu-count", "1", "--no-nvml"]
    with (workdir / "launcher.log").open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    preload = _wait_healthy(f"{base}/health", timeout, alive=lambda: proc.poll() is None)
    return proc, base, preload


def _fork_sample(base: str, options: str, port: int, index: int, timeout: float) -> tuple[float, float]:
    instance = f"bench-{index}"
    with httpx.Client(base_url=base, timeout=120) as client:
        started = time.monotonic()
        response = client.put(f"/v2/vllm/instances/{instance}", json={"options": f"{options} --port {port}"})
        response.raise_for_status()

        def running() -> bool:
            return bool(client.get(f"/v2/vllm/instances/{instance}").json()["status"] == "running")

        _wait_healthy(f"http://127.0.0.1:{port}/health", timeout, alive=running)
        healthy = time.monotonic() - started
        stop_started = time.monotonic()
        client.delete(f"/v2/vllm/instances/{instance}").raise_for_status()
        return healthy, time.monotonic() - stop_started


def _fresh_sample(python: pathlib.Path, options: str, port: int, log: pathlib.Path, timeout: float) -> float:
    argv = [str(python), "-m", "vllm.entrypoints.openai.api_server", *options.split(), "--port", str(port)]
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, start_new_session=True
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", timeout, alive=lambda: proc.poll() is None)
        return time.monotonic() - started
    finally:
        _stop(proc)


def main() -> int:
    vllm_env = _fixture("vllm_env")
    tiny_model = _fixture("tiny_model")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=4, help="samples of each path (default 4)")
    parser.add_argument("--venv", type=pathlib.Path, default=vllm_env.venv_dir(), help="the vLLM virtualenv")
    parser.add_argument(
        "--options", default="--max-model-len 256 --enforce-eager", help="vLLM options besides --model and --port"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one start may take")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write the results file")
    args = parser.parse_args()

    python = args.venv / "bin" / "python"
    if not python.is_file():
        print(f"no vLLM environment at {args.venv}: run scripts/vllm-env.sh", file=sys.stderr)
        return 2
    model = tiny_model.ensure(python)
    options = f"--model {model} --host 127.0.0.1 {args.options}"
    run = run_record.start()
    load_before = os.getloadavg()
    fork: list[float] = []
    fork_delete: list[float] = []
    fresh: list[float] = []
    loads: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="fma-bench-vllm-") as tmp:
        workdir = pathlib.Path(tmp)
        launcher, base, preload = _start_launcher(python, workdir, args.timeout)
        print(f"launcher preloaded vLLM in {preload:.1f} s", flush=True)
        try:
            for i in range(args.rounds):
                healthy, deleted = _fork_sample(base, options, _free_port(), i, args.timeout)
                fork.append(round(healthy, 3))
                fork_delete.append(round(deleted, 3))
                print(f"round {i + 1}: fork {healthy:.1f} s (delete {deleted:.2f} s)", flush=True)
                seconds = _fresh_sample(python, options, _free_port(), workdir / f"fresh-{i}.log", args.timeout)
                fresh.append(round(seconds, 3))
                print(f"round {i + 1}: fresh {seconds:.1f} s", flush=True)
                loads.append([round(x, 2) for x in os.getloadavg()])
        finally:
            _stop(launcher)
    load_after = os.getloadavg()

    fork_median, fresh_median = statistics.median(fork), statistics.median(fresh)
    fork_best, fresh_best = min(fork), min(fresh)
    result = {
        "benchmark": "launcher_spawn_vllm",
        "engine": "vllm-cpu 0.32.0 (torch 2.13.0), tiny Llama (hidden 128, 2 layers, 2 heads of 64)",
        "options": args.options,
        "rounds": args.rounds,
        "launcher_preload_seconds": round(preload, 3),
        "fork_from_preloaded_seconds": fork,
        "fork_delete_seconds": fork_delete,
        "fresh_process_seconds": fresh,
        "fork_median_seconds": fork_median,
        "fresh_median_seconds": fresh_median,
        "ratio_fork_over_fresh": round(fork_median / fresh_median, 3),
        "saved_median_seconds": round(fresh_median - fork_median, 3),
        "fork_best_seconds": fork_best,
        "fresh_best_seconds": fresh_best,
        "ratio_best_fork_over_best_fresh": round(fork_best / fresh_best, 3),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "load_average_1_5_15_after_each_round": loads,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "run": run_record.finish(run),
    }
    print()
    print(f"{'path':<34}{'median s':>10}{'best s':>8}   samples")
    print(f"{'fork from the preloaded launcher':<34}{fork_median:>10.1f}{fork_best:>8.1f}   {fork}")
    print(f"{'fresh api_server process':<34}{fresh_median:>10.1f}{fresh_best:>8.1f}   {fresh}")
    print(
        f"ratio fork/fresh: medians {result['ratio_fork_over_fresh']}, best {result['ratio_best_fork_over_best_fresh']}"
    )
    if not args.no_write:
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
