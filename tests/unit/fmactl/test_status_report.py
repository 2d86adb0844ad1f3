"""status_report.build on raw objects: who holds each GPU, launchers, ISCs."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from fmactl import status_report

from . import objects as o

I1, I2, I3 = "I" + "1" * 43 + "i", "I" + "2" * 43 + "i", "I" + "3" * 43 + "i"


def _known_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """n1: GPU-a bound (cold), GPU-b holds two sleepers; n2: free; one requester Pending."""
    bound = o.requester("r1-a", gpus="GPU-a", ready=True, dual="lc-1", instance=I1)
    pending = o.requester("r2-b", isc="isc2", node=None, unschedulable="0/2 nodes are available")
    lc1 = o.launcher(
        "lc-1",
        bound_to=bound,
        instance_id=I1,
        sleeping="false",
        instances=[o.instance(I1, "GPU-a"), o.instance(I2, "GPU-b", isc="isc2")],
        dpc_write_seconds_ago=30,
    )
    lc2 = o.launcher("lc-2", instances=[o.instance(I3, "GPU-b")], dpc_write_seconds_ago=600)
    events = [
        o.event(bound, "ActuatedCold", "cold actuation in 4.25s"),
        o.event(bound, "ActuatedHot", "hot actuation in 0.50s", uid="uid-old-r1"),  # a predecessor's Event
    ]
    return [bound, pending, lc1, lc2], events


def _gpu(report: status_report.StatusReport, node: str, uuid: str) -> status_report.GpuStatus:
    found = next(n for n in report.nodes if n.name == node)
    return next(g for g in found.gpus if g.uuid == uuid)


def test_a_bound_pair_holds_its_gpu_with_model_and_path() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events))
    gpu = _gpu(report, "n1", "GPU-a")
    assert gpu.state == "bound"
    assert gpu.index == 0
    assert gpu.holder == status_report.BoundHolder(
        requester="r1-a", provider="lc-1", instance_id=I1, isc="isc1", model="tiny", path="cold", ready=True
    )
    assert gpu.sleepers == []


def test_sleepers_come_from_inventories_with_their_isc_and_sleep_age() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events))
    gpu = _gpu(report, "n1", "GPU-b")
    assert gpu.state == "sleeping"
    assert gpu.holder is None
    assert [(s.provider, s.instance_id, s.isc, s.model) for s in gpu.sleepers] == [
        ("lc-1", I2, "isc2", "small"),
        ("lc-2", I3, "isc1", "tiny"),
    ]
    # A bound launcher's other sleepers have no known sleep time; an unbound one's is its unbind.
    assert gpu.sleepers[0].asleep_seconds is None
    assert gpu.sleepers[1].asleep_seconds == 600
    assert gpu.sleepers[1].asleep_since == o.NOW - datetime.timedelta(seconds=600)


def test_free_gpus_and_launcher_counts() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events))
    assert [(g.uuid, g.state) for g in report.nodes[1].gpus] == [("GPU-c", "free"), ("GPU-d", "free")]
    launchers = {item.name: item for item in report.nodes[0].launchers}
    assert launchers["lc-1"].bound_to == "r1-a"
    assert (launchers["lc-1"].instances, launchers["lc-1"].running, launchers["lc-1"].asleep) == (2, 2, 1)
    assert (launchers["lc-2"].bound_to, launchers["lc-2"].instances, launchers["lc-2"].asleep) == ("", 1, 1)
    assert report.nodes[1].launchers == []


def test_iscs_count_ready_pending_and_paths_of_live_requesters() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events))
    iscs = {i.name: i for i in report.iscs}
    assert (iscs["isc1"].ready, iscs["isc1"].pending, iscs["isc1"].paths.cold, iscs["isc1"].paths.hot) == (1, 0, 1, 0)
    assert (iscs["isc2"].ready, iscs["isc2"].pending, iscs["isc2"].model) == (0, 1, "small")
    # Every Actuated* Event counts in the namespace total, the predecessor's too.
    assert (report.actuations.hot, report.actuations.warm, report.actuations.cold) == (1, 0, 1)


def test_node_filter_keeps_one_node() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events), node="n2")
    assert [n.name for n in report.nodes] == ["n2"]


def test_a_scheduled_unbound_requester_has_its_gpu_assigned() -> None:
    waiting = o.requester("r3-c", gpus="GPU-c")
    report = status_report.build(o.snap([waiting]))
    gpu = _gpu(report, "n1", "GPU-c")
    assert gpu.state == "assigned"
    assert gpu.holder is not None
    assert (gpu.holder.requester, gpu.holder.provider) == ("r3-c", "")


def test_an_unbound_direct_provider_labelled_asleep_is_a_sleeper() -> None:
    provider = {
        "metadata": {
            "name": "dp-1",
            "uid": "uid-dp",
            "annotations": {o.P + "nominal": "hash", o.P + "accelerators": "GPU-d"},
            "labels": {o.P + "sleeping": "true"},
            "managedFields": [{"manager": "dual-pods-controller", "operation": "Update", "time": o.stamp(90)}],
        },
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "n2"}},
    }
    report = status_report.build(o.snap([provider]))
    gpu = _gpu(report, "n2", "GPU-d")
    assert gpu.state == "sleeping"
    assert [(s.provider, s.instance_id, s.asleep_seconds) for s in gpu.sleepers] == [("dp-1", "", 90)]


@pytest.mark.parametrize(
    "value",
    [pytest.param("{not json", id="not-json"), pytest.param('{"v":2,"revision":0,"instances":[]}', id="wrong-version")],
)
def test_a_malformed_inventory_is_read_as_unknown_not_fatal(value: str) -> None:
    lc = o.launcher("lc-x")
    lc["metadata"]["annotations"][o.P + "instances"] = value
    report = status_report.build(o.snap([lc]))
    (item,) = report.nodes[0].launchers
    assert (item.name, item.instances) == ("lc-x", 0)


def test_gpus_without_a_gpu_map_come_from_the_pods() -> None:
    pods, events = _known_state()
    report = status_report.build(o.snap(pods, events, gpu_map={}))
    assert [(g.uuid, g.index, g.state) for g in report.nodes[0].gpus] == [
        ("GPU-a", None, "bound"),
        ("GPU-b", None, "sleeping"),
    ]
    assert report.nodes[0].gpu_capacity == 2
