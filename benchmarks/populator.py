"""The launcher populator at scale: 100 status-only nodes x 2 launchers, from zero to converged.

Starts a development control plane in a temporary directory, applies the CRDs,
starts simnode with ``--status-only-nodes`` (default 100; their Pods are
reported Running and Ready without running anything, so the measurement is
the populator and the apiserver, not launcher start-up), then for each worker
count (default 2 and 8), in a fresh namespace:

1. creates a LauncherConfig and a policy selecting every status-only node with
   ``launcherCount: 2``, and measures the time until all 200 launchers exist and
   until all are Ready;
2. lowers the count to 1 and measures the time until 100 are left.

Every API write the populator makes is counted by wrapping its client's
``request`` (watches do not go through it): writes per launcher created
should be exactly 1 (the create), with no extra updates.  Prints a table and
writes ``benchmarks/results/populator.json``.

    .venv/bin/python benchmarks/populator.py [--nodes 100] [--count 2] [--workers 2 8]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import prometheus_client
import run_record

import kube
from controllers import populator
from crds import keys, manifests, names
from devcluster import control_plane, simnode, waiting
from kube import resources

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "populator.json"
STATUS_ONLY = {"devcluster.fma/simnode": "status-only"}


class WriteCounter:
    """Counts the requests a client sends, by method and resource (thread-safe)."""

    def __init__(self, client: kube.Client) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        original = client.request

        def counting(method: str, path: str, **kwargs: Any) -> Any:
            if method != "GET":
                parts = path.split("?", maxsplit=1)[0].strip("/").split("/")
                what = (
                    parts[-1]
                    if parts[-1] == "status"
                    else next(
                        (p for p in ("pods", "events", "launcherconfigs", "launcherpopulationpolicies") if p in parts),
                        "other",
                    )
                )
                with self._lock:
                    self.counts[f"{method} {what}"] += 1
            return original(method, path, **kwargs)

        client.request = counting  # type: ignore[method-assign]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


def _apply_crds(admin: kube.Client) -> None:
    for document in manifests.documents():
        admin.patch(
            resources.CUSTOM_RESOURCE_DEFINITIONS,
            document["metadata"]["name"],
            document,
            patch_type="apply",
            force=True,
        )
    for document in manifests.documents():
        name = document["metadata"]["name"]
        waiting.wait_for(
            lambda name=name: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (admin.get(resources.CUSTOM_RESOURCE_DEFINITIONS, name).get("status") or {}).get("conditions")
                or []
            ),
            timeout=30,
            what=f"CRD {name}",
        )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _run(state: control_plane.ClusterState, admin: kube.Client, nodes: int, count: int, workers: int) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    admin.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    api = kube.connect(str(state.kubeconfig), field_manager=names.POPULATOR_FIELD_MANAGER)
    counter = WriteCounter(api)
    pods = kube.WatchCache(api, resources.PODS, namespace=namespace, indexers=populator.POD_INDEXERS)
    node_cache = kube.WatchCache(api, resources.NODES)
    configs = kube.WatchCache(api, resources.LAUNCHER_CONFIGS, namespace=namespace)
    policies = kube.WatchCache(api, resources.LAUNCHER_POPULATION_POLICIES, namespace=namespace)
    the_populator = populator.Populator(
        api,
        namespace=namespace,
        pods=pods,
        nodes=node_cache,
        launcher_configs=configs,
        policies=policies,
        events=kube.EventRecorder(api, component=names.POPULATOR_FIELD_MANAGER, instance="bench"),
        registry=prometheus_client.CollectorRegistry(),
        settings=populator.PopulatorSettings(),
    )
    the_populator.register_handlers()
    caches = [pods, node_cache, configs, policies]
    for cache in caches:
        cache.start()
    assert kube.cache.wait_all_synced(caches, 60)
    the_populator.start(workers=workers)
    selector = f"{keys.COMPONENT_LABEL}={keys.COMPONENT_LAUNCHER}"
    total = nodes * count
    try:
        admin.create(
            resources.LAUNCHER_CONFIGS,
            {
                "apiVersion": "fma.llm-d.ai/v1alpha1",
                "kind": "LauncherConfig",
                "metadata": {"name": "lc"},
                "spec": {
                    "maxInstances": 2,
                    "podTemplate": {"spec": {"containers": [{"name": "inference-server", "image": "ignored"}]}},
                },
            },
            namespace,
        )
        waiting.wait_for(lambda: the_populator.queue.pending() == 0, timeout=30, what="the populator idle")
        before = counter.snapshot()
        started = time.monotonic()
        admin.create(
            resources.LAUNCHER_POPULATION_POLICIES,
            {
                "apiVersion": "fma.llm-d.ai/v1alpha1",
                "kind": "LauncherPopulationPolicy",
                "metadata": {"name": "all"},
                "spec": {
                    "enhancedNodeSelector": {"labelSelector": {"matchLabels": STATUS_ONLY}},
                    "countForLauncher": [{"launcherConfigName": "lc", "launcherCount": count}],
                },
            },
            namespace,
        )
        created_s = ready_s = None
        while ready_s is None:
            items, _ = admin.list_all(resources.PODS, namespace, label_selector=selector)
            now = time.monotonic() - started
            if created_s is None and len(items) >= total:
                created_s = now
            if len(items) == total and all(_ready(p) for p in items):
                ready_s = now
            if now > 600:
                raise TimeoutError(f"not converged after 600 s: {len(items)} launchers")
            time.sleep(0.1)  # polling the apiserver at a fixed rate to time the convergence
        waiting.wait_for(lambda: the_populator.queue.pending() == 0, timeout=30, what="the populator idle")
        after_up = counter.snapshot()
        up_writes = {
            k: after_up.get(k, 0) - before.get(k, 0) for k in after_up if after_up.get(k, 0) != before.get(k, 0)
        }
        items, _ = admin.list_all(resources.PODS, namespace, label_selector=selector)
        per_node = collections.Counter(p["metadata"]["labels"][keys.NODE_NAME_LABEL] for p in items)
        exact = len(per_node) == nodes and set(per_node.values()) == {count}

        started = time.monotonic()
        admin.patch(
            resources.LAUNCHER_POPULATION_POLICIES,
            "all",
            {"spec": {"countForLauncher": [{"launcherConfigName": "lc", "launcherCount": count - 1}]}},
            namespace,
        )
        down_s = None
        while down_s is None:
            items, _ = admin.list_all(resources.PODS, namespace, label_selector=selector)
            now = time.monotonic() - started
            if len(items) == nodes * (count - 1):
                down_s = now
            if now > 600:
                raise TimeoutError(f"not converged down after 600 s: {len(items)} launchers")
            time.sleep(0.1)  # polling the apiserver at a fixed rate to time the convergence
        waiting.wait_for(lambda: the_populator.queue.pending() == 0, timeout=30, what="the populator idle")
        after_down = counter.snapshot()
        down_writes = {
            k: after_down.get(k, 0) - after_up.get(k, 0)
            for k in after_down
            if after_down.get(k, 0) != after_up.get(k, 0)
        }
        stats = the_populator.stats()
    finally:
        the_populator.stop()
        for cache in caches:
            cache.stop()
        api.close()
        admin.delete(resources.NAMESPACES, namespace)
    pod_writes = sum(v for k, v in up_writes.items() if k.endswith(" pods"))
    return {
        "workers": workers,
        "launchers": total,
        "all_created_s": round(created_s or 0.0, 2),
        "all_ready_s": round(ready_s, 2),
        "launchers_per_s": round(total / (created_s or 1.0), 1),
        "exactly_count_per_node": exact,
        "scale_down_to": nodes * (count - 1),
        "scale_down_s": round(down_s, 2),
        "writes_scale_up": up_writes,
        "writes_scale_down": down_writes,
        "pod_writes_per_launcher_created": round(pod_writes / total, 3),
        "direct_lists": stats.direct_lists,
        "delete_conflicts": stats.delete_conflicts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8])
    args = parser.parse_args()
    run_info = run_record.start()

    opts = simnode.SimnodeOptions(nodes=0, status_only_nodes=args.nodes, gpus_per_node=8, node_prefix="bench")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fma-populator-bench-") as tmp:
        state_dir = pathlib.Path(tmp) / "cluster"
        state = control_plane.up(control_plane.ClusterOptions(state_dir=state_dir, apiserver_port=None))
        record = simnode.spawn(state, opts, state_dir / "logs" / "simnode.log")
        admin = kube.connect(str(state.kubeconfig), field_manager="benchmark")
        try:
            simnode.wait_ready(state, opts, record, timeout=300.0)
            _apply_crds(admin)
            for workers in args.workers:
                run = _run(state, admin, args.nodes, args.count, workers)
                print(json.dumps(run), flush=True)
                runs.append(run)
        finally:
            admin.close()
            simnode.stop(record, simnode.state_dir_of(state, opts))
            control_plane.down(state_dir, grace_seconds=5.0)

    result = {
        "benchmark": "populator",
        "run": run_record.finish(run_info),
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "machine": platform.machine()},
        "nodes": args.nodes,
        "count": args.count,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    header = (
        "workers",
        "launchers",
        "created (s)",
        "ready (s)",
        "launchers/s",
        "scale-down (s)",
        "pod writes/launcher",
    )
    print("  ".join(header))
    for run in runs:
        print(
            "  ".join(
                str(v)
                for v in (
                    run["workers"],
                    run["launchers"],
                    run["all_created_s"],
                    run["all_ready_s"],
                    run["launchers_per_s"],
                    run["scale_down_s"],
                    run["pod_writes_per_launcher_created"],
                )
            )
        )
    print(f"written: {RESULTS}")
    ok = all(r["exactly_count_per_node"] and r["pod_writes_per_launcher_created"] == 1.0 for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
