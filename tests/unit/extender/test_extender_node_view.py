"""Node views built from raw objects as the watch delivers them."""

from __future__ import annotations

import json
from typing import Any

from crds import keys, sleeper_view

NODE = {
    "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "gpu": "a100"}},
    "status": {"allocatable": {"nvidia.com/gpu": "4", "cpu": "16"}},
}
GPU_MAP = json.dumps({"GPU-c": 2, "GPU-a": 0, "GPU-b": 1, "GPU-d": 3})


def _pod(
    name: str,
    *,
    gpus: int = 0,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    node: str | None = "n1",
    selector: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "team", "annotations": annotations or {}, "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}}]
    }
    if node:
        spec["nodeName"] = node
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def _inventory(*instances: dict[str, Any]) -> str:
    return json.dumps({"v": 1, "revision": 3, "instances": list(instances)})


def _launcher_labels(lc: str = "lc") -> dict[str, str]:
    return {keys.LAUNCHER_CONFIG_NAME_LABEL: lc, keys.NODE_NAME_LABEL: "n1", keys.COMPONENT_LABEL: "launcher"}


def test_gpu_map_order_and_capacity() -> None:
    view = sleeper_view.build("n1", NODE, [], GPU_MAP)
    assert view.gpus == ("GPU-a", "GPU-b", "GPU-c", "GPU-d")
    assert view.gpu_capacity == 4
    assert view.free_count == 4
    assert view.labels["gpu"] == "a100"


def test_held_known_and_unknown_and_finished_pods() -> None:
    pods = [
        _pod("r1", gpus=1, annotations={keys.ACCELERATORS_ANNOTATION: "GPU-b"}),
        _pod("plain", gpus=2),
        _pod("done", gpus=1, phase="Succeeded"),
        _pod("cpu-only"),
        _pod("wrong-count", gpus=1, annotations={keys.ACCELERATORS_ANNOTATION: "GPU-a,GPU-c"}),
    ]
    view = sleeper_view.build("n1", NODE, pods, GPU_MAP)
    assert view.held == frozenset({"GPU-b"})
    assert view.unknown_held == 3
    assert view.free_count == 0
    assert view.free_uuids == frozenset({"GPU-a", "GPU-c", "GPU-d"})


def test_unbound_launcher_instances_are_sleepers_bound_ones_are_left_out() -> None:
    idle = _pod(
        "launcher-1",
        node=None,
        selector={sleeper_view.HOSTNAME_LABEL: "n1"},
        labels=_launcher_labels(),
        annotations={
            keys.INSTANCES_ANNOTATION: _inventory(
                {"id": "I1i", "configKey": "Cac", "gpus": ["GPU-a"], "port": 8005, "status": "running"},
                {"id": "I2i", "configKey": "Cbc", "gpus": ["GPU-b"], "port": 8006, "status": "stopped"},
            )
        },
    )
    bound = _pod(
        "launcher-2",
        labels=_launcher_labels(),
        annotations={
            keys.REQUESTER_ANNOTATION: "uid-1 r1",
            keys.INSTANCES_ANNOTATION: _inventory(
                {"id": "I3i", "configKey": "Cac", "gpus": ["GPU-c"], "port": 8005, "status": "running"}
            ),
        },
    )
    stuck = _pod("launcher-3", labels=_launcher_labels() | {keys.LAUNCHER_STUCK_LABEL: "true"})
    going = _pod("launcher-4", labels=_launcher_labels(), deleting=True)
    garbage = _pod("launcher-5", labels=_launcher_labels(), annotations={keys.INSTANCES_ANNOTATION: "{not json"})
    view = sleeper_view.build("n1", NODE, [idle, bound, stuck, going, garbage], GPU_MAP)
    assert [launcher.name for launcher in view.launchers] == ["launcher-1", "launcher-5"]
    assert view.launchers[1].instances == ()
    sleepers = view.sleepers()
    assert [(s.config_key, s.gpus, s.provider) for s in sleepers] == [("Cac", frozenset({"GPU-a"}), "team/launcher-1")]
    assert sleeper_view.node_of_pod(idle) == "n1"


