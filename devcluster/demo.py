"""``fma-dev demo``: FMA's dual pods working on the development cluster.

Installs the CRDs, starts ``fma-controllers`` for the ``fma-demo`` namespace
(recorded in the state directory, so ``fma-dev down`` stops it), creates a
LauncherConfig whose launchers run the engine simulator, an
InferenceServerConfig, a LauncherPopulationPolicy (one idle launcher per GPU
node) and a Deployment of requesters, and then shows the actuation paths:
the first requester is a warm start (a new instance in a launcher the
populator keeps waiting), scaling to 0 puts the engine to sleep, and scaling
back to 1 wakes it (hot).
Every step waits on a condition and prints what it sees.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import yaml

import kube
from devcluster import control_plane, processes, samples, waiting
from kube import resources

__all__ = ["CONTROLLERS_FILE", "NAMESPACE", "controllers_record", "run"]

NAMESPACE = "fma-demo"
CONTROLLERS_FILE = "fma-controllers.json"
_DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
_P = "dual-pods.llm-d.ai/"


def controllers_record(state_dir: pathlib.Path) -> processes.ProcessRecord | None:
    """The demo's ``fma-controllers`` process, if the demo started one."""
    path = state_dir / CONTROLLERS_FILE
    if not path.is_file():
        return None
    return processes.ProcessRecord(**json.loads(path.read_text()))


def _apply(api: kube.Client, resource: resources.Resource, body: dict[str, Any], namespace: str | None) -> None:
    try:
        api.create(resource, body, namespace)
    except kube.errors.AlreadyExists:
        current = api.get(resource, body["metadata"]["name"], namespace)
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        if namespace:
            body["metadata"]["namespace"] = namespace
        api.replace(resource, body)


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or []
    )


def run(state: control_plane.ClusterState, say: Callable[[str], None]) -> None:
    """Run the demo against ``state``'s cluster (which must have simnode nodes)."""
    api = kube.connect(str(state.kubeconfig), field_manager="fma-demo")
    try:
        _run(api, state, say)
    finally:
        api.close()


def _established(api: kube.Client, name: str) -> bool:
    crd = api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, name)
    return any(
        c["type"] == "Established" and c["status"] == "True" for c in (crd.get("status") or {}).get("conditions") or []
    )


def _install_crds(api: kube.Client) -> None:
    manifests = sorted((pathlib.Path(__file__).resolve().parent.parent / "crds" / "manifests").glob("*.yaml"))
    documents = [yaml.safe_load(path.read_text()) for path in manifests]
    for document in documents:
        _apply(api, resources.CUSTOM_RESOURCE_DEFINITIONS, document, None)
    for document in documents:
        name = document["metadata"]["name"]
        waiting.wait_for(functools.partial(_established, api, name), timeout=60, what=f"{name} Established")


def _run(api: kube.Client, state: control_plane.ClusterState, say: Callable[[str], None]) -> None:
    say("installing the FMA CustomResourceDefinitions")
    _install_crds(api)
    _apply(api, resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, None)
    waiting.wait_for(
        lambda: api.get_or_none(resources.SERVICE_ACCOUNTS, "default", NAMESPACE), timeout=30, what="ServiceAccount"
    )
    gpu_map = api.get(resources.CONFIG_MAPS, "gpu-map", "default")
    table: dict[str, int] = {}
    for value in (gpu_map.get("data") or {}).values():
        table.update(json.loads(value))
    gpu_map_file = state.state_dir / "demo-gpu-map.json"
    gpu_map_file.write_text(json.dumps(table))
    metrics_port = _start_controllers(state, say)
    node = _create_objects(api, state, gpu_map_file, say)
    _show_actuations(api, node, metrics_port, say)


def _start_controllers(state: control_plane.ClusterState, say: Callable[[str], None]) -> int:
    """Start (or find) the demo's fma-controllers; return its metrics port."""
    record = controllers_record(state.state_dir)
    metrics_port = 0
    if record is None or not processes.is_alive(record):
        metrics_port = processes.free_port(18002)
        say(f"starting fma-controllers for namespace {NAMESPACE} (metrics on 127.0.0.1:{metrics_port})")
        argv = [
            sys.executable, "-m", "controllers", "--namespace", NAMESPACE, "--kubeconfig", str(state.kubeconfig),
            "--gpu-map-namespace", "default", "--leader-elect", "false", "--debug-accelerator-memory", "false",
            "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port),
        ]  # fmt: skip
        record = processes.spawn("fma-controllers", argv, state.state_dir / "logs" / "fma-controllers.log")
        (state.state_dir / CONTROLLERS_FILE).write_text(json.dumps({**dataclasses.asdict(record)}))
        (state.state_dir / "fma-controllers.port").write_text(str(metrics_port))
    else:
        metrics_port = int((state.state_dir / "fma-controllers.port").read_text())
        say(f"using the fma-controllers already running (metrics on 127.0.0.1:{metrics_port})")
    waiting.wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2).status_code == 200,
        timeout=60,
        what="fma-controllers ready",
        ignore=(httpx.HTTPError,),
    )
    return metrics_port


