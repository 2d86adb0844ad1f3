"""The FMA scheduler with the extender on the development cluster and simnode.

A second kube-scheduler (profile ``fma-scheduler``), configured from the one
packaged file (``extender.scheduler_config.render``), runs beside the
cluster's default scheduler, exactly as the chart deploys it, and calls a real
``fma-extender`` process.  The sleeper and launcher state is created the way
the launcher and the controller would leave it: a launcher Pod whose
``instances`` annotation lists a running instance, and a GPU-holding Pod with
its ``accelerators`` annotation (the dual-pods controller does not exist yet).

Nodes: the session's simnode, ``simnode-0`` (A) and ``simnode-1`` (B), 2 GPUs
each, allocating the lowest free GPU first.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import ssl
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import crds
from certs import issuer
from crds import inference_server_config, keys, launcher_inventory, manifests
from devcluster import control_plane, processes, waiting
from devcluster.simnode import fleet
from devcluster.simnode.pytest_fixtures import RunningSimnode
from extender import scheduler_config

from . import placement_stack

pytestmark = pytest.mark.cluster

ISC = "isc-a"
LC = "lc-a"
MODEL = inference_server_config.ModelServerConfig(port=8005, options="--model tiny")
CONFIG_KEY = crds.config_key(MODEL)
SLEEP = ["python", "-c", "import time; time.sleep(3600)"]  # noqa: sleep-ok - a Pod's idle command


@dataclasses.dataclass
class FmaScheduler:
    """The extender process and the FMA kube-scheduler."""

    extender_url: str
    extender_argv: list[str]
    extender_log: pathlib.Path
    extender: processes.ProcessRecord
    scheduler: processes.ProcessRecord

    def restart_extender(self) -> None:
        self.extender = processes.spawn("fma-extender", self.extender_argv, self.extender_log)
        _wait_healthy(self.extender_url, self.extender)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return dict(response.json())


def _wait_healthy(url: str, record: processes.ProcessRecord) -> None:
    def healthy() -> bool:
        assert processes.is_alive(record), pathlib.Path(record.log).read_text()[-3000:]
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200

    waiting.wait_for(healthy, timeout=60, what="fma-extender /healthz", ignore=(httpx.HTTPError,))


def _install_crds(api: httpx.Client) -> None:
    for document in manifests.documents():
        response = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=document)
        assert response.status_code in (201, 409), response.text

    def established() -> bool:
        for document in manifests.documents():
            name = document["metadata"]["name"]
            crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") != "True":
                return False
        return True

    waiting.wait_for(established, timeout=60, what="FMA CRDs Established")


@pytest.fixture(scope="module")
def fma_scheduler(
    devcluster: control_plane.ClusterState, simnode: RunningSimnode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FmaScheduler]:
    workdir = tmp_path_factory.mktemp("fma-scheduler")
    with devcluster.http_client() as api:
        _install_crds(api)
    extender_port = processes.free_port()
    url = f"http://127.0.0.1:{extender_port}"
    argv = [
        sys.executable,
        "-m",
        "extender",
        f"--port={extender_port}",
        f"--kubeconfig={devcluster.kubeconfig}",
        f"--gpu-map-namespace={simnode.options.gpu_map_namespace}",
        "--log-level=debug",
    ]
    extender_log = workdir / "extender.log"
    extender = processes.spawn("fma-extender", argv, extender_log)
    scheduler: processes.ProcessRecord | None = None
    fma: FmaScheduler | None = None
    try:
        _wait_healthy(url, extender)
        config = scheduler_config.render(
            url, kubeconfig=str(devcluster.state_dir / "scheduler.kubeconfig"), leader_election=False
        )
        scheduler = placement_stack.spawn_scheduler(devcluster, workdir, "fma-scheduler", config)
        fma = FmaScheduler(url, argv, extender_log, extender, scheduler)
        yield fma
    finally:
        if scheduler is not None:
            processes.stop(scheduler, grace_seconds=5)
        # A test may have restarted the extender: stop the one that runs now.
        processes.stop(fma.extender if fma is not None else extender, grace_seconds=5)


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    with devcluster.http_client() as client:
        yield client


def _pod(
    name: str,
    *,
    gpus: int = 0,
    cpu: str = "100m",
    scheduler: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    node_name: str | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": "64Mi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    spec: dict[str, Any] = {
        "containers": [{"name": "inference-server", "image": "ignored", "command": SLEEP, "resources": resources}],
        "terminationGracePeriodSeconds": 1,
    }
    if scheduler:
        spec["schedulerName"] = scheduler
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}, "labels": labels or {}},
        "spec": spec,
    }


def _create(api: httpx.Client, namespace: str, body: dict[str, Any]) -> None:
    _ok(api.post(f"/api/v1/namespaces/{namespace}/pods", json=body))


def _scheduled_node(api: httpx.Client, namespace: str, name: str, timeout: float = 60) -> str:
    def node() -> str | None:
        pod = _ok(api.get(f"/api/v1/namespaces/{namespace}/pods/{name}"))
        return (pod.get("spec") or {}).get("nodeName")

    return str(waiting.wait_for(node, timeout=timeout, what=f"pod {namespace}/{name} scheduled"))


def _delete_and_wait(api: httpx.Client, namespace: str, name: str) -> None:
    api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", params={"gracePeriodSeconds": 0})
    waiting.wait_for(
        lambda: api.get(f"/api/v1/namespaces/{namespace}/pods/{name}").status_code == 404,
        timeout=60,
        what=f"pod {name} gone",
    )


def _configs(api: httpx.Client, namespace: str) -> None:
    base = f"/apis/{crds.kinds.GROUP}/{crds.kinds.VERSION}/namespaces/{namespace}"
    lc = {
        "apiVersion": crds.kinds.API_VERSION,
        "kind": "LauncherConfig",
        "metadata": {"name": LC},
        "spec": {
            "maxInstances": 2,
            "podTemplate": {"spec": {"containers": [{"name": "inference-server", "image": "x"}]}},
        },
    }
    isc = {
        "apiVersion": crds.kinds.API_VERSION,
        "kind": "InferenceServerConfig",
        "metadata": {"name": ISC},
        "spec": {"modelServerConfig": MODEL.to_raw(), "launcherConfigName": LC},
    }
    _ok(api.post(f"{base}/launcherconfigs", json=lc))
    _ok(api.post(f"{base}/inferenceserverconfigs", json=isc))


def _launcher(node: str, inventory: str | None) -> dict[str, Any]:
    annotations = {keys.INSTANCES_ANNOTATION: inventory} if inventory is not None else {}
    return _pod(
        f"launcher-{LC}-{uuid.uuid4().hex[:5]}",
        labels={
            keys.LAUNCHER_CONFIG_NAME_LABEL: LC,
            keys.NODE_NAME_LABEL: node,
            keys.COMPONENT_LABEL: keys.COMPONENT_LAUNCHER,
            keys.SLEEPING_LABEL: keys.SLEEPING_TRUE,
        },
        annotations=annotations,
        node_selector={"kubernetes.io/hostname": node},
    )


def _requester(name: str, scheduler: str = scheduler_config.SCHEDULER_NAME, fma: bool = True) -> dict[str, Any]:
    annotations = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: ISC} if fma else {}
    return _pod(name, gpus=1, scheduler=scheduler, annotations=annotations)


def _extender_scores(url: str, namespace: str, nodes: list[str]) -> dict[str, int]:
    pod = _requester("probe") | {}
    pod["metadata"] = dict(pod["metadata"], namespace=namespace)
    answer = httpx.post(f"{url}/prioritize", json={"Pod": pod, "NodeNames": nodes}, timeout=5).json()
    return {entry["Host"]: entry["Score"] for entry in answer}


def _decisions(url: str, placement: str) -> float:
    prefix = f'fma_extender_decisions_total{{placement="{placement}"}} '
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def _busy_b(api: httpx.Client, namespace: str, node_b: str, *, gpu: bool) -> None:
    """Make B fuller than A for the default plugins (8 of 16 CPUs), optionally holding B's GPU 0."""
    annotations = {keys.ACCELERATORS_ANNOTATION: fleet.gpu_uuid(node_b, 0)} if gpu else {}
    _create(api, namespace, _pod("holder", gpus=1 if gpu else 0, cpu="8", annotations=annotations, node_name=node_b))


