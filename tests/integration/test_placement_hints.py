"""``placement: hints`` on the development cluster: the stock kube-scheduler, no extender.

A requester created through the real webhook (``placement: hints``) gets a
node-affinity hint naming the node where its sleeper waits, and a stock
kube-scheduler whose profile only weights ``NodeAffinity``
(``extender.scheduler_config.render(placement="hints")``, no extender
configured) puts it there; the real dual-pods controller then wakes the
sleeper (a hot actuation).  The sleeper's node also holds the launcher Pod,
so the default scoring alone (least allocated) would, if anything, prefer the
other node.

Nodes: the session's simnode, 2 nodes x 2 GPUs, handing out the lowest free
GPU first (``gpu-allocation: lowest-index``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import pathlib
import sys
from collections.abc import Iterator
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

SCHEDULER = "fma-hints-scheduler"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
P = "dual-pods.llm-d.ai/"
POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)), overlap=datetime.timedelta(0)
)


@dataclasses.dataclass
class Stack:
    api: kube.Client
    namespace: str
    workdir: pathlib.Path
    webhook_metrics: metrics.Metrics
    controller_port: int
    hints: cluster_facts.SleeperHints

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    def ready_requester(self, app: str) -> dict[str, Any]:
        def one_ready() -> dict[str, Any] | None:
            items = self.pods(f"app={app}")
            ready = [p for p in items if _ready(p)]
            return ready[0] if len(items) == 1 and ready else None

        try:
            found: dict[str, Any] = waiting.wait_for(one_ready, timeout=120, what=f"a Ready requester of {app}")
        except waiting.WaitTimeout:
            print((self.workdir / "controller.log").read_text(errors="replace")[-6000:])
            raise
        return found

    def hot_actuations(self) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.controller_port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("fma_actuation_seconds_count{") and 'path="hot"' in line
        )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _spawn_scheduler(devcluster: control_plane.ClusterState, workdir: pathlib.Path) -> processes.ProcessRecord:
    """The stock kube-scheduler with the ``hints`` configuration under its own profile name."""
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
        what="the hints scheduler's /healthz",
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
        # Runs last, after the controller has stopped: let the namespace deletion go through.
        cleanup.callback(_strip_finalizers, api, namespace)
        # The webhook, in-process, with hints read from a real sleeper cache.
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
        mwc_name = f"fma-hints-test-{namespace}"
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
        # The stock scheduler, hints profile, no extender.
        scheduler = _spawn_scheduler(devcluster, tmp_path)
        cleanup.callback(processes.stop, scheduler, 5)
        # The dual-pods controller.
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
        controller = processes.spawn("fma-controllers", argv, tmp_path / "controller.log")
        cleanup.callback(processes.stop, controller, 10)
        waiting.wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
            timeout=60,
            what="fma-controllers /readyz",
            ignore=(httpx.HTTPError,),
        )
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
        yield Stack(api, namespace, tmp_path, webhook_metrics, port, hints)


def _user_deployment(name: str) -> dict[str, Any]:
    """What a user writes: an ``inference-server`` container and the ISC annotation; the webhook does the rest."""
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


def _hinted_nodes(pod: dict[str, Any]) -> dict[str, int]:
    affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(PREFERRED) or []
    found: dict[str, int] = {}
    for term in affinity:
        for field in term["preference"].get("matchFields") or []:
            for node in field["values"]:
                found[node] = term["weight"]
    return found


def test_a_requester_lands_on_its_sleepers_node_and_wakes_it_hot(stack: Stack) -> None:
    stack.api.create(DEPLOYMENTS, _user_deployment("r1"), stack.namespace)
    first = stack.ready_requester("r1")
    assert first["spec"]["schedulerName"] == SCHEDULER
    assert _hinted_nodes(first) == {}, "nothing sleeps yet: no preference"
    node = first["spec"]["nodeName"]
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]

    stack.scale("r1", 0)

    def requester_gone() -> bool:
        items, _ = stack.api.list_all(resources.PODS, stack.namespace, label_selector="app=r1")
        return not items

    waiting.wait_for(requester_gone, timeout=60, what="the requester deleted (finalizer released)")

    def asleep() -> bool:
        meta = stack.api.get(resources.PODS, launcher_name, stack.namespace)["metadata"]
        inventory = json.loads(meta.get("annotations", {}).get(keys.INSTANCES_ANNOTATION) or "{}")
        running = [i for i in inventory.get("instances") or [] if i.get("status") == "running"]
        return meta["labels"].get(P + "sleeping") == "true" and bool(running)

    waiting.wait_for(asleep, timeout=60, what="the launcher asleep with its instance in the inventory")

    def seen_free() -> bool:
        view = stack.hints.cache.node(node)
        return view is not None and not view.held and bool(view.sleepers())

    waiting.wait_for(seen_free, timeout=30, what="the webhook's cache to see the sleeper's GPU free")

    stack.scale("r1", 1)
    second = stack.ready_requester("r1")
    assert _hinted_nodes(second) == {node: 10}, "a certain-hot hint for the sleeper's node, and only that"
    assert second["spec"]["nodeName"] == node
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    assert second["metadata"]["labels"][P + "instance"] == instance_id
    waiting.wait_for(lambda: stack.hot_actuations() == 1, timeout=15, what="one hot actuation")
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="hinted"} 1.0' in text
