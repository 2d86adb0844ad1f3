"""GPU wake and start figures, side by side in one run on one GPU.

Why: FMA exists to make GPU servers start fast, and the two levers are the
wake (weights back from host memory at the hardware's speed) and the
preloaded parent (a forked child skips torch's imports).  Both are measured
here on a real GPU with the project's own code:

1. fork from the preloaded parent versus a fresh interpreter, time to the
   first CUDA tensor: the launcher's ``zygote`` preloads torch (without
   initialising CUDA) and forks a child that creates ``torch.ones(1,
   device="cuda")``; the fresh path is ``python -c "import torch;
   torch.ones(1, device='cuda')"``.  Measured from the spawn request (or
   the process start) to the child's timestamp after the tensor exists.
   Target: fork / fresh <= 0.15.
2. raw copy bandwidth: one pinned host buffer of the model's size to the
   GPU and back (CUDA-synchronised wall time), and what pinning it cost.
3. the torch-backed engine (``fma-engine-sim serve --device cuda``) with
   Llama-shaped weights of the same size: ``POST /wake_up`` wall time after
   a level-1 sleep (allocation, copy and checksum verification included),
   its bandwidth and the ratio to the raw copy (target >= 0.9), without and
   with kept pinned buffers (without, the host copy is unpinned after the
   wake has been answered; that release is reported separately); ``POST
   /sleep`` wall time without and with ``--keep-pinned-buffers`` (pinning
   at every sleep versus only the first).

Prints a table and writes ``benchmarks/results/gpu_wake.json``.  Needs torch
with a CUDA GPU; run by ``scripts/gpu-check.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
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
from typing import Any

import httpx

from launcher import spawner, tensor_weights, zygote

RESULT = pathlib.Path(__file__).parent / "results" / "gpu_wake.json"
GIB = 1 << 30
GB = 1e9
_FRESH = (
    "import time, torch\ntorch.ones(1, device='cuda')\ntorch.cuda.synchronize()\nprint(repr(time.time()), flush=True)\n"
)


class _FirstTensor:
    """An ``engine.Engine`` whose instance only creates one CUDA tensor and writes the time it existed."""

    name = "first-tensor"

    def preload(self) -> None:
        importlib.import_module("torch")  # the point: torch imported, CUDA untouched

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        return {}

    def run(self, argv: list[str]) -> int:
        torch: Any = importlib.import_module("torch")  # already imported by the preload
        torch.ones(1, device="cuda")
        torch.cuda.synchronize()
        pathlib.Path(argv[0]).write_text(repr(time.time()))
        return 0


async def _forked_samples(
    spawn: spawner.Spawner, count: int, workdir: pathlib.Path
) -> tuple[list[float], dict[str, object]]:
    exits: dict[int, asyncio.Future[int]] = {}
    loop = asyncio.get_running_loop()

    def on_exit(child: int, code: int) -> None:
        exits.setdefault(child, loop.create_future()).set_result(code)

    await spawn.start(on_exit)
    samples = []
    try:
        for i in range(count):
            stamp = workdir / f"forked-{i}.time"
            started = time.time()
            child = await spawn.spawn([str(stamp)], dict(os.environ), str(workdir / f"forked-{i}.log"))
            code = await asyncio.wait_for(exits.setdefault(child, loop.create_future()), 120)
            if code != 0:
                raise RuntimeError(f"forked child failed: {(workdir / f'forked-{i}.log').read_text()[-2000:]}")
            samples.append(float(stamp.read_text()) - started)
    finally:
        await spawn.close()
    return samples, spawn.preload_facts


def _fresh_sample() -> float:
    started = time.time()
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, check=True, timeout=300)
    return float(done.stdout.strip().splitlines()[-1]) - started


def fork_versus_fresh(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fma-gpu-fork-") as tmp:
        pid, sock = zygote.fork(_FirstTensor(), [])  # before any event loop exists, as the launcher does
        forked, facts = asyncio.run(_forked_samples(spawner.Spawner(pid, sock), count, pathlib.Path(tmp)))
    _fresh_sample()  # warm the page cache, as a node that has run the image before would be
    fresh = [_fresh_sample() for _ in range(count)]
    ratio = statistics.median(forked) / statistics.median(fresh)
    return {
        "forked_seconds": [round(s, 3) for s in forked],
        "fresh_seconds": [round(s, 3) for s in fresh],
        "forked_median_seconds": round(statistics.median(forked), 3),
        "fresh_median_seconds": round(statistics.median(fresh), 3),
        "ratio": round(ratio, 3),
        "target_ratio_at_most": 0.15,
        "parent_preload": facts,
    }


def raw_copies(torch: Any, nbytes: int, repeats: int) -> dict[str, Any]:
    started = time.perf_counter()
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    pin_seconds = time.perf_counter() - started
    device = torch.empty(nbytes, dtype=torch.uint8, device="cuda")

    def timed(dst: Any, src: Any) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    timed(device, host)  # warm-up
    h2d = [nbytes / timed(device, host) / GB for _ in range(repeats)]
    d2h = [nbytes / timed(host, device) / GB for _ in range(repeats)]
    pageable = torch.empty(min(nbytes, GIB), dtype=torch.uint8)
    pageable_gbps = pageable.numel() / timed(device[: pageable.numel()], pageable) / GB
    del host, device, pageable
    torch.cuda.empty_cache()
    empty_host_cache = getattr(torch._C, "_host_emptyCache", None)
    if empty_host_cache is not None:
        empty_host_cache()  # hand the pinned buffer back before the engines pin their own
    return {
        "bytes": nbytes,
        "pin_seconds": round(pin_seconds, 3),
        "pin_seconds_per_gib": round(pin_seconds / (nbytes / GIB), 3),
        "h2d_pinned_gbps": [round(x, 2) for x in h2d],
        "h2d_pinned_median_gbps": round(statistics.median(h2d), 2),
        "d2h_pinned_median_gbps": round(statistics.median(d2h), 2),
        "h2d_pageable_gbps": round(pageable_gbps, 2),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(log: pathlib.Path, msg: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("msg") == msg:
                out.append(record)
    return out


def engine_cycles(
    gib: float, keep_pinned: bool, cycles: int, workdir: pathlib.Path, device: str = "cuda"
) -> dict[str, Any]:
    port = _free_port()
    log = workdir / f"engine-keep{int(keep_pinned)}.log"
    argv = [sys.executable, "-c", "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"]
    argv += ["serve", "bench", "--host", "127.0.0.1", "--port", str(port), "--enable-sleep-mode"]
    argv += ["--device", device, "--sim-model-gib", str(gib)]
    argv += ["--keep-pinned-buffers"] if keep_pinned else []
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_SERVER_DEV_MODE": "1"}
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
    try:
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the engine did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)  # noqa: sleep-ok - polling a starting process's port
        (ready,) = _records(log, "tensor engine ready")
        sleeps, wakes = [], []
        for cycle in range(cycles):
            t0 = time.perf_counter()
            assert client.post("/sleep", params={"level": 1}).status_code == 200
            sleeps.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            woke = client.post("/wake_up")
            wakes.append(time.perf_counter() - t0)
            assert woke.status_code == 200, woke.text
            # Without kept buffers the host copy is unpinned after the wake's answer; let it finish
            # so that it is reported on its own rather than inside the next sleep.
            while not keep_pinned and len(_records(log, "tensor engine released its host copy")) <= cycle:
                time.sleep(0.05)  # noqa: sleep-ok - polling the engine's log for the release
        asleep = _records(log, "tensor engine asleep")
        woken = _records(log, "tensor engine woke")
        released = _records(log, "tensor engine released its host copy")
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    nbytes = int(ready["bytes"])
    return {
        "keep_pinned": keep_pinned,
        "bytes": nbytes,
        "tensors": ready["tensors"],
        "load_seconds": ready["load_seconds"],
        "sleep_seconds": [round(s, 3) for s in sleeps],
        "sleep_pin_seconds": [r.get("pin_seconds") for r in asleep],
        "sleep_copy_seconds": [r.get("copy_seconds") for r in asleep],
        "host_allocations": [r.get("host_allocations") for r in asleep],
        "wake_seconds": [round(s, 3) for s in wakes],
        "wake_copy_seconds": [r.get("copy_seconds") for r in woken],
        "wake_verify_seconds": [r.get("verify_seconds") for r in woken],
        "release_after_wake_seconds": [r.get("seconds") for r in released],
        "checksum_verified": all(r.get("checksum_verified") for r in woken),
        "wake_gbps": [round(nbytes / s / GB, 2) for s in wakes],
    }


def _table(result: dict[str, Any]) -> str:
    raw, fork, wake = result["raw"], result["fork_vs_fresh"], result["wake"]
    plain, kept = result["engine"]["default"], result["engine"]["keep_pinned"]
    rows = [
        ("device", result["device"]),
        ("model bytes / tensors", f"{plain['bytes'] / GIB:.2f} GiB / {plain['tensors']}"),
        ("raw pinned H2D GB/s (median)", raw["h2d_pinned_median_gbps"]),
        ("raw pinned D2H GB/s (median)", raw["d2h_pinned_median_gbps"]),
        ("pageable H2D GB/s (1 GiB)", raw["h2d_pageable_gbps"]),
        ("pinning host memory s/GiB", raw["pin_seconds_per_gib"]),
        ("engine wake s, default", plain["wake_seconds"]),
        ("engine wake s, --keep-pinned-buffers", kept["wake_seconds"]),
        ("host copy release after wake s", plain["release_after_wake_seconds"]),
        ("engine wake GB/s, default / kept", f"{wake['default_median_gbps']} / {wake['keep_pinned_median_gbps']}"),
        ("wake / raw, default / kept (>= 0.9)", f"{wake['default_ratio_to_raw']} / {wake['keep_pinned_ratio_to_raw']}"),
        ("sleep s, pinning every sleep", plain["sleep_seconds"]),
        ("sleep s, --keep-pinned-buffers", kept["sleep_seconds"]),
        ("fork to first CUDA tensor s (median)", fork["forked_median_seconds"]),
        ("fresh python to first CUDA tensor s", fork["fresh_median_seconds"]),
        ("fork / fresh (target <= 0.15)", fork["ratio"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=8.0, help="model size (default 8 GiB)")
    parser.add_argument("--repeats", type=int, default=3, help="samples of each copy and start (default 3)")
    parser.add_argument("--cycles", type=int, default=2, help="sleep/wake cycles per engine (default 2)")
    parser.add_argument("--out", type=pathlib.Path, default=RESULT)
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    fork = fork_versus_fresh(args.repeats)  # first: this process must not have initialised CUDA yet
    import torch  # noqa: PLC0415 - imported once the fork measurement no longer needs a CUDA-free process

    name = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="fma-gpu-wake-") as tmp:
        layout_bytes = _layout_bytes(args.gib)
        raw = raw_copies(torch, layout_bytes, args.repeats)
        plain = engine_cycles(args.gib, keep_pinned=False, cycles=args.cycles, workdir=pathlib.Path(tmp))
        kept = engine_cycles(args.gib, keep_pinned=True, cycles=args.cycles, workdir=pathlib.Path(tmp))
    raw_gbps = raw["h2d_pinned_median_gbps"]
    plain_gbps = statistics.median(plain["wake_gbps"])
    kept_gbps = statistics.median(kept["wake_gbps"])
    result: dict[str, Any] = {
        "run": {
            "started_utc": started,
            "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": os.environ.get("FMA_COMMIT", "unknown"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": len(os.sched_getaffinity(0)),
            "argv": sys.argv[1:],
        },
        "device": name,
        "fork_vs_fresh": fork,
        "raw": raw,
        "engine": {"default": plain, "keep_pinned": kept},
        "wake": {
            "raw_median_gbps": raw_gbps,
            "default_median_gbps": round(plain_gbps, 2),
            "default_ratio_to_raw": round(plain_gbps / raw_gbps, 3),
            "keep_pinned_median_gbps": round(kept_gbps, 2),
            "keep_pinned_ratio_to_raw": round(kept_gbps / raw_gbps, 3),
            "target_ratio_at_least": 0.9,
        },
    }
    result["targets_met"] = {
        "wake_ratio": min(plain_gbps, kept_gbps) / raw_gbps >= 0.9,
        "fork_ratio": fork["ratio"] <= 0.15,
        "checksums": plain["checksum_verified"] and kept["checksum_verified"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(f"targets met: {result['targets_met']}")
    print(f"wrote {args.out}")
    return 0


def _layout_bytes(gib: float) -> int:
    return sum(s.numel for s in tensor_weights.llama_layout(int(gib * GIB))) * 2


if __name__ == "__main__":
    raise SystemExit(main())
