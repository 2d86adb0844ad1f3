"""The launcher's in-process publisher, with the launcher run as a Pod on simnode.

See docs/launcher.md, "Publishing the inventory on the launcher Pod".

Creating, the engine answering its health check (``ready``), crashing and
deleting an instance each updates the launcher Pod's
``vllm-instance-signature`` and ``dual-pods.llm-d.ai/instances`` annotations
within 1 s, with exactly the content docs/protocol.md, "Annotations", gives.
Each latency is measured from just before the action (for the delete: from its answer, which the launcher
sends only once the instance's processes are gone) to the first read of the
Pod that shows the new content; the reads poll every 20 ms, so each figure
is an upper bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import control_plane, processes, waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode

pytestmark = pytest.mark.cluster

SIGNATURE = "dual-pods.llm-d.ai/vllm-instance-signature"
INSTANCES = "dual-pods.llm-d.ai/instances"
LATENCY_LIMIT_SECONDS = 1.0
BASE = "/v2/vllm/instances"


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return dict(response.json())


def _allow_pod_patches(api: httpx.Client, namespace: str) -> None:
    """The RBAC of upstream's notifier: the namespace's default ServiceAccount may get and patch Pods."""
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


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _launcher_pod(log_dir: pathlib.Path) -> dict[str, Any]:
    args = ["--engine", "sim", "--host", "$(POD_IP)", "--no-nvml", "--mock-gpus", "--mock-gpu-count", "4"]
    args += ["--log-dir", str(log_dir), "--stop-grace-seconds", "3"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "launcher"},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {
                    "name": "inference-server",
                    "image": "fma/launcher",
                    "command": ["fma-launcher"],
                    "args": args,
                    "env": [
                        _field_env("POD_NAME", "metadata.name"),
                        _field_env("NAMESPACE", "metadata.namespace"),
                        _field_env("POD_IP", "status.podIP"),
                    ],
                }
            ],
        },
    }


def _signature(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted([list(p) for p in pairs]), separators=(",", ":")).encode()).hexdigest()


def _expected(revision: int, instances: list[dict[str, Any]]) -> dict[str, str]:
    """Both annotations exactly as docs/protocol.md, "Annotations", spells them."""
    inventory = json.dumps({"v": 1, "revision": revision, "instances": instances}, separators=(",", ":"))
    return {SIGNATURE: _signature([(i["id"], i["status"]) for i in instances]), INSTANCES: inventory}


def _published(api: httpx.Client, namespace: str) -> dict[str, str]:
    notes = _ok(api.get(f"/api/v1/namespaces/{namespace}/pods/launcher"))["metadata"].get("annotations") or {}
    return {k: v for k, v in notes.items() if k in (SIGNATURE, INSTANCES)}


def _seconds_until_published(
    api: httpx.Client, namespace: str, since: float, expected: dict[str, str] | list[dict[str, str]], what: str
) -> float:
    accepted = expected if isinstance(expected, list) else [expected]
    waiting.wait_for(lambda: _published(api, namespace) in accepted, timeout=10, interval=0.02, what=what)
    return time.monotonic() - since


def _pod_ip(api: httpx.Client, namespace: str) -> str | None:
    status = _ok(api.get(f"/api/v1/namespaces/{namespace}/pods/launcher")).get("status") or {}
    return status.get("podIP") if status.get("phase") == "Running" else None


def _instance_pid(launcher: httpx.Client, instance_id: str) -> int | None:
    for line in launcher.get(f"{BASE}/{instance_id}/log").content.splitlines():
        record = json.loads(line)
        if record.get("msg") == "engine simulator starting":
            return int(record["pid"])
    return None


def test_instance_events_reach_the_pod_annotations_within_a_second(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    _allow_pod_patches(api, ns)
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_launcher_pod(tmp_path)))
    pod_ip = waiting.wait_for(lambda: _pod_ip(api, ns), timeout=60, what="the launcher Pod to run")
    assert pod_ip is not None
    with httpx.Client(base_url=f"http://{pod_ip}:8001", timeout=10) as launcher:
        waiting.wait_for(
            lambda: _published(api, ns) == _expected(0, []),
            timeout=30,
            interval=0.02,
            what="the first publication at start-up",
        )
        # It is made once the server listens (the controller calls the launcher on it): no retry needed.
        assert launcher.get(BASE).status_code == 200
        latencies: dict[str, float] = {}

        port = processes.free_port(host=pod_ip)
        options = f"--model sim-model --port {port} --sim-startup-seconds 0 --sim-model-gib 0"
        body = {
            "options": options,
            "gpu_uuids": ["GPU-2", "GPU-0"],
            "annotations": {"isc-name": "isc-a", "inference-port": str(port), "config-key": "Cabc"},
        }
        entry = {"id": "inst-a", "isc": "isc-a", "configKey": "Cabc", "gpus": ["GPU-2", "GPU-0"], "port": port}
        started = time.monotonic()
        assert launcher.put(f"{BASE}/inst-a", json=body).status_code == 201
        ready = _expected(1, [{**entry, "status": "running", "ready": True}])
        latencies["create"] = _seconds_until_published(
            # The engine starts at once, so its readiness may already be in the first write (coalesced).
            api,
            ns,
            started,
            [_expected(1, [{**entry, "status": "running"}]), ready],
            "the CREATED inventory",
        )

        with httpx.Client(base_url=f"http://{pod_ip}:{port}", timeout=5) as engine:  # bound to the Pod IP
            waiting.wait_for(
                lambda: engine.get("/health").status_code == 200,
                timeout=30,
                what="the instance to become healthy at the Pod IP",
                ignore=(httpx.TransportError,),
            )
        started = time.monotonic()
        latencies["ready"] = _seconds_until_published(api, ns, started, ready, "the engine's readiness")
        pid = waiting.wait_for(lambda: _instance_pid(launcher, "inst-a"), timeout=20, what="the instance PID")
        assert pid is not None
        assert pid > 1
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        latencies["crash"] = _seconds_until_published(
            api, ns, started, _expected(2, [{**entry, "status": "stopped"}]), "the STOPPED inventory"
        )
        assert launcher.get(f"{BASE}/inst-a").json()["exit_code"] == -signal.SIGKILL

        assert launcher.delete(f"{BASE}/inst-a").status_code == 200
        started = time.monotonic()
        latencies["delete"] = _seconds_until_published(api, ns, started, _expected(3, []), "the DELETED inventory")

    print(f"publisher latencies (s): {json.dumps({k: round(v, 3) for k, v in latencies.items()})}")
    slow = {k: v for k, v in latencies.items() if v >= LATENCY_LIMIT_SECONDS}
    log = simnode.log_of(ns, "launcher")[-3000:]
    assert not slow, f"annotations updated later than {LATENCY_LIMIT_SECONDS}s: {slow}; launcher log: {log}"
