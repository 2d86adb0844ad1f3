"""GPU and Pod-address assignment are exclusive per node and stable across restarts."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from devcluster.simnode import errors, fleet, gpu_allocation, loopback_address, node_ledger, pod

GPUS = ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]


def _pod(uid: str, containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> pod.Pod:
    return pod.Pod.model_validate(
        {"metadata": {"name": uid, "uid": uid}, "spec": {"containers": containers, "initContainers": init or []}}
    )


def _gpu(name: str, count: int | str) -> dict[str, Any]:
    return {"name": name, "resources": {"limits": {"nvidia.com/gpu": count}}}


def test_lowest_free_gpus_first_and_none_for_non_gpu_containers() -> None:
    the_pod = _pod("p", [_gpu("a", 2), {"name": "plain"}, _gpu("b", "1")])
    allocation = gpu_allocation.allocate(the_pod, GPUS, {"GPU-a"})
    assert allocation == {"a": ["GPU-b", "GPU-c"], "b": ["GPU-d"]}
    assert gpu_allocation.visible_devices(allocation, "a") == "GPU-b,GPU-c"
    assert gpu_allocation.visible_devices(allocation, "plain") is None


def test_random_strategy_picks_free_gpus_only() -> None:
    the_pod = _pod("p", [_gpu("a", 2)])
    allocation = gpu_allocation.allocate(the_pod, GPUS, {"GPU-b"}, strategy="random", rng=random.Random(7))
    assert len(allocation["a"]) == 2
    assert "GPU-b" not in allocation["a"]


def test_init_containers_reuse_the_pods_gpus() -> None:
    the_pod = _pod("p", [_gpu("app", 1)], init=[_gpu("prep", 2)])
    allocation = gpu_allocation.allocate(the_pod, GPUS, set())
    assert allocation["app"] == ["GPU-a"]
    assert allocation["prep"] == ["GPU-a", "GPU-b"]


def test_insufficient_gpus_is_a_pod_config_error() -> None:
    with pytest.raises(errors.InsufficientGpus, match="needs 3"):
        gpu_allocation.allocate(_pod("p", [_gpu("a", 3)]), GPUS, {"GPU-a", "GPU-b"})


def test_address_keeps_current_and_otherwise_takes_lowest_free() -> None:
    block = (1, 0)
    assert loopback_address.assign(block, None, set()) == "127.1.0.2"
    assert loopback_address.assign(block, "127.1.0.9", {"127.1.0.2"}) == "127.1.0.9"
    assert loopback_address.assign(block, "127.1.0.9", {"127.1.0.9"}) == "127.1.0.2"
    assert loopback_address.assign(block, "127.2.0.9", set()) == "127.1.0.2"
    taken = {f"127.1.0.{h}" for h in range(2, 255)}
    with pytest.raises(errors.PodConfigError, match="no free Pod address"):
        loopback_address.assign(block, None, taken)


def test_ledger_keeps_assignments_apart_and_restores_them() -> None:
    node = fleet.plan(prefix="n", nodes=1, status_only_nodes=0, gpus_per_node=2, gpu_product="X", gpu_memory_mib=1)[0]
    a, b = node.block
    ledger = node_ledger.NodeLedger(node)
    ledger.restore("old", f"127.{a}.{b}.2", {"c": [node.gpu_uuids[0]]})
    ip, gpus = ledger.assign(_pod("new", [_gpu("c", 1)]), None, foreign_ips={f"127.{a}.{b}.3"})
    assert ip == f"127.{a}.{b}.4", "addresses of other simnodes' Pods are avoided too"
    assert gpus == {"c": [node.gpu_uuids[1]]}
    with pytest.raises(errors.InsufficientGpus):
        ledger.assign(_pod("third", [_gpu("c", 1)]), None)
    ledger.release_gpus("old")
    _, gpus = ledger.assign(_pod("third", [_gpu("c", 1)]), None)
    assert gpus == {"c": [node.gpu_uuids[0]]}
    assert ledger.assign(_pod("new", [_gpu("c", 1)]), None) == (f"127.{a}.{b}.4", {"c": [node.gpu_uuids[1]]})


def test_fleet_names_blocks_and_uuids_are_stable_and_unique() -> None:
    plan = fleet.plan(prefix="sim", nodes=300, status_only_nodes=2, gpus_per_node=2, gpu_product="P", gpu_memory_mib=80)
    again = fleet.plan(
        prefix="sim", nodes=300, status_only_nodes=2, gpus_per_node=2, gpu_product="P", gpu_memory_mib=80
    )
    assert plan == again
    assert plan[0].name == "sim-0"
    assert plan[300].name == "sim-so-0"
    a0, b0 = plan[0].block
    assert plan[0].host_ip == f"127.{a0}.{b0}.1"
    assert 1 <= a0 <= 127
    assert plan[257].block[1] == 1
    assert 128 <= plan[300].block[0] <= 254
    assert len({n.block for n in plan}) == len(plan)
    other = fleet.plan(prefix="other", nodes=1, status_only_nodes=0, gpus_per_node=0, gpu_product="P", gpu_memory_mib=1)
    assert other[0].block != plan[0].block, "different prefixes start in different blocks"
    uuids = [u for n in plan for u in n.gpu_uuids]
    assert len(set(uuids)) == len(uuids)
    assert all(u.startswith("GPU-") and len(u) == 40 for u in uuids)
    data = fleet.gpu_map_data(plan[:1])
    assert list(data) == ["sim-0"]
    assert json.loads(data["sim-0"]) == {plan[0].gpu_uuids[0]: 0, plan[0].gpu_uuids[1]: 1}
