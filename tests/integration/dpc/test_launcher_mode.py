"""Dual-pods controller, launcher mode: one scenario per test, asserting the Pod metadata contract."""

from __future__ import annotations

import json

import pytest

from devcluster import waiting

from .conftest import ISC_PORT, Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def test_basic_creation_binds_both_ways_and_relays_readiness(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1", labels={"model": "tiny"})
    harness.start_controller()
    harness.deployment("r1", "isc1")
    requester = harness.ready_requester("r1")

    launchers = harness.launchers()
    assert len(launchers) == 1
    launcher = launchers[0]
    rmeta, lmeta = requester["metadata"], launcher["metadata"]
    instance_id = lmeta["annotations"][P + "instance-id"]
    gpus = rmeta["annotations"][P + "accelerators"]
    # The requester side (§2).
    assert rmeta["labels"][P + "dual"] == lmeta["name"]
    assert rmeta["labels"][P + "instance"] == instance_id
    assert gpus.startswith("GPU-")
    assert "," not in gpus
    assert rmeta["annotations"][P + "status"] == '{"Errors":null}'
    assert P + "requester" in rmeta["finalizers"]
    # The launcher side: binding record, commitment, routing labels once awake.
    assert lmeta["annotations"][P + "requester"] == f"{rmeta['uid']} {rmeta['name']}"
    assert lmeta["labels"][P + "dual"] == rmeta["name"]
    assert lmeta["labels"][P + "sleeping"] == "false"
    assert lmeta["labels"][P + "launcher-config-name"] == "lc"
    assert lmeta["labels"]["app.kubernetes.io/component"] == "launcher"
    assert lmeta["labels"]["model"] == "tiny"
    assert lmeta["annotations"][P + "server-port"] == str(ISC_PORT)
    assert json.loads(lmeta["annotations"][P + "isc-routing-metadata"]) == {"labels": {"model": "tiny"}}
    vllm = json.loads(lmeta["annotations"][P + "vllm-config"])
    assert vllm["options"].endswith(f" --port {ISC_PORT}")
    assert vllm["gpu_uuids"] == [gpus]
    assert vllm["annotations"]["isc-name"] == "isc1"
    assert vllm["annotations"]["inference-port"] == str(ISC_PORT)
    assert vllm["annotations"]["config-key"].startswith("C")
    assert P + "provider" in lmeta["finalizers"]
    assert instance_id.startswith("I")
    assert instance_id.endswith("i")
    assert len(instance_id) == 45
    # The instance really runs, awake, on the requester's GPU.
    listing = harness.launcher_instances(launcher)
    assert [i["instance_id"] for i in listing["instances"]] == [instance_id]
    assert listing["instances"][0]["status"] == "running"
    assert not harness.is_sleeping(launcher)
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="cold", isc_name="isc1") == 1,
        timeout=10,
        what="one cold actuation observed",
    )


def test_scale_down_sleeps_and_scale_up_wakes_the_same_instance(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1", labels={"model": "tiny"})
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]

    harness.scale("r1", 0)
    waiting.wait_for(lambda: not harness.pods("app=r1"), timeout=60, what="the requester to be gone")
    launcher = harness.get(launcher_name)
    meta = launcher["metadata"]
    assert P + "requester" not in meta["annotations"]
    for key in ("instance-id", "server-port", "vllm-config", "isc-routing-metadata"):
        assert P + key not in meta["annotations"]
    assert P + "dual" not in meta["labels"]
    assert "model" not in meta["labels"], "routing labels are removed before sleep"
    assert meta["labels"][P + "sleeping"] == "true"
    assert P + "provider" not in (meta.get("finalizers") or [])
    assert harness.is_sleeping(launcher)

    harness.scale("r1", 1)
    second = harness.ready_requester("r1")
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    assert second["metadata"]["labels"][P + "instance"] == instance_id
    assert [i["instance_id"] for i in harness.launcher_instances(harness.get(launcher_name))["instances"]] == [
        instance_id
    ]
    assert len(harness.launchers()) == 1
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="hot", isc_name="isc1") == 1,
        timeout=10,
        what="one hot actuation observed",
    )
