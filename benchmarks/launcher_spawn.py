"""Instance start-to-healthy: forked from the launcher's preloaded parent versus a fresh interpreter.

Why: the launcher exists so that a new engine instance skips the engine's
imports (vLLM pulls in torch, CUDA libraries and hundreds of modules).  This
benchmark measures that saving with the engine simulator and a realistic
heavy import set:

- ``torch`` and ``vllm.entrypoints.openai.api_server`` when installed;
- otherwise a documented stand-in: the heaviest libraries of our virtualenv
  (aiohttp, rich, cryptography, pygments, yaml) plus a generated package
  ``fma_heavy_standin`` of ``--standin-modules`` modules with
  ``--standin-functions`` functions each, sized so that a fresh import takes
  a torch-like 1-3 s.  Bytecode is cached by a warm-up import first, as it
  would be in a container image.

Fork path: ``fma-launcher --engine sim --preload-module M ...`` (the zygote
imports M once); each sample is PUT instance → its ``/health`` answers 200,
then DELETE.  Fresh path: a new ``python`` that imports the same modules and
then runs ``fma-engine-sim serve``; each sample is process start → ``/health``
200.  The simulator's own model times are zero, so only process start and
imports are measured.  Prints a table and writes
``benchmarks/results/launcher_spawn.json``.  Target: fork <= 0.2 of fresh.
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

import httpx
import run_record

RESULT = pathlib.Path(__file__).parent / "results" / "launcher_spawn.json"
_REAL_HEAVY = ["torch", "vllm.entrypoints.openai.api_server"]
_LIB_STANDIN = ["aiohttp", "rich.console", "rich.traceback", "cryptography.x509", "pygments.lexers.python", "yaml"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not healthy within {timeout}s")
            time.sleep(0.002)  # measurement resolution, not a wait for correctness


def _write_standin(root: pathlib.Path, modules: int, functions: int) -> list[str]:
    package = root / "fma_heavy_standin"
    package.mkdir()
    names = []
    for m in range(modules):
        body = [f"CONST_{m} = {m}\n"]
        for f in range(functions):
            body.append(
                f"def f{f}(x, y={f}):\n    z = [x * i + y for i in range({f % 7 + 1})]\n"
                f"    return sum(z) + len(str(x)) + {m}\n\n"
                f"class C{f}:\n    a = {f}\n    def m(self, v):\n        return v + self.a\n\n"
            )
        (package / f"mod{m}.py").write_text("".join(body))
        names.append(f"fma_heavy_standin.mod{m}")
    (package / "__init__.py").write_text("".join(f"from . import mod{m}\n" for m in range(modules)))
    return ["fma_heavy_standin"]


def _heavy_set(workdir: pathlib.Path, modules: int, functions: int) -> tuple[list[str], str]:
    if all(importlib.util.find_spec(m.split(".")[0]) is not None for m in _REAL_HEAVY):
        return _REAL_HEAVY, "torch + vllm (real)"
    available = [m for m in _LIB_STANDIN if importlib.util.find_spec(m.split(".")[0]) is not None]
    generated = _write_standin(workdir, modules, functions)
    return available + generated, f"stand-in: {', '.join(available)} + generated {modules}x{functions}"


def _env(workdir: pathlib.Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH", "")]))
    env["VLLM_SERVER_DEV_MODE"] = "1"
    return env


def _sim_options(port: int) -> list[str]:
    return ["--model", "bench", "--host", "127.0.0.1", "--port", str(port), "--sim-startup-seconds", "0"]


def _import_seconds(modules: list[str], env: dict[str, str]) -> float:
    code = (
        "import importlib, sys, time\nt = time.perf_counter()\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    )
    code += "print(time.perf_counter() - t)\n"
    out = subprocess.run([sys.executable, "-c", code, *modules], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _measure_fresh(modules: list[str], env: dict[str, str], samples: int) -> list[float]:
    code = (
        "import importlib, sys\n"
        "mods = sys.argv[1].split(',')\n"
        "for m in mods:\n    importlib.import_module(m)\n"
        "from launcher import __main__ as entry\n"
        "sys.exit(entry.engine_sim_main(['serve', *sys.argv[2:]]))\n"
    )
    times = []
    for _ in range(samples):
        port = _free_port()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code, ",".join(modules), *_sim_options(port), "--sim-model-gib", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health")
            times.append(time.perf_counter() - started)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return times


def _measure_fork(modules: list[str], env: dict[str, str], workdir: pathlib.Path, samples: int) -> list[float]:
    port = _free_port()
    argv = [sys.executable, "-m", "launcher", "--engine", "sim", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-dir", str(workdir), "--no-nvml", "--log-level", "warning"]
    for module in modules:
        argv += ["--preload-module", module]
    launcher = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    times = []
    try:
        _wait_healthy(base + "/health", timeout=120)
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(samples):
                engine_port = _free_port()
                options = " ".join([*_sim_options(engine_port), "--sim-model-gib", "0"])
                started = time.perf_counter()
                response = client.put(f"/v2/vllm/instances/bench-{n}", json={"options": options})
                response.raise_for_status()
                _wait_healthy(f"http://127.0.0.1:{engine_port}/health")
                times.append(time.perf_counter() - started)
                client.delete(f"/v2/vllm/instances/bench-{n}").raise_for_status()
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(60)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--standin-modules", type=int, default=150)
    parser.add_argument("--standin-functions", type=int, default=120)
    parser.add_argument("--output", type=pathlib.Path, default=RESULT)
    args = parser.parse_args()
    run = run_record.start()

    with tempfile.TemporaryDirectory(prefix="fma-spawn-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        modules, description = _heavy_set(workdir, args.standin_modules, args.standin_functions)
        env = _env(workdir)
        _import_seconds(modules, env)  # warm-up: compile and cache bytecode, as an image would have it
        import_seconds = _import_seconds(modules, env)
        fresh = _measure_fresh(modules, env, args.samples)
        fork = _measure_fork(modules, env, workdir, args.samples)

    fresh_median, fork_median = statistics.median(fresh), statistics.median(fork)
    ratio = fork_median / fresh_median
    result = {
        "benchmark": "launcher_spawn",
        "heavy_import_set": description,
        "heavy_import_seconds": round(import_seconds, 4),
        "samples": args.samples,
        "fresh_interpreter_seconds": [round(t, 4) for t in fresh],
        "fork_from_preloaded_seconds": [round(t, 4) for t in fork],
        "fresh_median_seconds": round(fresh_median, 4),
        "fork_median_seconds": round(fork_median, 4),
        "ratio_fork_over_fresh": round(ratio, 4),
        "target_ratio": 0.2,
        "meets_target": ratio <= 0.2,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "run": run_record.finish(run),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    print(f"heavy import set: {description} ({import_seconds:.2f} s to import fresh)")
    print(f"{'path':<32}{'median s':>10}{'min s':>10}{'max s':>10}")
    print(f"{'fresh interpreter':<32}{fresh_median:>10.3f}{min(fresh):>10.3f}{max(fresh):>10.3f}")
    print(f"{'fork from preloaded launcher':<32}{fork_median:>10.3f}{min(fork):>10.3f}{max(fork):>10.3f}")
    print(f"ratio fork/fresh: {ratio:.3f} (target <= 0.2: {'met' if ratio <= 0.2 else 'NOT met'})")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
