"""DRA on the development cluster: a simnode whose node offers its GPUs as DRA devices.

``dra_simnode`` starts, for this directory's tests, a second simnode beside
the session's device-plugin one: one node with 4 GPUs in ``dra`` mode (a
ResourceSlice of driver ``gpu.nvidia.com`` and the ``fma-gpu``
DeviceClass), its ``gpu-map`` entry merged into ``default``.  Together the
two make a mixed cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import kube
from certs import issuer, reloading_context, renewal, rotation_plan, store
from controllers import claim_keeper
from crds import gpu_claims, keys
from devcluster import control_plane, processes, samples, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import pytest_fixtures as simnode_fixtures
from kube import resources
from webhook import app as app_mod
from webhook import cluster_facts, configuration, gpu_claim, metrics, server, settings


@pytest.fixture(scope="module")
def dra_simnode(devcluster: control_plane.ClusterState) -> Iterator[simnode_fixtures.RunningSimnode]:
    """One DRA-mode node with 4 GPUs, for this module."""
    # A state directory of its own: stopping this simnode stops every process recorded there.
    opts = simnode_mod.SimnodeOptions(
        nodes=1,
        gpus_per_node=4,
        gpu_mode="dra",
        gpu_map_namespace="default",
        node_prefix=f"dra{os.getpid()}",
        state_dir=devcluster.state_dir / "simnode-dra",
    )
    state_dir = simnode_mod.state_dir_of(devcluster, opts)
    record = simnode_mod.spawn(devcluster, opts, devcluster.state_dir / "logs" / "simnode-dra.log")
    try:
        simnode_mod.wait_ready(devcluster, opts, record, timeout=60.0)
        name = simnode_mod.node_names(opts)[0]
        with devcluster.http_client() as api:
            path = f"/apis/{gpu_claims.API_VERSION}/resourceslices/{name}-{gpu_claims.DRIVER_DEFAULT}"
            waiting.wait_for(lambda: api.get(path).status_code == 200, timeout=30, what="the DRA node's slice")
        yield simnode_fixtures.RunningSimnode(opts, record, state_dir, devcluster)
    finally:
        leftovers = simnode_mod.stop(record, state_dir)
        with devcluster.http_client() as api:
            for node in simnode_mod.node_names(opts):
                api.delete(f"/api/v1/nodes/{node}")
    assert leftovers == 0, f"simnode left {leftovers} container processes running; see {record.log}"


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def ok(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful response (fails the test with the body otherwise)."""
    assert response.status_code < 300, response.text
    return dict(response.json())


P = "dual-pods.llm-d.ai/"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
_POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)), overlap=datetime.timedelta(0)
)


@dataclasses.dataclass
class Stack:
    """The real webhook (DRA by default), the real controllers (with the claim keeper), one DRA node."""

    api: kube.Client
    namespace: str
    workdir: pathlib.Path
    controller_port: int
    hints: cluster_facts.SleeperHints
    dra_node: str
    plugin_node: str
    kubeconfig: pathlib.Path

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    def deploy(self, name: str, *, node: str, gpus: int = 1, gpu_request: str | None = None) -> None:
        """What a user writes (an ``inference-server`` container, the ISC annotation), pinned to ``node``."""
        annotations = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"}
        if gpu_request:
            annotations[gpu_claim.GPU_REQUEST_ANNOTATION] = gpu_request
        container = {
            "name": "inference-server",
            "image": "vllm/vllm-openai",
            "command": ["vllm", "serve", "tiny"],
            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        }
        template = {
            "metadata": {"labels": {"app": name}, "annotations": annotations},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "nodeSelector": {"kubernetes.io/hostname": node},
                "containers": [container],
            },
        }
        self.api.create(DEPLOYMENTS, samples.deployment(name, template), self.namespace)

    def ready_requester(self, app: str, timeout: float = 120) -> dict[str, Any]:
        def one_ready() -> dict[str, Any] | None:
            items = self.pods(f"app={app}")
            ready = [p for p in items if _ready(p)]
            return ready[0] if len(items) == 1 and ready else None

        try:
            found: dict[str, Any] = waiting.wait_for(one_ready, timeout=timeout, what=f"a Ready requester of {app}")
        except waiting.WaitTimeout:
            print((self.workdir / "controller.log").read_text(errors="replace")[-6000:])
            raise
        return found

    def actuations(self, path: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.controller_port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("fma_actuation_seconds_count{") and f'path="{path}"' in line
        )

    def claim_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        name = gpu_claims.claim_name_of(pod)
        assert name is not None, pod["metadata"]["name"]
        found: dict[str, Any] | None = self.api.get_or_none(claim_keeper.RESOURCE_CLAIMS, name, self.namespace)
        return found

    def scale_to_zero_and_sleep(self, app: str, launcher_name: str) -> None:
        """Scale ``app`` to 0 and wait until its instance sleeps and the webhook sees its GPUs free."""
        self.scale(app, 0)
        waiting.wait_for(
            lambda: not self.api.list_all(resources.PODS, self.namespace, label_selector=f"app={app}")[0],
            timeout=60,
            what=f"the requesters of {app} gone",
        )

        def asleep() -> bool:
            meta = self.api.get(resources.PODS, launcher_name, self.namespace)["metadata"]
            return meta["labels"].get(P + "sleeping") == "true"

        waiting.wait_for(asleep, timeout=60, what="the launcher asleep")

        def seen_free() -> bool:
            view = self.hints.cache.node(self.dra_node)
            if view is None:
                return False
            sleeping = {g for s in view.sleepers() for g in s.gpus}
            return bool(sleeping) and not (sleeping & view.held)

        waiting.wait_for(seen_free, timeout=30, what="the webhook's cache to see the sleeper's GPUs free")


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _strip_finalizers(api: kube.Client, namespace: str) -> None:
    for pod in api.list_all(resources.PODS, namespace)[0]:
        if pod["metadata"].get("finalizers"):
            with contextlib.suppress(kube.errors.NotFound):
                api.patch(resources.PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace)


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