def _create_objects(
    api: kube.Client, state: control_plane.ClusterState, gpu_map_file: pathlib.Path, say: Callable[[str], None]
) -> str:
    """The LauncherConfig, ISC, policy and (scaled to 0) Deployment; returns the node the requesters go to."""
    say("creating LauncherConfig 'sim' (launchers run the engine simulator) and InferenceServerConfig 'tiny'")
    _apply(
        api,
        resources.LAUNCHER_CONFIGS,
        samples.launcher_config("sim", gpu_map_file=gpu_map_file, log_dir=state.state_dir / "logs"),
        NAMESPACE,
    )
    options = samples.engine_sim_options(startup_s=3, model_gib=16)
    isc = samples.inference_server_config(
        "tiny", launcher_config_name="sim", options=options, labels={"llm-d.ai/model": "tiny-llm"}
    )
    _apply(api, resources.INFERENCE_SERVER_CONFIGS, isc, NAMESPACE)
    say("creating LauncherPopulationPolicy 'one-per-gpu-node': one idle launcher waits on every GPU node")
    policy = samples.launcher_population_policy(
        "one-per-gpu-node", launcher_config_name="sim", count=1, match_labels={"nvidia.com/gpu.present": "true"}
    )
    _apply(api, resources.LAUNCHER_POPULATION_POLICIES, policy, NAMESPACE)

    def launchers_ready() -> bool:
        items, _ = api.list_all(resources.PODS, NAMESPACE, label_selector="app.kubernetes.io/component=launcher")
        return len(items) >= 2 and all(_ready(p) for p in items)

    waiting.wait_for(launchers_ready, timeout=120, what="the populator's launchers Ready")
    nodes, _ = api.list_all(resources.NODES, label_selector="nvidia.com/gpu.present=true")
    node = str(sorted(n["metadata"]["name"] for n in nodes)[0])
    # Pinned to one node so that the sleeper is found again; in a real install the
    # FMA scheduler (the extender) places requesters next to their sleepers.
    _apply(
        api,
        _DEPLOYMENTS,
        samples.deployment("tiny", samples.requester_template("tiny", "tiny", node=node), replicas=0),
        NAMESPACE,
    )
    return node


def _show_actuations(api: kube.Client, node: str, metrics_port: int, say: Callable[[str], None]) -> None:
    say(f"requesters go to node {node}")

    def step(replicas: int, what: str) -> dict[str, Any] | None:
        started = time.monotonic()
        api.patch(_DEPLOYMENTS, "tiny", {"spec": {"replicas": replicas}}, NAMESPACE)

        def settled() -> tuple[dict[str, Any] | None, ...]:
            """``(pod,)`` once settled (``(None,)`` when scaled to 0); ``()`` before."""
            items, _ = api.list_all(resources.PODS, NAMESPACE, label_selector="app=tiny")
            if replicas == 0:
                return (None,) if not items else ()
            live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
            return (live[0],) if len(live) == 1 and _ready(live[0]) else ()

        outcome = waiting.wait_for(settled, timeout=120, what=what)
        say(f"{what}: done in {time.monotonic() - started:.1f}s")
        return outcome[0]

    first = step(1, "scale to 1: the first requester (warm start: a new instance in a waiting launcher)")
    assert first is not None
    launcher_name = first["metadata"]["labels"][_P + "dual"]
    say(f"requester {first['metadata']['name']} is bound to launcher {launcher_name}")
    step(0, "scale to 0: the engine goes to sleep, the launcher stays")
    launcher = api.get(resources.PODS, launcher_name, NAMESPACE)
    say(f"launcher {launcher_name}: sleeping={launcher['metadata']['labels'].get(_P + 'sleeping')}")
    second = step(1, "scale to 1: the sleeping instance is woken (hot start)")
    assert second is not None
    say(f"requester {second['metadata']['name']} is bound to launcher {second['metadata']['labels'][_P + 'dual']}")
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(("fma_actuation_seconds_count", "fma_actuation_seconds_sum")):
            say(line)
