"""``placement: hints`` with ``nominate`` on the development cluster: the stock kube-scheduler, no extender.

The real webhook (in-process, hints read from a real sleeper cache) gates a
requester whose best node is certain-hot (``dual-pods.llm-d.ai/nominate``)
and records that node; the real ``fma-controllers`` process (its nominator)
sets ``status.nominatedNodeName`` and lifts the gate; the stock
kube-scheduler with the ``hints`` profile tries the nominated node first.

* a requester lands on its sleeper's node through the nomination and is
  actuated hot;
* a gated requester created while the controllers are down stays gated, and
  is ungated once they start; when its nominated node has been filled in the
  meantime, it schedules on the other node (a nomination never blocks).

Nodes: the session's simnode, 2 nodes x 2 GPUs, lowest free GPU first.
A watch records every ``status.nominatedNodeName`` the requesters show, since
kube-scheduler may clear it once the Pod is bound.
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
from kube import resources

from . import placement_stack
from .placement_stack import DEPLOYMENTS, P

pytestmark = pytest.mark.cluster

SCHEDULER = "fma-nominate-scheduler"
IDLE = ["python", "-c", "import time; time.sleep(3600)"]  # noqa: sleep-ok - a Pod's idle command, not a wait


@dataclasses.dataclass
class Stack(placement_stack.Stack):
    nominated: dict[str, set[str]]
    """Pod name -> every ``status.nominatedNodeName`` seen on it."""

    def sleeper(self, app: str) -> tuple[str, str]:
        """Run a requester of ``app`` once and scale it away: its instance sleeps on (node, launcher), and the
        webhook's cache sees the sleeper's GPU free."""
        self.api.create(DEPLOYMENTS, placement_stack.user_deployment(app), self.namespace)
        first = self.ready_requester(app)
        assert P + "nominate" not in _gates(first), "nothing sleeps yet: no gate"
        assert keys.NOMINATED_NODE_ANNOTATION not in first["metadata"].get("annotations", {})
        node = first["spec"]["nodeName"]
        launcher_name = first["metadata"]["labels"][P + "dual"]
        self.scale(app, 0)
        waiting.wait_for(lambda: not self.pods(f"app={app}"), timeout=60, what="the requester deleted")
        self.wait_sleeping(launcher_name, node)
        return node, launcher_name


def _gates(pod: Mapping[str, Any]) -> list[str]:
    return [g["name"] for g in (pod.get("spec") or {}).get("schedulingGates") or []]


stack_opener = placement_stack.stack_opener


@pytest.fixture
def stack(simnode: RunningSimnode, stack_opener: placement_stack.StackOpener) -> Stack:
    """The webhook (``placement: hints``, ``nominate``), the stock scheduler with the hints profile; the
    controllers are started by the tests."""
    # Every nominatedNodeName the requesters show (the scheduler may clear it after binding).
    nominated: dict[str, set[str]] = {}
    lock = threading.Lock()

    def record(key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        value = ((new or {}).get("status") or {}).get("nominatedNodeName")
        if new is not None and value:
            with lock:
                nominated.setdefault(new["metadata"]["name"], set()).add(value)

    built = stack_opener.open(
        Stack,
        name="fma-nominate-test",
        gpu_map_namespace=str(simnode.options.gpu_map_namespace),
        webhook_settings={
            "scheduler_name": SCHEDULER,
            "placement": "hints",
            "nominate": "gate",
            "gpu_allocation": "lowest-index",
        },
        scheduler=SCHEDULER,
        start_controllers=False,
        extra={"nominated": nominated},
    )
    stack_opener.watch_pods(built, record)
    return built


def test_a_nominated_requester_lands_on_its_sleepers_node_and_wakes_hot(stack: Stack) -> None:
    stack.start_controllers()
    node, launcher_name = stack.sleeper("r1")

    stack.scale("r1", 1)
    second = stack.ready_requester("r1")
    name = second["metadata"]["name"]
    assert second["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert _gates(second) == [], "the gate is lifted"
    assert stack.nominated.get(name) == {node}, "the controllers nominated the sleeper's node"
    assert second["spec"]["nodeName"] == node
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    waiting.wait_for(
        lambda: stack.controller_metric("fma_actuation_seconds_count", 'path="hot"') == 1,
        timeout=15,
        what="one hot actuation",
    )
    assert stack.controller_metric("fma_nominations_total", 'outcome="nominated"') == 1
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="nominated"} 1.0' in text


def test_a_gated_requester_waits_for_the_controllers_and_never_blocks_on_a_full_node(
    stack: Stack, simnode: RunningSimnode
) -> None:
    stack.start_controllers()
    node, _ = stack.sleeper("r1")
    (other,) = [n for n in simnode.node_names if n != node]
    stack.stop_controllers()

    stack.scale("r1", 1)
    gated = waiting.wait_for(lambda: stack.one_pod("r1"), timeout=30, what="the requester created")
    assert _gates(gated) == [P + "nominate"]
    assert gated["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert not gated["spec"].get("nodeName")

    # While the controllers are down, the nominated node fills up (a Pod bound there directly, both GPUs).
    filler = {
        "metadata": {"name": "filler"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "ignored", "command": IDLE, "resources": {"limits": {"nvidia.com/gpu": "2"}}}
            ],
        },
    }
    stack.api.create(resources.PODS, filler, stack.namespace)
    waiting.wait_for(
        lambda: (
            (stack.api.get(resources.PODS, "filler", stack.namespace).get("status") or {}).get("phase") == "Running"
        ),
        timeout=60,
        what="the filler Running on the nominated node",
    )
    still = stack.one_pod("r1")
    assert still is not None
    assert _gates(still) == [P + "nominate"], "no controllers: still gated"

    stack.start_controllers()
    placed = stack.ready_requester("r1")
    assert placed["metadata"]["name"] == gated["metadata"]["name"]
    assert _gates(placed) == []
    assert node in stack.nominated.get(placed["metadata"]["name"], set()), "nominated to the full node"
    assert placed["spec"]["nodeName"] == other, "and scheduled elsewhere"
    assert stack.controller_metric("fma_nominations_total", 'outcome="nominated"') == 1
