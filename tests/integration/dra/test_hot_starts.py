"""DRA mode end to end: the real webhook gives each requester a claim, the real scheduler allocates it.

The DRA node has 4 GPUs.  A holder Pod takes GPUs 0-1 so that the first
requester's instance lands on GPU 2; once the holder is gone, GPUs 0-1 are
free and a device plugin handing out the lowest index would give the next
requester GPU 0 (a warm start).  With the claim's ``firstAvailable``
alternatives the requester gets the sleeper's GPU 2 every time: hot.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from crds import gpu_claims
from devcluster import waiting
from devcluster.simnode import fleet
from fmactl import cli as fmactl_cli
from kube import resources

from ..placement_stack import P
from .conftest import Stack

pytestmark = pytest.mark.cluster


def _holder(stack: Stack, name: str, plan: gpu_claims.ClaimPlan) -> None:
    """A plain Pod (not FMA's) holding GPUs of the DRA node through a claim of its own."""
    stack.api.create(
        resources.custom("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim"),
        gpu_claims.claim_body(name, stack.namespace, plan, owner=None),
        stack.namespace,
    )
    pod = {
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": {"kubernetes.io/hostname": stack.dra_node},
            "resourceClaims": [{"name": "gpus", "resourceClaimName": name}],
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": ["python", "-c", "import time; time.sleep(600)"],  # noqa: sleep-ok -- the container's workload, not a wait
                    "resources": {"claims": [{"name": "gpus"}]},
                }
            ],
        },
    }
    stack.api.create(resources.PODS, pod, stack.namespace)

    def running() -> bool:
        return stack.api.get(resources.PODS, name, stack.namespace).get("status", {}).get("phase") == "Running"

    waiting.wait_for(running, timeout=60, what=f"holder {name} Running")


def _devices(stack: Stack, pod: dict[str, Any]) -> list[tuple[str | None, str]]:
    claim = stack.claim_of(pod)
    assert claim is not None
    return [(d.subrequest, d.device) for d in gpu_claims.allocated_devices(claim)]


def test_scale_up_wakes_the_sleeper_on_gpu_2_every_time(stack: Stack) -> None:
    _holder(stack, "holder", gpu_claims.ClaimPlan(count=2))
    stack.deploy("r1", node=stack.dra_node)
    first = stack.ready_requester("r1")
    assert "nvidia.com/gpu" not in str(first["spec"]["containers"][0]["resources"])
    assert _devices(stack, first) == [("any", "gpu-2")]
    launcher = first["metadata"]["labels"][P + "dual"]
    instance = first["metadata"]["labels"][P + "instance"]
    claim_owner = (stack.claim_of(first) or {})["metadata"]["ownerReferences"][0]
    assert (claim_owner["kind"], claim_owner["uid"]) == ("Pod", first["metadata"]["uid"])

    stack.api.delete(resources.PODS, "holder", stack.namespace, grace_period_seconds=0)
    waiting.wait_for(
        lambda: stack.api.get_or_none(resources.PODS, "holder", stack.namespace) is None,
        timeout=60,
        what="the holder gone (GPUs 0-1 free)",
    )
    for round_number in range(1, 4):
        stack.scale_to_zero_and_sleep("r1", launcher)
        stack.scale("r1", 1)
        again = stack.ready_requester("r1")
        plan = gpu_claims.plan_of(again)
        assert plan is not None
        assert plan.preferred_node == stack.dra_node
        assert _devices(stack, again) == [("sleeper", "gpu-2")], f"round {round_number}"
        assert again["metadata"]["labels"][P + "dual"] == launcher
        assert again["metadata"]["labels"][P + "instance"] == instance
        waiting.wait_for(
            lambda n=round_number: stack.actuations("hot") == n, timeout=15, what=f"{round_number} hot actuations"
        )
    assert stack.actuations("warm") == 0


def test_taken_sleeper_gpu_falls_back_to_another_gpu_warm(stack: Stack) -> None:
    stack.deploy("r1", node=stack.dra_node)
    first = stack.ready_requester("r1")
    [(_, device)] = _devices(stack, first)
    launcher = first["metadata"]["labels"][P + "dual"]
    stack.scale_to_zero_and_sleep("r1", launcher)
    # Something outside FMA takes the sleeper's GPU (the webhook cannot know: the claim still prefers it).
    index = gpu_claims.device_index(device)
    assert index is not None
    _holder(stack, "taker", gpu_claims.ClaimPlan(count=1, preferred=(fleet.gpu_uuid(stack.dra_node, index),)))
    stack.scale("r1", 1)
    again = stack.ready_requester("r1")
    plan = gpu_claims.plan_of(again)
    assert plan is not None
    assert plan.preferred == (fleet.gpu_uuid(stack.dra_node, index),)
    [(sub, other)] = _devices(stack, again)
    assert sub == "any"
    assert other != device
    assert again["metadata"]["labels"][P + "dual"] == launcher
    waiting.wait_for(lambda: stack.actuations("warm") == 1, timeout=15, what="one warm actuation")
    assert stack.actuations("hot") == 0


def test_mixed_cluster_device_plugin_and_dra_requesters(stack: Stack) -> None:
    stack.deploy("dra", node=stack.dra_node)
    stack.deploy("plugin", node=stack.plugin_node, gpu_request="device-plugin")
    dra = stack.ready_requester("dra")
    plugin = stack.ready_requester("plugin")
    assert gpu_claims.claim_name_of(dra) is not None
    assert gpu_claims.claim_name_of(plugin) is None
    assert plugin["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert dra["spec"]["nodeName"] == stack.dra_node
    assert plugin["spec"]["nodeName"] == stack.plugin_node
    for pod in (dra, plugin):
        assert pod["metadata"]["annotations"].get(P + "accelerators", "").startswith("GPU-")


def test_a_deleted_claim_replaces_the_requester(stack: Stack) -> None:
    stack.deploy("r1", node=stack.dra_node)
    first = stack.ready_requester("r1")
    name = gpu_claims.claim_name_of(first)
    assert name is not None
    stack.api.delete(
        resources.custom("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim"), name, stack.namespace
    )

    def replaced() -> dict[str, Any] | None:
        items = stack.pods("app=r1")
        fresh = [p for p in items if p["metadata"]["uid"] != first["metadata"]["uid"]]
        return fresh[0] if fresh else None

    waiting.wait_for(replaced, timeout=60, what="a new requester")
    second = stack.ready_requester("r1")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert gpu_claims.claim_name_of(second) != name
    assert _devices(stack, second)


def test_an_unsatisfiable_claim_leaves_the_requester_pending_with_the_reason(stack: Stack) -> None:
    stack.deploy("big", node=stack.dra_node, gpus=5)

    def reason() -> str | None:
        for pod in stack.pods("app=big"):
            for condition in (pod.get("status") or {}).get("conditions") or []:
                if condition["type"] == "PodScheduled" and condition["status"] == "False" and condition.get("message"):
                    return str(condition["message"])
        return None

    message = waiting.wait_for(reason, timeout=60, what="the scheduler's reason on the requester")
    [pod] = stack.pods("app=big")
    assert pod["status"]["phase"] == "Pending"
    assert "cannot allocate all claims" in message, message
    # kubectl fma explain tells the same story, in the scheduler's words.
    out = io.StringIO()
    argv = ["--kubeconfig", str(stack.kubeconfig), "-n", stack.namespace, "--gpu-map-namespace", "default"]
    assert fmactl_cli.main([*argv, "explain", pod["metadata"]["name"]], out=out, err=io.StringIO()) == 0
    assert " ".join(message.split()) in " ".join(out.getvalue().split()), out.getvalue()
