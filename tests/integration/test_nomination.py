"""``placement: hints`` with ``nominate`` on the development cluster: the stock kube-scheduler, no extender.

The real webhook (in-process, hints read from a real sleeper cache) gates a
requester whose best node is certain-hot (``dual-pods.llm-d.ai/nominate``)
and records that node; the real ``fma-controllers`` process (its nominator)
sets ``status.nominatedNodeName`` and lifts the gate; the stock
kube-scheduler with the ``hints`` profile tries the nominated node first.

* a requester lands on its sleeper's node through the nomination and is
  actuated hot;
* a gated requester created while the controllers are down stays gated, and
  is ungated once they start; when its nominated node has been filled in the
  meantime, it schedules on the other node (a nomination never blocks).

Nodes: the session's simnode, 2 nodes x 2 GPUs, lowest free GPU first.
A watch records every ``status.nominatedNodeName`` the requesters show, since
kube-scheduler may clear it once the Pod is bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import pathlib
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
import yaml

import kube
from certs import issuer, reloading_context, renewal, rotation_plan, store
from crds import keys
from devcluster import binaries, control_plane, processes, samples, waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode
from extender import scheduler_config
from kube import resources
from webhook import app as app_mod
from webhook import cluster_facts, configuration, metrics, server, settings

pytestmark = pytest.mark.cluster

SCHEDULER = "fma-nominate-scheduler"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
P = "dual-pods.llm-d.ai/"
POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)), overlap=datetime.timedelta(0)
)
IDLE = ["python", "-c", "import time; time.sleep(3600)"]  # noqa: sleep-ok - a Pod's idle command, not a wait


@dataclasses.dataclass
class Stack:
    api: kube.Client
    namespace: str
    workdir: pathlib.Path
    webhook_metrics: metrics.Metrics
    hints: cluster_facts.SleeperHints
    argv: list[str]
    port: int
    nominated: dict[str, set[str]]
    """Pod name -> every ``status.nominatedNodeName`` seen on it."""
    controller: processes.ProcessRecord | None = None
    starts: int = 0

    def start_controllers(self) -> None:
        self.starts += 1
        log = self.workdir / f"controller-{self.starts}.log"
        self.controller = processes.spawn("fma-controllers", self.argv, log)
        waiting.wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200,
            timeout=60,
            what="fma-controllers /readyz",
            ignore=(httpx.HTTPError,),
        )

    def stop_controllers(self) -> None:
        if self.controller is not None:
            processes.stop(self.controller, 10)
            self.controller = None

    def controller_metric(self, name: str, label: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") and label in line
        )

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def one_pod(self, app: str) -> dict[str, Any] | None:
        items = self.pods(f"app={app}")
        return items[0] if len(items) == 1 else None

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    def ready_requester(self, app: str, timeout: float = 120) -> dict[str, Any]:
        def one_ready() -> dict[str, Any] | None:
            pod = self.one_pod(app)
            return pod if pod is not None and _ready(pod) else None

        try:
            found: dict[str, Any] = waiting.wait_for(one_ready, timeout=timeout, what=f"a Ready requester of {app}")
        except waiting.WaitTimeout:
            print((self.workdir / f"controller-{self.starts}.log").read_text(errors="replace")[-6000:])
            raise
        return found

    def sleeper(self, app: str) -> tuple[str, str]:
        """Run a requester of ``app`` once and scale it away: its instance sleeps on (node, launcher), and the
        webhook's cache sees the sleeper's GPU free."""
        self.api.create(DEPLOYMENTS, _user_deployment(app), self.namespace)
        first = self.ready_requester(app)
        assert P + "nominate" not in _gates(first), "nothing sleeps yet: no gate"
        assert keys.NOMINATED_NODE_ANNOTATION not in first["metadata"].get("annotations", {})
        node = first["spec"]["nodeName"]
        launcher_name = first["metadata"]["labels"][P + "dual"]
        self.scale(app, 0)
        waiting.wait_for(lambda: not self.pods(f"app={app}"), timeout=60, what="the requester deleted")

        def asleep() -> bool:
            meta = self.api.get(resources.PODS, launcher_name, self.namespace)["metadata"]
            inventory = json.loads(meta.get("annotations", {}).get(keys.INSTANCES_ANNOTATION) or "{}")
            running = [i for i in inventory.get("instances") or [] if i.get("status") == "running"]
            return meta["labels"].get(P + "sleeping") == "true" and bool(running)

        waiting.wait_for(asleep, timeout=60, what="the launcher asleep with its instance in the inventory")

        def seen_free() -> bool:
            view = self.hints.cache.node(node)
            return view is not None and not view.held and bool(view.sleepers())

        waiting.wait_for(seen_free, timeout=30, what="the webhook's cache to see the sleeper's GPU free")
        return node, launcher_name


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _gates(pod: Mapping[str, Any]) -> list[str]:
    return [g["name"] for g in (pod.get("spec") or {}).get("schedulingGates") or []]


def _user_deployment(name: str) -> dict[str, Any]:
    container = {
        "name": "inference-server",
        "image": "vllm/vllm-openai",
        "command": ["vllm", "serve", "tiny"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    template = {
        "metadata": {"labels": {"app": name}, "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"}},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
    }
    return samples.deployment(name, template)


def _spawn_scheduler(devcluster: control_plane.ClusterState, workdir: pathlib.Path) -> processes.ProcessRecord:
    """The stock kube-scheduler with the ``hints`` configuration under its own profile name (no extender)."""
    kubeconfig = devcluster.state_dir / "scheduler.kubeconfig"
    config = scheduler_config.render(None, placement="hints", kubeconfig=str(kubeconfig), leader_election=False)
    assert "extenders" not in config
    config["profiles"][0]["schedulerName"] = SCHEDULER
    config_path = workdir / "scheduler.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = processes.free_port()
    record = processes.spawn(
        SCHEDULER,
        [
            str(binaries.locate().kube_scheduler),
            f"--config={config_path}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'scheduler-certs'}",
            "--v=2",
        ],
        workdir / "scheduler.log",
    )
    waiting.wait_for(
        lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200,
        timeout=60,
        what="the scheduler's /healthz",
        ignore=(httpx.HTTPError,),
    )
    return record


def _launcher_rbac(api: kube.Client, namespace: str) -> None:
    rbac = "rbac.authorization.k8s.io"
    api.create(
        resources.Resource(rbac, "v1", "roles", "Role"),
        {
            "metadata": {"name": "launcher"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
        },
        namespace,
    )
    api.create(
        resources.Resource(rbac, "v1", "rolebindings", "RoleBinding"),
        {
            "metadata": {"name": "launcher"},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "launcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
        namespace,
    )


def _strip_finalizers(api: kube.Client, namespace: str) -> None:
    for pod in api.list_all(resources.PODS, namespace)[0]:
        if pod["metadata"].get("finalizers"):
            with contextlib.suppress(kube.errors.NotFound):
                api.patch(resources.PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace)


def _gpu_map_file(api: kube.Client, namespace: str, path: pathlib.Path) -> pathlib.Path:
    config_map = api.get(resources.CONFIG_MAPS, "gpu-map", namespace)
    table: dict[str, int] = {}
    for value in (config_map.get("data") or {}).values():
        table.update({k: int(v) for k, v in json.loads(value).items()})
    path.write_text(json.dumps(table))
    return path


@pytest.fixture
def stack(
    devcluster: control_plane.ClusterState,
    simnode: RunningSimnode,
    fresh_namespace: str,
    fma_crds: list[str],
    tmp_path: pathlib.Path,
) -> Iterator[Stack]:
    namespace = fresh_namespace
    gpu_map_namespace = str(simnode.options.gpu_map_namespace)
    api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-test")
    _launcher_rbac(api, namespace)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(api.close)
        cleanup.callback(_strip_finalizers, api, namespace)
        cert_dir = tmp_path / "certs"
        cert_dir.mkdir()
        renewal.run(store.FileStore(cert_dir), POLICY, datetime.datetime.now(datetime.UTC))
        webhook_metrics = metrics.Metrics()
        context = reloading_context.ReloadingContext(cert_dir / store.TLS_CERT, cert_dir / store.TLS_KEY)
        context.start(1.0)
        cleanup.callback(context.stop)
        configured = settings.Settings(
            kubeconfig=str(devcluster.kubeconfig),
            scheduler_name=SCHEDULER,
            placement="hints",
            nominate=True,
            placement_namespace=namespace,
            gpu_map_namespace=gpu_map_namespace,
            gpu_allocation="lowest-index",
        )
        lookups_api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-webhook")
        hints = server.sleeper_hints(configured, lookups_api, webhook_metrics)
        lookups = cluster_facts.ClusterLookups(lookups_api, timeout=1.0, hints=hints)
        lookups.start()
        cleanup.callback(lookups.stop)
        waiting.wait_for(lambda: lookups.synced and hints.cache.synced, timeout=60, what="the webhook's caches")
        threaded = server.ThreadedServer.start(
            app_mod.create_app(server.build_state(configured, lookups, webhook_metrics)), context.context
        )
        cleanup.callback(threaded.stop)
        mwc_name = f"fma-nominate-test-{namespace}"
        api.create(
            resources.MUTATING_WEBHOOK_CONFIGURATIONS,
            configuration.render(
                (cert_dir / store.BUNDLE).read_bytes(),
                url=f"https://127.0.0.1:{threaded.port}/mutate",
                name=mwc_name,
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            ),
        )
        cleanup.callback(api.delete, resources.MUTATING_WEBHOOK_CONFIGURATIONS, mwc_name)
        scheduler = _spawn_scheduler(devcluster, tmp_path)
        cleanup.callback(processes.stop, scheduler, 5)
        # Every nominatedNodeName the requesters show (the scheduler may clear it after binding).
        nominated: dict[str, set[str]] = {}
        lock = threading.Lock()

        def record(key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
            value = ((new or {}).get("status") or {}).get("nominatedNodeName")
            if new is not None and value:
                with lock:
                    nominated.setdefault(new["metadata"]["name"], set()).add(value)

        watch = kube.WatchCache(api, resources.PODS, namespace=namespace)
        watch.add_handler(record)
        watch.start()
        cleanup.callback(watch.stop)
        watch.wait_synced(30)
        port = processes.free_port()
        argv = [
            sys.executable,
            "-m",
            "controllers",
            f"--namespace={namespace}",
            f"--kubeconfig={devcluster.kubeconfig}",
            f"--gpu-map-namespace={gpu_map_namespace}",
            "--leader-elect=false",
            "--enable-populator=false",
            "--debug-accelerator-memory=false",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={port}",
            "--log-format=text",
        ]
        gpu_map = _gpu_map_file(api, gpu_map_namespace, tmp_path / "gpu-map.json")
        api.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config("lc", gpu_map_file=gpu_map, log_dir=tmp_path, max_instances=2),
            namespace,
        )
        api.create(
            resources.INFERENCE_SERVER_CONFIGS,
            samples.inference_server_config(
                "isc1", launcher_config_name="lc", options=samples.engine_sim_options(), port=8005
            ),
            namespace,
        )
        built = Stack(api, namespace, tmp_path, webhook_metrics, hints, argv, port, nominated)
        cleanup.callback(built.stop_controllers)
        yield built


def test_a_nominated_requester_lands_on_its_sleepers_node_and_wakes_hot(stack: Stack) -> None:
    stack.start_controllers()
    node, launcher_name = stack.sleeper("r1")

    stack.scale("r1", 1)
    second = stack.ready_requester("r1")
    name = second["metadata"]["name"]
    assert second["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert _gates(second) == [], "the gate is lifted"
    assert stack.nominated.get(name) == {node}, "the controllers nominated the sleeper's node"
    assert second["spec"]["nodeName"] == node
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    waiting.wait_for(
        lambda: stack.controller_metric("fma_actuation_seconds_count", 'path="hot"') == 1,
        timeout=15,
        what="one hot actuation",
    )
    assert stack.controller_metric("fma_nominations_total", 'outcome="nominated"') == 1
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="nominated"} 1.0' in text


def test_a_gated_requester_waits_for_the_controllers_and_never_blocks_on_a_full_node(
    stack: Stack, simnode: RunningSimnode
) -> None:
    stack.start_controllers()
    node, _ = stack.sleeper("r1")
    (other,) = [n for n in simnode.node_names if n != node]
    stack.stop_controllers()

    stack.scale("r1", 1)
    gated = waiting.wait_for(lambda: stack.one_pod("r1"), timeout=30, what="the requester created")
    assert _gates(gated) == [P + "nominate"]
    assert gated["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert not gated["spec"].get("nodeName")

    # While the controllers are down, the nominated node fills up (a Pod bound there directly, both GPUs).
    filler = {
        "metadata": {"name": "filler"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "ignored", "command": IDLE, "resources": {"limits": {"nvidia.com/gpu": "2"}}}
            ],
        },
    }
    stack.api.create(resources.PODS, filler, stack.namespace)
    waiting.wait_for(
        lambda: (
            (stack.api.get(resources.PODS, "filler", stack.namespace).get("status") or {}).get("phase") == "Running"
        ),
        timeout=60,
        what="the filler Running on the nominated node",
    )
    still = stack.one_pod("r1")
    assert still is not None
    assert _gates(still) == [P + "nominate"], "no controllers: still gated"

    stack.start_controllers()
    placed = stack.ready_requester("r1")
    assert placed["metadata"]["name"] == gated["metadata"]["name"]
    assert _gates(placed) == []
    assert node in stack.nominated.get(placed["metadata"]["name"], set()), "nominated to the full node"
    assert placed["spec"]["nodeName"] == other, "and scheduled elsewhere"
    assert stack.controller_metric("fma_nominations_total", 'outcome="nominated"') == 1