def test_direct_sleepers_need_sleeping_label_config_key_and_no_binding() -> None:
    base = {keys.NOMINAL_ANNOTATION: "h", keys.ACCELERATORS_ANNOTATION: "GPU-d", keys.CONFIG_KEY_ANNOTATION: "Cdc"}
    asleep = _pod("p1", annotations=base, labels={keys.SLEEPING_LABEL: "true"})
    awake = _pod("p2", annotations=base, labels={keys.SLEEPING_LABEL: "false"})
    bound = _pod("p3", annotations=base | {keys.REQUESTER_ANNOTATION: "u r"}, labels={keys.SLEEPING_LABEL: "true"})
    keyless = _pod(
        "p4",
        annotations={keys.NOMINAL_ANNOTATION: "h", keys.ACCELERATORS_ANNOTATION: "GPU-d"},
        labels={keys.SLEEPING_LABEL: "true"},
    )
    view = sleeper_view.build("n1", NODE, [asleep, awake, bound, keyless], GPU_MAP)
    assert [s.provider for s in view.direct_sleepers] == ["team/p1"]
    # Providers request no GPUs, so none of them holds one.
    assert view.held == frozenset()
    assert view.unknown_held == 0


def test_gpu_request_counts_like_the_scheduler() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
            {"resources": {"requests": {"nvidia.com/gpu": 2}}},
        ],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}],
    }
    assert sleeper_view.gpu_request(spec) == 4
    assert sleeper_view.gpu_request({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "bad"}}}]}) == 0


def test_unknown_node_object_and_bad_gpu_map() -> None:
    view = sleeper_view.build("ghost", None, [], "not json")
    assert (view.gpu_capacity, view.gpus) == (0, ())
    assert sleeper_view.parse_gpu_map_entry('["GPU-a"]') == ()


def test_interests_match_what_build_counts() -> None:
    inventory = _inventory(
        {"id": "I1i", "configKey": "Cac", "gpus": ["GPU-a"], "port": 8005, "status": "running"},
        {"id": "I2i", "configKey": "Cbc", "gpus": ["GPU-b"], "port": 8006, "status": "stopped"},
    )
    idle = _pod("l1", labels=_launcher_labels(), annotations={keys.INSTANCES_ANNOTATION: inventory})
    assert sleeper_view.interests(idle) == ["key/team/Cac", "lc/team/lc"]
    bound = _pod("l2", labels=_launcher_labels(), annotations={keys.REQUESTER_ANNOTATION: "u r"})
    assert sleeper_view.interests(bound) == []
    finished = _pod("l3", labels=_launcher_labels(), phase="Failed")
    assert sleeper_view.interests(finished) == []
    direct = _pod(
        "p1",
        annotations={
            keys.NOMINAL_ANNOTATION: "h",
            keys.ACCELERATORS_ANNOTATION: "GPU-d",
            keys.CONFIG_KEY_ANNOTATION: "Cdc",
        },
        labels={keys.SLEEPING_LABEL: "true"},
    )
    assert sleeper_view.interests(direct) == ["key/team/Cdc", "direct/team/"]
    assert sleeper_view.interests(_pod("plain", gpus=1)) == []


def test_a_malformed_inventory_is_a_launcher_without_instances() -> None:
    bad = ["{not json", json.dumps({"v": 1, "instances": "x"}), json.dumps([1, 2]), ""]
    for value in bad:
        pod = _pod("l1", annotations={keys.INSTANCES_ANNOTATION: value}, labels=_launcher_labels())
        assert sleeper_view.inventory_malformed(pod)
        view = sleeper_view.build("n1", NODE, [pod], GPU_MAP)
        assert [(item.name, item.instances) for item in view.launchers] == [("l1", ())]
        assert view.sleepers() == []
        assert sleeper_view.interests(pod) == ["lc/team/lc"]
    good = _pod("l2", annotations={keys.INSTANCES_ANNOTATION: _inventory()}, labels=_launcher_labels())
    assert not sleeper_view.inventory_malformed(good)
    assert not sleeper_view.inventory_malformed(_pod("plain", annotations={keys.INSTANCES_ANNOTATION: "{"}))
    assert not sleeper_view.inventory_malformed(_pod("l3", labels=_launcher_labels()))
