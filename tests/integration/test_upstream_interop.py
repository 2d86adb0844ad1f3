"""Drop-in compatibility with upstream FMA deployments, on the development cluster (docs/upstream.md).

1. A launcher Pod built the way upstream's dual-pods controller builds it
   runs our launcher and engine simulator: the ``state-change-reflector``
   sidecar runs upstream's command, ``python3 /app/launcher_pod_notifier.py``
   (the file of our launcher image, mounted at ``/app`` from a ConfigMap
   because dev-cluster Pods run on the host's file system), with upstream's
   ``POD_NAME``/``NAMESPACE``; the launcher container has neither.  The Pod
   becomes Ready and stays Ready, and a crashed instance shows in
   ``vllm-instance-signature`` within 1 s (our in-process publisher finds its
   Pod from its service-account token).  A second Pod, whose launcher cannot
   publish in-process, shows that the sidecar alone does the job, within its
   2 s poll.

   ``LAUNCHER_BASE_URL``: upstream sets ``http://127.0.0.1:8001``, which
   works in a real cluster because each Pod has its own network namespace
   and our launcher listens on ``0.0.0.0`` by default.  Dev-cluster Pods
   share the host's network namespace, each with its own loopback address
   (127.x.y.z), so ``127.0.0.1:8001`` is not private to one Pod: the
   launcher binds its Pod IP and the sidecar is given
   ``http://$(POD_IP):8001``.  The loopback form is shown by the component
   test ``tests/component/launcher/test_pod_notifier_loopback.py``.

2. The LauncherConfig CRD embeds the apiserver's own PodSpec schema: the
   committed source equals what this apiserver serves, and a misspelled
   template field is pruned with a warning (or, under strict field
   validation, rejected), and a mistyped one rejected, as upstream's CRD
   does.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crds import kinds, manifests, pod_template_schema
from devcluster import control_plane, processes, waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode

pytestmark = pytest.mark.cluster

SIGNATURE = "dual-pods.llm-d.ai/vllm-instance-signature"
INSTANCES = "dual-pods.llm-d.ai/instances"
BASE = "/v2/vllm/instances"
NOTIFIER_FILE = pathlib.Path(__file__).resolve().parents[2] / "images" / "launcher" / "app" / "launcher_pod_notifier.py"
CRASH_LIMIT_SECONDS = 1.0
SIDECAR_LIMIT_SECONDS = 2.0 + 1.5  # one poll interval plus the patch round trips on a busy 2-core machine


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client(timeout=30) as client:
        yield client


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, f"{response.status_code}: {response.text[:2000]}"
    return dict(response.json())


# -- the launcher Pod, as upstream's controller builds it --------------------------------------------------------


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _upstream_launcher_pod(name: str, log_dir: pathlib.Path, publish_in_process: bool = True) -> dict[str, Any]:
    """What upstream's controller creates from a LauncherConfig that sets no downward-API env on the launcher."""
    args = ["--engine", "sim", "--host", "$(POD_IP)", "--no-nvml", "--mock-gpus", "--mock-gpu-count", "4"]
    args += ["--log-dir", str(log_dir), "--stop-grace-seconds", "3"]
    launcher_env = [
        _field_env("POD_IP", "status.podIP"),  # dev cluster only: the launcher binds its Pod IP (see above)
        {"name": "PYTHONPATH", "value": "/app"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
        {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
    ]
    if not publish_in_process:
        launcher_env.append({"name": "KUBERNETES_SERVICE_HOST", "value": ""})  # no in-cluster credentials
    probe = {"httpGet": {"port": 8001}}
    launcher = {
        "name": "inference-server",
        "image": "our/launcher",
        "command": ["fma-launcher"],
        "args": args,
        "env": launcher_env,
        "livenessProbe": {
            **probe,
            "httpGet": {"path": "/health", "port": 8001},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
            "timeoutSeconds": 1,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": BASE, "port": 8001},
            "initialDelaySeconds": 2,
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }
    notifier = {
        "name": "state-change-reflector",
        "image": "our/launcher",
        "command": ["python3", "/app/launcher_pod_notifier.py"],
        "env": [
            _field_env("POD_IP", "status.podIP"),  # dev cluster only, for the next line
            {"name": "LAUNCHER_BASE_URL", "value": "http://$(POD_IP):8001"},  # upstream: http://127.0.0.1:8001
            _field_env("POD_NAME", "metadata.name"),
            _field_env("NAMESPACE", "metadata.namespace"),
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [{"name": "launcher-app", "mountPath": "/app", "readOnly": True}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "launcher"}},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [launcher, notifier],
            "volumes": [{"name": "launcher-app", "configMap": {"name": "launcher-app"}}],
        },
    }


def _prepare_namespace(api: httpx.Client, namespace: str) -> None:
    """Upstream's RBAC for launcher Pods (pods get and patch) and our image's ``/app`` as a ConfigMap."""
    role = {
        "metadata": {"name": "launcher"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
    }
    _ok(api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", json=role))
    binding = {
        "metadata": {"name": "launcher"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "launcher"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
    _ok(api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding))
    app = {"metadata": {"name": "launcher-app"}, "data": {"launcher_pod_notifier.py": NOTIFIER_FILE.read_text()}}
    _ok(api.post(f"/api/v1/namespaces/{namespace}/configmaps", json=app))


def _pod(api: httpx.Client, namespace: str, name: str) -> dict[str, Any]:
    return _ok(api.get(f"/api/v1/namespaces/{namespace}/pods/{name}"))


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
    return conditions.get("Ready") == "True"


def _container_statuses(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}


def _annotations(api: httpx.Client, namespace: str, name: str) -> dict[str, str]:
    return dict(_pod(api, namespace, name)["metadata"].get("annotations") or {})


def _instance_pid(launcher: httpx.Client, instance_id: str) -> int | None:
    for line in launcher.get(f"{BASE}/{instance_id}/log").content.splitlines():
        record = json.loads(line)
        if record.get("msg") == "engine simulator starting":
            return int(record["pid"])
    return None


def _start_instance(launcher: httpx.Client, pod_ip: str) -> int:
    """Create one simulated instance at the Pod IP; returns its main PID once it is healthy."""
    port = processes.free_port(host=pod_ip)
    options = f"--model sim-model --port {port} --sim-startup-seconds 0 --sim-model-gib 0"
    body = {"options": options, "gpu_uuids": ["GPU-1"], "annotations": {"isc-name": "isc", "inference-port": str(port)}}
    created = launcher.put(f"{BASE}/inst-a", json=body)
    assert created.status_code == 201, created.text
    with httpx.Client(base_url=f"http://{pod_ip}:{port}", timeout=5) as engine:
        waiting.wait_for(
            lambda: engine.get("/health").status_code == 200,
            timeout=30,
            what="the instance to serve",
            ignore=(httpx.TransportError,),
        )
    pid = waiting.wait_for(lambda: _instance_pid(launcher, "inst-a"), timeout=20, what="the instance PID")
    assert pid is not None
    assert pid > 1
    return pid


def _run_upstream_style_launcher(
    api: httpx.Client, simnode: RunningSimnode, namespace: str, name: str, log_dir: pathlib.Path, in_process: bool
) -> tuple[str, float]:
    """Create the Pod, wait until Ready, crash an instance; returns the Pod IP and the crash-to-signature seconds."""
    _ok(api.post(f"/api/v1/namespaces/{namespace}/pods", json=_upstream_launcher_pod(name, log_dir, in_process)))
    waiting.wait_for(
        lambda: _ready(_pod(api, namespace, name)),
        timeout=90,
        what=f"the launcher Pod {name} to become Ready",
    )
    pod_ip = _pod(api, namespace, name)["status"]["podIP"]
    with httpx.Client(base_url=f"http://{pod_ip}:8001", timeout=10) as launcher:
        pid = _start_instance(launcher, pod_ip)
        running = waiting.wait_for(
            lambda: _annotations(api, namespace, name).get(SIGNATURE),
            timeout=10,
            interval=0.05,
            what="a signature for the running instance",
        )
        waiting.wait_for(
            lambda: '"status":"running"' in _annotations(api, namespace, name).get(INSTANCES, ""),
            timeout=10,
            interval=0.05,
            what="the running instance in the inventory",
        )
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        waiting.wait_for(
            lambda: _annotations(api, namespace, name).get(SIGNATURE) not in (None, running),
            timeout=15,
            interval=0.02,
            what="the signature to change after the crash",
        )
        elapsed = time.monotonic() - started
        assert launcher.get(f"{BASE}/inst-a").json()["status"] == "stopped"
    notes = _annotations(api, namespace, name)
    assert '"status":"stopped"' in notes[INSTANCES], notes
    return pod_ip, elapsed


def test_an_upstream_built_launcher_pod_is_ready_and_reflects_a_crash_within_a_second(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    _prepare_namespace(api, ns)
    _, elapsed = _run_upstream_style_launcher(api, simnode, ns, "launcher", tmp_path, in_process=True)
    print(f"crash to vllm-instance-signature: {elapsed:.3f} s")
    launcher_log = simnode.log_of(ns, "launcher", "inference-server")
    assert "found this Pod's identity" in launcher_log, launcher_log[-2000:]
    assert '"name_source": "token"' in launcher_log or '"name_source":"token"' in launcher_log, launcher_log[-2000:]
    assert elapsed < CRASH_LIMIT_SECONDS, f"the crash reached the Pod after {elapsed:.3f} s"

    # "Stays Ready": across three of the sidecar's 2 s polls, the Pod stays Ready and the sidecar never restarts.
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        pod = _pod(api, ns, "launcher")
        assert _ready(pod), pod.get("status")
        sidecar = _container_statuses(pod)["state-change-reflector"]
        assert sidecar["restartCount"] == 0
        assert "running" in sidecar["state"], sidecar
        time.sleep(0.5)  # noqa: sleep-ok - sampling an interval in which nothing may change
    sidecar_log = simnode.log_of(ns, "launcher", "state-change-reflector")
    assert "notifier started" in sidecar_log, sidecar_log[-2000:]


def test_the_sidecar_alone_publishes_when_the_launcher_cannot(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    _prepare_namespace(api, ns)
    _, elapsed = _run_upstream_style_launcher(api, simnode, ns, "launcher", tmp_path, in_process=False)
    print(f"crash to vllm-instance-signature, sidecar only: {elapsed:.3f} s")
    launcher_log = simnode.log_of(ns, "launcher", "inference-server")
    assert "not publishing the inventory" in launcher_log, launcher_log[-2000:]
    assert "instances published on the Pod" in simnode.log_of(ns, "launcher", "state-change-reflector")
    assert elapsed < SIDECAR_LIMIT_SECONDS, f"the sidecar wrote the crash after {elapsed:.3f} s"
    pod = _pod(api, ns, "launcher")
    assert _ready(pod)
    assert _container_statuses(pod)["state-change-reflector"]["restartCount"] == 0


# -- the LauncherConfig CRD --------------------------------------------------------------------------------------


def _established(api: httpx.Client, name: str) -> bool:
    response = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    if response.status_code != 200:
        return False
    conditions = {c["type"]: c["status"] for c in (response.json().get("status") or {}).get("conditions") or []}
    return conditions.get("Established") == "True"


@pytest.fixture(scope="module")
def installed_crds(devcluster: control_plane.ClusterState) -> None:
    """The generated CRDs, server-side applied and Established (idempotent; shared with other modules)."""
    with devcluster.http_client(timeout=60) as api:
        for document in manifests.documents():
            name = document["metadata"]["name"]
            response = api.patch(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                params={"fieldManager": "fma-tests", "force": "true"},
                content=json.dumps(document),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            _ok(response)
        for kind in kinds.ALL:
            waiting.wait_for(functools.partial(_established, api, kind.crd_name), timeout=60, what=kind.crd_name)


def _lc(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {"name": name},
        "spec": {"maxInstances": 2, "podTemplate": {"spec": {"containers": [container]}}},
    }


def _lc_path(namespace: str) -> str:
    return f"/apis/fma.llm-d.ai/v1alpha1/namespaces/{namespace}/launcherconfigs"


def test_the_committed_pod_spec_source_is_what_this_apiserver_serves(api: httpx.Client) -> None:
    version = _ok(api.get("/version"))["gitVersion"]
    document = _ok(api.get("/openapi/v3/api/v1"))
    live = pod_template_schema.trim(document, pod_template_schema.source_label(version))
    assert live == pod_template_schema.load_source(), "run 'python -m crds openapi' and 'python -m crds generate'"


def test_a_misspelled_template_field_is_pruned_with_a_warning_or_rejected_when_strict(
    api: httpx.Client, installed_crds: None
) -> None:
    namespace = f"interop-{uuid.uuid4().hex[:8]}"
    _ok(api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}))
    try:
        container = {"name": "inference-server", "image": "img", "imagePullPolcy": "Always"}
        created = api.post(_lc_path(namespace), json=_lc("typo", container))
        assert created.status_code == 201, created.text
        warning = created.headers.get("warning", "")
        assert "unknown field" in warning, warning
        assert "spec.podTemplate.spec.containers[0].imagePullPolcy" in warning, warning
        stored = created.json()["spec"]["podTemplate"]["spec"]["containers"][0]
        assert stored == {"name": "inference-server", "image": "img"}, "the misspelled field is pruned"

        strict = api.post(_lc_path(namespace), params={"fieldValidation": "Strict"}, json=_lc("strict", container))
        assert strict.status_code in (400, 422), strict.text
        assert "imagePullPolcy" in strict.text
        assert api.get(f"{_lc_path(namespace)}/strict").status_code == 404

        mistyped = {"name": "inference-server", "image": "img", "ports": [{"containerPort": "eight thousand"}]}
        rejected = api.post(_lc_path(namespace), json=_lc("mistyped", mistyped))
        assert rejected.status_code == 422, rejected.text
        assert "spec.podTemplate.spec.containers[0].ports[0].containerPort" in rejected.text

        unnamed = api.post(_lc_path(namespace), json=_lc("unnamed", {"image": "img"}))
        assert unnamed.status_code == 422, unnamed.text
        assert "spec.podTemplate.spec.containers[0].name" in unnamed.text

        quantities = {
            "name": "inference-server",
            "image": "img",
            "resources": {"limits": {"cpu": 2, "memory": "8Gi", "nvidia.com/gpu": "0"}},
            "ports": [{"containerPort": 8001}],
        }
        good = api.post(_lc_path(namespace), json=_lc("good", quantities))
        assert good.status_code == 201, good.text
        kept = good.json()["spec"]["podTemplate"]["spec"]["containers"][0]
        assert kept["resources"]["limits"] == {"cpu": 2, "memory": "8Gi", "nvidia.com/gpu": "0"}
        assert kept["ports"] == [{"containerPort": 8001, "protocol": "TCP"}], "defaulted as the Pod API does"
        bad_quantity = {"name": "inference-server", "image": "img", "resources": {"limits": {"cpu": "two"}}}
        refused = api.post(_lc_path(namespace), json=_lc("bad-quantity", bad_quantity))
        assert refused.status_code == 422, refused.text
        assert "spec.podTemplate.spec.containers[0].resources.limits.cpu" in refused.text
    finally:
        api.delete(f"/api/v1/namespaces/{namespace}")