@pytest.fixture
def stack(
    devcluster: control_plane.ClusterState,
    simnode: simnode_fixtures.RunningSimnode,
    dra_simnode: simnode_fixtures.RunningSimnode,
    fresh_namespace: str,
    fma_crds: list[str],
    tmp_path: pathlib.Path,
) -> Iterator[Stack]:
    """Webhook (``gpu_claims: dra``, default scheduler), controllers with the claim keeper, launchers."""
    namespace = fresh_namespace
    api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-test")
    _launcher_rbac(api, namespace)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(api.close)
        cleanup.callback(_strip_finalizers, api, namespace)
        cert_dir = tmp_path / "certs"
        cert_dir.mkdir()
        renewal.run(store.FileStore(cert_dir), _POLICY, datetime.datetime.now(datetime.UTC))
        webhook_metrics = metrics.Metrics()
        context = reloading_context.ReloadingContext(cert_dir / store.TLS_CERT, cert_dir / store.TLS_KEY)
        context.start(1.0)
        cleanup.callback(context.stop)
        configured = settings.Settings(
            kubeconfig=str(devcluster.kubeconfig),
            scheduler_name="",
            gpu_claims="dra",
            placement_namespace=namespace,
            gpu_map_namespace="default",
        )
        lookups_api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-webhook")
        hints = server.sleeper_hints(configured, lookups_api, webhook_metrics)
        lookups = cluster_facts.ClusterLookups(
            lookups_api, timeout=1.0, hints=hints, gpu_claims=server.gpu_claims_options(configured)
        )
        lookups.start()
        cleanup.callback(lookups.stop)
        waiting.wait_for(lambda: lookups.synced and hints.cache.synced, timeout=60, what="the webhook's caches")
        threaded = server.ThreadedServer.start(
            app_mod.create_app(server.build_state(configured, lookups, webhook_metrics)), context.context
        )
        cleanup.callback(threaded.stop)
        mwc_name = f"fma-dra-test-{namespace}"
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
        port = processes.free_port()
        argv = [
            sys.executable,
            "-m",
            "controllers",
            f"--namespace={namespace}",
            f"--kubeconfig={devcluster.kubeconfig}",
            "--gpu-map-namespace=default",
            "--leader-elect=false",
            "--enable-populator=false",
            "--enable-gpu-claims=true",
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
        config_map = api.get(resources.CONFIG_MAPS, "gpu-map", "default")
        table: dict[str, int] = {}
        for value in (config_map.get("data") or {}).values():
            table.update({k: int(v) for k, v in json.loads(value).items()})
        gpu_map = tmp_path / "gpu-map.json"
        gpu_map.write_text(json.dumps(table))
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
        yield Stack(
            api,
            namespace,
            tmp_path,
            port,
            hints,
            dra_simnode.node_names[0],
            simnode.node_names[0],
            devcluster.kubeconfig,
        )