def test_requester_lands_on_the_node_of_its_sleeper(
    fma_scheduler: FmaScheduler, simnode: RunningSimnode, api: httpx.Client, fresh_namespace: str
) -> None:
    node_a, node_b = simnode.node_names[:2]
    _configs(api, fresh_namespace)
    _busy_b(api, fresh_namespace, node_b, gpu=True)
    # What the launcher publishes for one running (hence, unbound, asleep) instance on B's GPU 1.
    inventory = launcher_inventory.LauncherInventory(
        revision=2,
        instances=[
            launcher_inventory.InventoryInstance(
                id="I-sleeper-i",
                isc=ISC,
                config_key=CONFIG_KEY,
                gpus=[fleet.gpu_uuid(node_b, 1)],
                port=MODEL.port,
                status="running",
            )
        ],
    ).format()
    _create(api, fresh_namespace, _launcher(node_b, inventory))
    waiting.wait_for(
        lambda: (
            _extender_scores(fma_scheduler.extender_url, fresh_namespace, [node_a, node_b]) == {node_a: 3, node_b: 10}
        ),
        timeout=30,
        what="the extender to see B's sleeper as certain hot",
    )

    # Without FMA annotations the same GPU Pod, sent to the FMA scheduler, goes where the
    # default plugins put it: the emptier node A (the extender answers neutrally).
    _create(api, fresh_namespace, _requester("plain", fma=False))
    assert _scheduled_node(api, fresh_namespace, "plain") == node_a
    _delete_and_wait(api, fresh_namespace, "plain")

    hot_before = _decisions(fma_scheduler.extender_url, "certain_hot")
    _create(api, fresh_namespace, _requester("requester"))
    assert _scheduled_node(api, fresh_namespace, "requester") == node_b
    assert _decisions(fma_scheduler.extender_url, "certain_hot") > hot_before, "the scheduler did not ask the extender"


