"""simnode as a DRA driver: slices, the DeviceClass, and claims prepared for the container.

The real kube-scheduler's DRA plugin allocates each claim (``firstAvailable``
alternatives included); simnode, as kubelet and driver plugin, exposes the
allocated GPUs as ``NVIDIA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import httpx
import pytest

from crds import gpu_claims, quantity
from devcluster import waiting
from devcluster.simnode import fleet, runtime_record
from devcluster.simnode.pytest_fixtures import RunningSimnode
from tests.integration.dra.conftest import ok

pytestmark = pytest.mark.cluster


def _claim(ns: str, name: str, plan: gpu_claims.ClaimPlan) -> dict[str, Any]:
    return gpu_claims.claim_body(name, ns, plan, owner=None)


def _pod(name: str, claim: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "resourceClaims": [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": claim}],
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": ["python", "-c", "import time; time.sleep(600)"],  # noqa: sleep-ok -- the container's workload, not a wait
                    "resources": {"claims": [{"name": gpu_claims.POD_CLAIM_NAME}]},
                }
            ],
        },
    }


def _visible_devices(state_dir: pathlib.Path, uid: str) -> str:
    record = runtime_record.load(state_dir, uid)
    assert record is not None
    process = record.containers["main"].process
    assert process is not None
    raw = pathlib.Path(f"/proc/{process.pid}/environ").read_bytes()
    pairs = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    return pairs.get("NVIDIA_VISIBLE_DEVICES", "")


def _running(api: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    pod = ok(api.get(f"/api/v1/namespaces/{ns}/pods/{name}"))
    return pod if (pod.get("status") or {}).get("phase") == "Running" else None


def test_slice_and_device_class_describe_the_gpus(api: httpx.Client, dra_simnode: RunningSimnode) -> None:
    node = dra_simnode.node_names[0]
    found = ok(api.get(f"/apis/{gpu_claims.API_VERSION}/resourceslices/{node}-{gpu_claims.DRIVER_DEFAULT}"))
    assert found["spec"]["driver"] == gpu_claims.DRIVER_DEFAULT
    assert found["spec"]["nodeName"] == node
    devices = found["spec"]["devices"]
    assert [d["name"] for d in devices] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    assert [d["attributes"]["uuid"]["string"] for d in devices] == [fleet.gpu_uuid(node, i) for i in range(4)]
    assert [d["attributes"]["index"]["int"] for d in devices] == [0, 1, 2, 3]
    assert devices[0]["attributes"]["productName"]["string"] == dra_simnode.options.gpu_product
    memory = quantity.parse(devices[0]["capacity"]["memory"]["value"])
    assert memory == dra_simnode.options.gpu_memory_mib * 2**20
    device_class = ok(api.get(f"/apis/{gpu_claims.API_VERSION}/deviceclasses/{gpu_claims.DEVICE_CLASS_DEFAULT}"))
    assert gpu_claims.DRIVER_DEFAULT in device_class["spec"]["selectors"][0]["cel"]["expression"]
    # A DRA-only node offers no device-plugin GPUs.
    allocatable = ok(api.get(f"/api/v1/nodes/{node}"))["status"]["allocatable"]
    assert fleet.GPU_RESOURCE not in allocatable


def test_first_available_prefers_the_named_gpu_and_falls_back(
    api: httpx.Client, dra_simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    node = dra_simnode.node_names[0]
    gpu2 = fleet.gpu_uuid(node, 2)
    plan = gpu_claims.ClaimPlan(count=1, preferred=(gpu2,), preferredNode=node)
    for name in ("first", "second"):
        ok(api.post(gpu_claims.claim_path(ns), json=_claim(ns, name, plan)))
    ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_pod("first", "first", node)))
    first = waiting.wait_for(lambda: _running(api, ns, "first"), timeout=60, what="first Pod Running")
    claim = ok(api.get(gpu_claims.claim_path(ns, "first")))
    [device] = gpu_claims.allocated_devices(claim)
    assert (device.subrequest, device.device, device.pool) == ("sleeper", "gpu-2", node)
    assert _visible_devices(dra_simnode.state_dir, first["metadata"]["uid"]) == gpu2

    # The same preference again: gpu-2 is taken, the claim gets another GPU.
    ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_pod("second", "second", node)))
    second = waiting.wait_for(lambda: _running(api, ns, "second"), timeout=60, what="second Pod Running")
    [other] = gpu_claims.allocated_devices(ok(api.get(gpu_claims.claim_path(ns, "second"))))
    assert other.subrequest == "any"
    assert other.device != "gpu-2"
    visible = _visible_devices(dra_simnode.state_dir, second["metadata"]["uid"])
    assert visible.startswith("GPU-")
    assert visible != gpu2


def test_unsatisfiable_claim_leaves_the_pod_pending_with_the_reason(
    api: httpx.Client, dra_simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    node = dra_simnode.node_names[0]
    ok(api.post(gpu_claims.claim_path(ns), json=_claim(ns, "big", gpu_claims.ClaimPlan(count=5))))
    ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_pod("big", "big", node)))

    def unschedulable() -> str | None:
        pod = ok(api.get(f"/api/v1/namespaces/{ns}/pods/big"))
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition["type"] == "PodScheduled" and condition["status"] == "False" and condition.get("message"):
                return str(condition["message"])
        return None

    message = waiting.wait_for(unschedulable, timeout=60, what="the scheduler's reason on the Pod")
    assert "claim" in message.lower() or "device" in message.lower(), message
    assert ok(api.get(f"/api/v1/namespaces/{ns}/pods/big"))["status"]["phase"] == "Pending"
