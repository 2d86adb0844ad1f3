"""``placement: hints`` with ``nominate: plugin`` on the development cluster: FMA's kube-scheduler build.

The real webhook (in-process, hints read from a real sleeper cache) writes,
for a requester whose best node is certain-hot, that node into
``dual-pods.llm-d.ai/nominated-node`` and no scheduling gate; FMA's
kube-scheduler build (``binaries.ensure_fma_scheduler``) with the ``hints``
profile and the NominatedNode plugin enabled restricts the Pod's first
attempt to that node; the real ``fma-controllers`` process wakes the sleeper.
No status write, no nominator: the controllers' nominator never sees a gate.

* a requester with no sleeper anywhere gets neither annotation nor gate and
  is scheduled (a cold start);
* a requester whose sleeper waits on node X carries the annotation X and no
  gate, lands on X and wakes that sleeper (hot, the same instance).

Nodes: the session's simnode, 2 nodes x 2 GPUs, lowest free GPU first.
A watch records every gate the requesters show, so a gate added and lifted
between two reads would still be seen.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from crds import keys
from devcluster import waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode

from . import placement_stack
from .placement_stack import DEPLOYMENTS, P

pytestmark = pytest.mark.cluster

SCHEDULER = "fma-plugin-webhook-scheduler"


@dataclasses.dataclass
class Stack(placement_stack.Stack):
    gated: set[str]
    """Names of the Pods ever seen with a scheduling gate."""


def _gates(pod: Mapping[str, Any]) -> list[str]:
    return [g["name"] for g in (pod.get("spec") or {}).get("schedulingGates") or []]


stack_opener = placement_stack.stack_opener


@pytest.fixture
def stack(simnode: RunningSimnode, stack_opener: placement_stack.StackOpener) -> Stack:
    """The webhook (``placement: hints``, ``nominate: plugin``), FMA's kube-scheduler build with the hints
    profile and the plugin, the controllers."""
    gated: set[str] = set()
    lock = threading.Lock()

    def record(key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if new is not None and _gates(new):
            with lock:
                gated.add(new["metadata"]["name"])

    built = stack_opener.open(
        Stack,
        name="fma-plugin-webhook-test",
        gpu_map_namespace=str(simnode.options.gpu_map_namespace),
        webhook_settings={
            "scheduler_name": SCHEDULER,
            "placement": "hints",
            "nominate": "plugin",
            "gpu_allocation": "lowest-index",
        },
        scheduler=SCHEDULER,
        scheduler_plugin=True,
        extra={"gated": gated},
    )
    stack_opener.watch_pods(built, record)
    return built


def _first_requester(stack: Stack, app: str) -> dict[str, Any]:
    """Create ``app``'s Deployment while nothing sleeps; its requester, once Ready, with what the webhook and
    the scheduler did to it checked."""
    stack.api.create(DEPLOYMENTS, placement_stack.user_deployment(app), stack.namespace)
    first = stack.ready_requester(app)
    assert first["spec"]["schedulerName"] == SCHEDULER
    assert keys.NOMINATED_NODE_ANNOTATION not in first["metadata"].get("annotations", {}), "nothing to nominate"
    assert first["metadata"]["name"] not in stack.gated, "never gated"
    assert first["spec"].get("nodeName"), "scheduled by FMA's build"
    return first


def test_a_requester_with_no_sleeper_gets_no_annotation_and_still_schedules(stack: Stack) -> None:
    first = _first_requester(stack, "r1")
    waiting.wait_for(lambda: stack.actuations("cold") == 1, timeout=15, what="one cold actuation")
    assert stack.actuations("hot") == 0
    assert first["metadata"]["labels"].get(P + "dual"), "bound to a launcher"
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="nominated"}' not in text


def test_a_requester_lands_on_its_sleepers_node_through_the_plugin_and_wakes_hot(stack: Stack) -> None:
    first = _first_requester(stack, "r1")
    node = first["spec"]["nodeName"]
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]
    stack.scale("r1", 0)
    waiting.wait_for(lambda: not stack.pods("app=r1"), timeout=60, what="the requester deleted")
    stack.wait_sleeping(launcher_name, node)

    stack.scale("r1", 1)
    second = stack.ready_requester("r1")
    assert second["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert second["metadata"]["name"] not in stack.gated, "no gate with nominate: plugin"
    assert second["spec"]["nodeName"] == node
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    assert second["metadata"]["labels"][P + "instance"] == instance_id
    waiting.wait_for(lambda: stack.actuations("hot") == 1, timeout=15, what="one hot actuation")
    assert stack.controller_metric("fma_nominations_total", "outcome=") == 0, "the nominator had nothing to do"
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="nominated"} 1.0' in text
