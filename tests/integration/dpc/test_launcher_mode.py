"""Dual-pods controller, launcher mode: one scenario per test, asserting the Pod metadata contract."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devcluster import waiting
from kube import resources

from .conftest import ENGINE_OPTIONS, ISC_PORT, Harness

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
    # The requester side (docs/protocol.md, "Annotations" and "Labels").
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
    # The launcher publishes its inventory on its own Pod (docs/launcher.md,
    # "Publishing the inventory on the launcher Pod").
    inventory = waiting.wait_for(
        lambda: json.loads(
            harness.get(lmeta["name"])["metadata"]["annotations"].get(P + "instances", "null") or "null"
        ),
        timeout=10,
        what="the launcher's inventory annotation",
    )
    assert inventory["v"] == 1
    assert [(i["id"], i["isc"], i["port"], i["status"], i["gpus"]) for i in inventory["instances"]] == [
        (instance_id, "isc1", ISC_PORT, "running", [gpus])
    ]
    assert inventory["instances"][0]["configKey"] == vllm["annotations"]["config-key"]
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


def _gone(harness: Harness, app: str) -> bool:
    return not harness.pods(f"app={app}")


def test_two_iscs_share_one_launcher_and_switching_back_wakes_the_sleeper(harness: Harness) -> None:
    harness.launcher_config(max_instances=2)
    harness.isc("isc1")
    harness.isc("isc2", port=ISC_PORT + 1)
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    first_instance = first["metadata"]["labels"][P + "instance"]
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone")

    harness.deployment("r2", "isc2", node=node)
    second = harness.ready_requester("r2")
    assert second["metadata"]["labels"][P + "dual"] == launcher_name, "the launcher with room is reused (warm)"
    instances = harness.launcher_instances(harness.get(launcher_name))["instances"]
    assert len(instances) == 2
    assert len(harness.launchers()) == 1
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="warm", isc_name="isc2") == 1,
        timeout=10,
        what="a warm actuation for isc2",
    )

    harness.scale("r2", 0)
    waiting.wait_for(lambda: _gone(harness, "r2"), timeout=60, what="r2 gone")
    harness.scale("r1", 1)
    again = harness.ready_requester("r1")
    assert again["metadata"]["labels"][P + "dual"] == launcher_name
    assert again["metadata"]["labels"][P + "instance"] == first_instance
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="hot", isc_name="isc1") == 1,
        timeout=10,
        what="switching back is a hot actuation",
    )


def test_the_per_launcher_cap_reclaims_a_victim(harness: Harness) -> None:
    harness.launcher_config(max_instances=1)
    harness.isc("isc1")
    harness.isc("isc2", port=ISC_PORT + 1)
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    old_instance = first["metadata"]["labels"][P + "instance"]
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone")

    harness.deployment("r2", "isc2", node=node)
    second = harness.ready_requester("r2")
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    ids = [i["instance_id"] for i in harness.launcher_instances(harness.get(launcher_name))["instances"]]
    assert ids == [second["metadata"]["labels"][P + "instance"]]
    assert old_instance not in ids
    waiting.wait_for(
        lambda: (
            harness.metric_count("fma_actuation_seconds_count", path="warm", instancesDeleted="1", isc_name="isc2") == 1
        ),
        timeout=10,
        what="a warm actuation that deleted one instance",
    )


def test_controller_restart_keeps_state_and_the_next_wake_is_hot(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    harness.stop_controller()
    harness.start_controller()
    # The restarted controller recovers the binding from annotations: scale-down still sleeps and unbinds.
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone after the restart")
    launcher = harness.get(launcher_name)
    assert P + "requester" not in launcher["metadata"]["annotations"]
    assert harness.is_sleeping(launcher)
    harness.scale("r1", 1)
    again = harness.ready_requester("r1")
    assert again["metadata"]["labels"][P + "dual"] == launcher_name
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="hot", isc_name="isc1") == 1,
        timeout=10,
        what="a hot actuation after the restart",
    )


def test_an_obsolete_sleeping_instance_is_deleted_after_an_isc_update(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller()
    harness.deployment("r1", "isc1")
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone")
    assert len(harness.launcher_instances(harness.get(launcher_name))["instances"]) == 1
    harness.api.patch(
        resources.INFERENCE_SERVER_CONFIGS,
        "isc1",
        {"spec": {"modelServerConfig": {"options": ENGINE_OPTIONS + " --max-model-len 128"}}},
        harness.namespace,
    )
    waiting.wait_for(
        lambda: harness.launcher_instances(harness.get(launcher_name))["instances"] == [],
        timeout=30,
        what="the obsolete sleeping instance to be deleted",
    )


def test_an_obsolete_awake_instance_is_deleted_on_unbind(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller()
    harness.deployment("r1", "isc1")
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    harness.api.patch(
        resources.INFERENCE_SERVER_CONFIGS,
        "isc1",
        {"spec": {"modelServerConfig": {"options": ENGINE_OPTIONS + " --max-model-len 128"}}},
        harness.namespace,
    )
    # The awake instance is left alone while bound ...
    assert len(harness.launcher_instances(harness.get(launcher_name))["instances"]) == 1
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone")
    # ... and deleted instead of put to sleep at unbind.
    assert harness.launcher_instances(harness.get(launcher_name))["instances"] == []
    assert harness.get(launcher_name)["metadata"]["labels"][P + "sleeping"] == "true"


def test_deleting_an_unbound_launcher_leads_to_a_new_launcher(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller()
    harness.deployment("r1", "isc1")
    first = harness.ready_requester("r1")
    launcher_name = first["metadata"]["labels"][P + "dual"]
    harness.scale("r1", 0)
    waiting.wait_for(lambda: _gone(harness, "r1"), timeout=60, what="r1 gone")
    harness.api.delete(resources.PODS, launcher_name, harness.namespace)
    waiting.wait_for(lambda: not harness.launchers(), timeout=60, what="the launcher gone")
    harness.scale("r1", 1)
    again = harness.ready_requester("r1")
    assert again["metadata"]["labels"][P + "dual"] != launcher_name
    assert len(harness.launchers()) == 1
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="cold", isc_name="isc1") == 2,
        timeout=10,
        what="a second cold actuation",
    )


def test_a_vanished_instance_gets_its_requester_replaced(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller()
    harness.deployment("r1", "isc1")
    first = harness.ready_requester("r1")
    launcher = harness.get(first["metadata"]["labels"][P + "dual"])
    instance_id = first["metadata"]["labels"][P + "instance"]
    # Someone deletes the bound instance behind the controller's back.
    httpx.delete(f"http://{launcher['status']['podIP']}:8001/v2/vllm/instances/{instance_id}", timeout=30)

    def replaced() -> dict[str, Any] | None:
        items = [p for p in harness.requesters("r1") if p["metadata"]["uid"] != first["metadata"]["uid"]]
        return items[0] if items else None

    waiting.wait_for(replaced, timeout=60, what="the ReplicaSet to replace the deleted requester")
    second = harness.ready_requester("r1")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    # The replacement is served by a live instance (its GPU may differ while the old requester terminates).
    bound = harness.get(second["metadata"]["labels"][P + "dual"])
    listing = harness.launcher_instances(bound)["instances"]
    assert second["metadata"]["labels"][P + "instance"] in [i["instance_id"] for i in listing]


def test_a_port_collision_leads_to_a_new_launcher(harness: Harness) -> None:
    harness.launcher_config(max_instances=2)
    harness.isc("isc1")
    harness.isc("isc2", options=ENGINE_OPTIONS.replace("tiny-llm", "other-llm"))  # same port as isc1
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    harness.deployment("r2", "isc2", node=node)
    second = harness.ready_requester("r2")
    l1, l2 = first["metadata"]["labels"][P + "dual"], second["metadata"]["labels"][P + "dual"]
    assert l1 != l2, "the launcher serving port 8005 cannot host a second instance on it"
    assert len(harness.launchers()) == 2
    for name in (l1, l2):
        launcher = harness.get(name)
        assert launcher["metadata"]["annotations"][P + "server-port"] == str(ISC_PORT)
        assert not harness.is_sleeping(launcher), "each instance listens on port 8005 of its own launcher"
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="cold") == 2,
        timeout=10,
        what="two cold actuations",
    )