def test_without_a_sleeper_an_idle_launcher_of_its_config_wins(
    fma_scheduler: FmaScheduler, simnode: RunningSimnode, api: httpx.Client, fresh_namespace: str
) -> None:
    node_a, node_b = simnode.node_names[:2]
    _configs(api, fresh_namespace)
    _busy_b(api, fresh_namespace, node_b, gpu=False)
    _create(api, fresh_namespace, _launcher(node_b, None))
    waiting.wait_for(
        lambda: (
            _extender_scores(fma_scheduler.extender_url, fresh_namespace, [node_a, node_b]) == {node_a: 3, node_b: 5}
        ),
        timeout=30,
        what="the extender to see B's idle launcher as warm",
    )
    _create(api, fresh_namespace, _requester("plain", scheduler="default-scheduler", fma=False))
    assert _scheduled_node(api, fresh_namespace, "plain") == node_a, "the default scheduler should prefer A"
    _delete_and_wait(api, fresh_namespace, "plain")
    _create(api, fresh_namespace, _requester("requester"))
    assert _scheduled_node(api, fresh_namespace, "requester") == node_b


def test_scheduler_keeps_working_when_the_extender_is_down(
    fma_scheduler: FmaScheduler, api: httpx.Client, fresh_namespace: str
) -> None:
    _configs(api, fresh_namespace)
    processes.stop(fma_scheduler.extender, grace_seconds=5)
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{fma_scheduler.extender_url}/healthz", timeout=2)
        _create(api, fresh_namespace, _requester("requester"))
        assert _scheduled_node(api, fresh_namespace, "requester")
    finally:
        fma_scheduler.restart_extender()


def test_extender_serves_https_with_certs_from_the_certs_package(
    devcluster: control_plane.ClusterState,
    simnode: RunningSimnode,
    api: httpx.Client,
    fresh_namespace: str,
    tmp_path: pathlib.Path,
) -> None:
    _install_crds(api)  # the extender watches ISCs and LauncherConfigs; it is healthy once all are listed
    now = datetime.datetime.now(datetime.UTC)
    ca = issuer.create_ca("fma-test-ca", now, datetime.timedelta(days=1))
    serving = issuer.issue_serving(
        ca, issuer.ServingIdentity("fma-extender", ip_addresses=("127.0.0.1",)), now, datetime.timedelta(hours=1)
    )
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    port = processes.free_port()
    record = processes.spawn(
        "fma-extender-tls",
        [
            sys.executable,
            "-m",
            "extender",
            f"--port={port}",
            f"--kubeconfig={devcluster.kubeconfig}",
            f"--tls-cert-file={tmp_path / 'tls.crt'}",
            f"--tls-key-file={tmp_path / 'tls.key'}",
        ],
        tmp_path / "extender.log",
    )
    try:
        verify = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

        def healthy() -> bool:
            assert processes.is_alive(record), (tmp_path / "extender.log").read_text()[-3000:]
            return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=verify, timeout=2).status_code == 200

        waiting.wait_for(healthy, timeout=60, what="HTTPS /healthz", ignore=(httpx.HTTPError,))
        body = {"Pod": _requester("r"), "NodeNames": ["n1"]}
        answer = httpx.post(f"https://127.0.0.1:{port}/prioritize", json=body, verify=verify, timeout=5)
        assert answer.json() == [{"Host": "n1", "Score": 3}]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=2)  # not trusted without the CA

        # A scheduler rendered for the HTTPS extender (tlsConfig.caFile) really calls it.
        config = scheduler_config.render(
            f"https://127.0.0.1:{port}",
            kubeconfig=str(devcluster.state_dir / "scheduler.kubeconfig"),
            leader_election=False,
            ca_file=str(tmp_path / "ca.crt"),
        )
        config["profiles"] = [{"schedulerName": "fma-scheduler-tls"}]
        scheduler = placement_stack.spawn_scheduler(devcluster, tmp_path, "fma-scheduler-tls", config)
        try:
            _configs(api, fresh_namespace)
            _create(api, fresh_namespace, _requester("requester", scheduler="fma-scheduler-tls"))
            assert _scheduled_node(api, fresh_namespace, "requester")
            metrics_text = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=verify, timeout=5).text
            assert 'fma_extender_nodes_scored_total{verb="filter"}' in metrics_text
        finally:
            processes.stop(scheduler, grace_seconds=5)
    finally:
        processes.stop(record, grace_seconds=5)
