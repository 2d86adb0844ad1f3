"""simnode's DRA side: the slice it publishes and the claims it prepares (pure parts)."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.simnode import dra_driver, dra_prepare, errors, fleet, node_ledger, options, pod


def _node(mode: str = "dra") -> fleet.NodeIdentity:
    [node] = fleet.plan(
        prefix="t", nodes=1, status_only_nodes=0, gpus_per_node=3, gpu_product="P", gpu_memory_mib=1024, gpu_mode=mode
    )
    return node


def test_modes_decide_capacity_and_slice() -> None:
    assert fleet.GPU_RESOURCE not in _node("dra").allocatable
    assert _node("both").allocatable[fleet.GPU_RESOURCE] == "3"
    assert _node("both").dra
    assert not _node("device-plugin").dra
    body = dra_driver.slice_body(_node(), "uid-9")
    assert [d["name"] for d in body["spec"]["devices"]] == ["gpu-0", "gpu-1", "gpu-2"]
    assert body["spec"]["pool"] == {"name": "t-0", "generation": 1, "resourceSliceCount": 1}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-9"
    assert options.parse(options.to_argv("/k", options.SimnodeOptions(gpu_mode="both")))[1].gpu_mode == "both"


def _pod(uid: str = "u1") -> pod.Pod:
    return pod.Pod.model_validate(
        {
            "metadata": {"name": "p", "namespace": "ns", "uid": uid},
            "spec": {
                "resourceClaims": [{"name": "fma-gpus", "resourceClaimName": "c"}],
                "containers": [
                    {"name": "a", "resources": {"claims": [{"name": "fma-gpus"}]}},
                    {"name": "b"},
                ],
            },
        }
    )


def _claim(pool: str, device: str, reserved: str = "u1") -> dict[str, Any]:
    return {
        "status": {
            "reservedFor": [{"resource": "pods", "name": "p", "uid": reserved}],
            "allocation": {
                "devices": {
                    "results": [{"request": "gpus/any", "driver": "gpu.nvidia.com", "pool": pool, "device": device}]
                }
            },
        }
    }


def test_allocated_devices_reach_the_containers_that_list_the_claim() -> None:
    node = _node()
    got = dra_prepare.devices_for(_pod(), {"fma-gpus": _claim("t-0", "gpu-1")}, node, "gpu.nvidia.com")
    assert got == {"a": [node.gpu_uuids[1]]}
    with pytest.raises(errors.PodConfigError, match="not reserved"):
        dra_prepare.devices_for(_pod("u2"), {"fma-gpus": _claim("t-0", "gpu-1")}, node, "gpu.nvidia.com")
    with pytest.raises(errors.PodConfigError, match="not a GPU of"):
        dra_prepare.devices_for(_pod(), {"fma-gpus": _claim("other", "gpu-1")}, node, "gpu.nvidia.com")


def test_a_claimed_gpu_held_by_another_pod_is_refused_on_a_both_node() -> None:
    node = _node("both")
    ledger = node_ledger.NodeLedger(node)
    plugin_pod = pod.Pod.model_validate(
        {
            "metadata": {"name": "d", "namespace": "ns", "uid": "u0"},
            "spec": {"containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        }
    )
    _, held = ledger.assign(plugin_pod, None)
    assert held == {"a": [node.gpu_uuids[0]]}
    with pytest.raises(errors.InsufficientGpus, match="held by another Pod"):
        ledger.assign(_pod(), None, claimed={"a": [node.gpu_uuids[0]]})
    _, got = ledger.assign(_pod(), None, claimed={"a": [node.gpu_uuids[1]]})
    assert got == {"a": [node.gpu_uuids[1]]}
