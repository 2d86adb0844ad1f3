"""Actuation latency of the dual-pods controller: hot, warm and cold paths.

Runs on a fresh development cluster (control plane + simnode) with the
engine simulator configured for a 20 s initialisation and a 64 GiB model at
21 GiB/s, and the real ``fma-controllers`` process.  For each path it
measures, on the requester agent itself, the time from its SPI answering
(the earliest moment the controller can act) to its ``/ready`` turning 200
(the readiness relay), and subtracts the simulator's modelled work to get the
controller's own overhead.  The modelled times are computed by the
simulator's own timing model (``launcher.sim_model``) from the very options
the ISCs carry, so they cannot drift from what the simulator does:

* cold — a new launcher is created for the requester (modelled work: the
  engine start, ``sim_model.start_seconds``: initialisation plus loading the
  weights, 20 + 64/21 = 23.05 s);
* warm — a new instance in an existing, idle launcher (modelled work: the
  same engine start);
* hot — a sleeping instance is woken (modelled work: ``sim_model.wake_seconds``
  for a level-1 sleep, the controller's level: 64/21 = 3.05 s).

The controller's path label (``fma_actuation_seconds{path}``) is read back
to check each round took the intended path.  Bounded: ``--rounds`` rounds
per path (default 3).  Prints a table and writes
``benchmarks/results/actuation.json`` with the run's record (UTC times,
commit, load average; see ``run_record``).

Usage: ``.venv/bin/python benchmarks/actuation.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import httpx
import run_record

import kube
from devcluster import binaries, control_plane, processes, samples, waiting
from devcluster import simnode as simnode_mod
from kube import resources
from launcher import sim_cli, sim_model

STARTUP_S = 20.0
MODEL_GIB = 64.0
BANDWIDTH = 21.0
ENGINE_OPTIONS = samples.engine_sim_options("bench", startup_s=STARTUP_S, model_gib=MODEL_GIB, gib_per_s=BANDWIDTH)
ISC_PORT = 8005
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "actuation.json"


def _ready(pod: dict[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return str(condition.get("lastTransitionTime"))
    return None


def _ts(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Bench:
    def __init__(self, api: kube.Client, namespace: str, workdir: pathlib.Path, gpu_map: pathlib.Path) -> None:
        self.api = api
        self.ns = namespace
        self.workdir = workdir
        self.gpu_map = gpu_map

    def setup(self) -> None:
        self.api.create(resources.NAMESPACES, {"metadata": {"name": self.ns}})
        waiting.wait_for(
            lambda: self.api.get_or_none(resources.SERVICE_ACCOUNTS, "default", self.ns),
            timeout=30,
            what="default ServiceAccount",
        )
        self.api.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config("lc", gpu_map_file=self.gpu_map, log_dir=self.workdir),
            self.ns,
        )
        options = ENGINE_OPTIONS
        for name, port in (("isc-a", ISC_PORT), ("isc-b", ISC_PORT + 1)):
            self.api.create(
                resources.INFERENCE_SERVER_CONFIGS,
                samples.inference_server_config(name, launcher_config_name="lc", options=options, port=port),
                self.ns,
            )

    def deployment(self, name: str, isc: str, node: str) -> None:
        template = samples.requester_template(isc, name, node=node)
        self.api.create(DEPLOYMENTS, samples.deployment(name, template, replicas=0), self.ns)

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.ns)

    def pods(self, app: str) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.ns, label_selector=f"app={app}")
        return items

    def actuate(self, app: str) -> float:
        """Scale ``app`` to 1; return the time from its requester agent answering to it turning ready.

        Both ends are observed directly on the agent (SPI up, then ``/ready``
        200), polled every 10 ms, so neither the probe period nor the
        one-second resolution of Pod timestamps blurs the controller's part.
        """
        self.scale(app, 1)

        def pod_ip() -> str | None:
            items = [p for p in self.pods(app) if not p["metadata"].get("deletionTimestamp")]
            return (items[0].get("status") or {}).get("podIP") if len(items) == 1 else None

        ip = waiting.wait_for(pod_ip, timeout=120, what=f"{app}'s Pod IP")
        deadline = time.monotonic() + 180
        up: float | None = None
        with httpx.Client(timeout=0.5) as client:
            while time.monotonic() < deadline:
                now = time.monotonic()
                try:
                    if up is None:
                        if client.get(f"http://{ip}:8081/v1/dual-pods/accelerators").status_code == 200:
                            up = now
                    elif client.get(f"http://{ip}:8080/ready").status_code == 200:
                        return now - up
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        raise TimeoutError(f"{app} did not become ready within 180 s")

    def release(self, app: str) -> None:
        self.scale(app, 0)
        waiting.wait_for(lambda: not self.pods(app), timeout=120, what=f"{app} gone")


def _metric(port: int, path: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("fma_actuation_seconds_count{") and f'path="{path}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def modelled_seconds(options: str) -> dict[str, float]:
    """The simulator's own modelled work per path for an engine started with ``options`` (pure).

    Cold and warm both start the engine (``sim_model.start_seconds``); hot
    wakes it from the controller's level-1 sleep, restoring every tag.
    """
    sim, _unknown = sim_cli.parse(options.split())
    start = sim_model.start_seconds(sim)
    return {"cold": start, "warm": start, "hot": sim_model.wake_seconds(sim, sim_model.ALL_TAGS, level=1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modelled = modelled_seconds(ENGINE_OPTIONS)
    run = run_record.start()
    bins = binaries.ensure_all()
    with tempfile.TemporaryDirectory(prefix="fma-bench-actuation-") as tmp:
        root = pathlib.Path(tmp)
        state = control_plane.up(
            control_plane.ClusterOptions(state_dir=root / "cluster", apiserver_port=None, binaries=bins)
        )
        opts = simnode_mod.SimnodeOptions(nodes=1, gpus_per_node=2, gpu_map_namespace="default", node_prefix="bench")
        simnode = simnode_mod.spawn(state, opts, root / "simnode.log")
        controller = None
        api = kube.connect(str(state.kubeconfig))
        try:
            simnode_mod.wait_ready(state, opts, simnode, timeout=120)
            crd_dir = pathlib.Path(__file__).resolve().parent.parent / "crds" / "manifests"
            import yaml  # noqa: PLC0415 - only the benchmark needs it at this point

            for path in sorted(crd_dir.glob("*.yaml")):
                api.create(resources.CUSTOM_RESOURCE_DEFINITIONS, yaml.safe_load(path.read_text()))
            for path in sorted(crd_dir.glob("*.yaml")):
                name = yaml.safe_load(path.read_text())["metadata"]["name"]
                waiting.wait_for(
                    lambda n=name: any(
                        c["type"] == "Established" and c["status"] == "True"
                        for c in (api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, n).get("status") or {}).get(
                            "conditions"
                        )
                        or []
                    ),
                    timeout=60,
                    what=f"{name} Established",
                )
            gpu_map = root / "gpu-map.json"
            table: dict[str, int] = {}
            for value in (api.get(resources.CONFIG_MAPS, "gpu-map", "default").get("data") or {}).values():
                table.update(json.loads(value))
            gpu_map.write_text(json.dumps(table))
            bench = Bench(api, "bench", root, gpu_map)
            bench.setup()
            port = processes.free_port()
            controller = processes.spawn(
                "fma-controllers",
                [
                    sys.executable,
                    "-m",
                    "controllers",
                    "--namespace",
                    "bench",
                    "--kubeconfig",
                    str(state.kubeconfig),
                    "--gpu-map-namespace",
                    "default",
                    "--leader-elect",
                    "false",
                    "--enable-populator",
                    "false",
                    "--debug-accelerator-memory",
                    "false",
                    "--metrics-host",
                    "127.0.0.1",
                    "--metrics-port",
                    str(port),
                ],
                root / "controller.log",
            )
            waiting.wait_for(
                lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
                timeout=60,
                what="controller ready",
                ignore=(httpx.HTTPError,),
            )
            node = simnode_mod.node_names(opts)[0]
            bench.deployment("a", "isc-a", node)
            bench.deployment("b", "isc-b", node)
            samples: dict[str, list[float]] = {"cold": [], "warm": [], "hot": []}
            for _ in range(args.rounds):
                # cold: no launcher exists; delete the previous round's launchers first.
                items, _ = api.list_all(resources.PODS, "bench", label_selector="app.kubernetes.io/component=launcher")
                for launcher in items:
                    api.delete(resources.PODS, launcher["metadata"]["name"], "bench")
                waiting.wait_for(
                    lambda: (
                        not api.list_all(
                            resources.PODS, "bench", label_selector="app.kubernetes.io/component=launcher"
                        )[0]
                    ),
                    timeout=120,
                    what="launchers gone",
                )
                before = _metric(port, "cold")
                samples["cold"].append(bench.actuate("a"))
                assert _metric(port, "cold") == before + 1, "expected a cold actuation"
                bench.release("a")
                # warm: the idle launcher gets a second instance for isc-b.
                before = _metric(port, "warm")
                samples["warm"].append(bench.actuate("b"))
                assert _metric(port, "warm") == before + 1, "expected a warm actuation"
                bench.release("b")
                # hot: isc-a's instance sleeps in that launcher; wake it.
                before = _metric(port, "hot")
                samples["hot"].append(bench.actuate("a"))
                assert _metric(port, "hot") == before + 1, "expected a hot actuation"
                bench.release("a")
                bench.release("b")
        finally:
            if controller is not None:
                processes.stop(controller, grace_seconds=5)
            api.close()
            simnode_mod.stop(simnode, state.state_dir / "simnode")
            control_plane.down(state.state_dir)
    run = run_record.finish(run)
    rows = []
    for path in ("hot", "warm", "cold"):
        values = sorted(samples[path])
        overhead = [v - modelled[path] for v in values]
        rows.append(
            {
                "path": path,
                "rounds": len(values),
                "p50_s": round(statistics.median(values), 3),
                "p95_s": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 3),
                "modelled_s": round(modelled[path], 3),
                "overhead_p50_s": round(statistics.median(overhead), 3),
                "overhead_max_s": round(max(overhead), 3),
                "samples_s": [round(v, 3) for v in values],
            }
        )
    print(
        f"{'path':<6}{'rounds':>7}{'p50 s':>9}{'p95 s':>9}{'modelled s':>12}"
        f"{'overhead p50 s':>16}{'overhead max s':>16}"
    )
    for row in rows:
        print(
            f"{row['path']:<6}{row['rounds']:>7}{row['p50_s']:>9.2f}{row['p95_s']:>9.2f}{row['modelled_s']:>12.2f}"
            f"{row['overhead_p50_s']:>16.2f}{row['overhead_max_s']:>16.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "actuation",
                "run": run,
                "engine": {
                    "options": ENGINE_OPTIONS,
                    "modelled_s": {path: round(value, 3) for path, value in modelled.items()},
                    "modelled_by": "launcher.sim_model.start_seconds / wake_seconds(level=1)",
                },
                "note": "requester agent SPI up -> agent /ready 200, both polled every 10 ms",
                "target": "hot-path overhead p50 <= 0.3 s",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
