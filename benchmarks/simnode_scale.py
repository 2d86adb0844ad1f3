"""simnode at scale: 1,000 status-only nodes register and stay Ready; what does simnode cost?

Starts a development control plane in a temporary directory, starts simnode
with ``--status-only-nodes`` (default 1,000), waits until every Node is
Ready, then watches them for a steady period (default 120 s): at each
sample every Node must still be Ready, untainted, and have a fresh Lease.
simnode's CPU time and RSS are read from ``/proc``.  Prints a table and
writes ``benchmarks/results/simnode_scale.json``.

    .venv/bin/python benchmarks/simnode_scale.py [--nodes 1000] [--seconds 120]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from typing import Any

import run_record

from devcluster import control_plane, simnode

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "simnode_scale.json"
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _check(api: Any, names: set[str]) -> dict[str, Any]:
    """Ready/untainted Nodes and the oldest Lease renewal among ``names``."""
    nodes = api.get("/api/v1/nodes", params={"labelSelector": "devcluster.fma/simnode=status-only"}).json()["items"]
    ready = 0
    tainted = 0
    for node in nodes:
        if node["metadata"]["name"] not in names:
            continue
        conditions = node.get("status", {}).get("conditions") or []
        ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        tainted += bool(node.get("spec", {}).get("taints"))
    leases = api.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases").json()["items"]
    now = datetime.datetime.now(datetime.UTC)
    ages = [
        (now - _parse_time(lease["spec"]["renewTime"])).total_seconds()
        for lease in leases
        if lease["metadata"]["name"] in names
    ]
    return {"ready": ready, "tainted": tainted, "leases": len(ages), "oldest_lease_s": round(max(ages, default=-1), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--sample-every", type=float, default=15.0)
    args = parser.parse_args()
    run = run_record.start()

    opts = simnode.SimnodeOptions(nodes=0, status_only_nodes=args.nodes, gpus_per_node=8, node_prefix="scale")
    names = set(simnode.node_names(opts))
    with tempfile.TemporaryDirectory(prefix="fma-simnode-scale-") as tmp:
        state_dir = pathlib.Path(tmp) / "cluster"
        state = control_plane.up(control_plane.ClusterOptions(state_dir=state_dir, apiserver_port=None))
        record = simnode.spawn(state, opts, state_dir / "logs" / "simnode.log")
        try:
            started = time.monotonic()
            simnode.wait_ready(state, opts, record, timeout=600.0)
            register_s = time.monotonic() - started
            register_cpu = _cpu_seconds(record.pid)
            samples: list[dict[str, Any]] = []
            cpu0, t0 = _cpu_seconds(record.pid), time.monotonic()
            with state.http_client(timeout=30.0) as api:
                while True:
                    elapsed = time.monotonic() - t0
                    sample = {"t_s": round(elapsed, 1), **_check(api, names), "rss_mib": round(_rss_mib(record.pid), 1)}
                    samples.append(sample)
                    print(json.dumps(sample), flush=True)
                    if elapsed >= args.seconds:
                        break
                    # A benchmark samples at a fixed rate; nothing here waits for a condition.
                    time.sleep(min(args.sample_every, max(0.0, args.seconds - elapsed)))
            cpu1, t1 = _cpu_seconds(record.pid), time.monotonic()
        finally:
            simnode.stop(record, simnode.state_dir_of(state, opts))
            control_plane.down(state_dir, grace_seconds=5.0)

    steady_cores = (cpu1 - cpu0) / (t1 - t0)
    result = {
        "benchmark": "simnode_scale",
        "run": run_record.finish(run),
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "machine": platform.machine()},
        "nodes": args.nodes,
        "steady_seconds": round(t1 - t0, 1),
        "register_seconds": round(register_s, 1),
        "register_cpu_seconds": round(register_cpu, 1),
        "steady_cpu_cores_avg": round(steady_cores, 3),
        "rss_mib_max": max(s["rss_mib"] for s in samples),
        "rss_mib_avg": round(sum(s["rss_mib"] for s in samples) / len(samples), 1),
        "all_ready_every_sample": all(s["ready"] == args.nodes and s["tainted"] == 0 for s in samples),
        "oldest_lease_s_max": max(s["oldest_lease_s"] for s in samples),
        "samples": samples,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("nodes (status-only)", result["nodes"]),
        ("registration time (s)", result["register_seconds"]),
        ("registration CPU (s)", result["register_cpu_seconds"]),
        ("steady period (s)", result["steady_seconds"]),
        ("simnode CPU, steady avg (cores)", result["steady_cpu_cores_avg"]),
        ("simnode RSS avg / max (MiB)", f"{result['rss_mib_avg']} / {result['rss_mib_max']}"),
        ("all Ready + untainted at every sample", result["all_ready_every_sample"]),
        ("oldest Lease renewal seen (s)", result["oldest_lease_s_max"]),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"written: {RESULTS}")
    return 0 if result["all_ready_every_sample"] else 1


if __name__ == "__main__":
    sys.exit(main())
