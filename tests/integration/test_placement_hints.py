"""``placement: hints`` on the development cluster: the stock kube-scheduler, no extender.

A requester created through the real webhook (``placement: hints``) gets a
node-affinity hint naming the node where its sleeper waits, and a stock
kube-scheduler whose profile only weights ``NodeAffinity``
(``extender.scheduler_config.render(placement="hints")``, no extender
configured) puts it there; the real dual-pods controller then wakes the
sleeper (a hot actuation).  The sleeper's node also holds the launcher Pod,
so the default scoring alone (least allocated) would, if anything, prefer the
other node.

Nodes: the session's simnode, 2 nodes x 2 GPUs, handing out the lowest free
GPU first (``gpu-allocation: lowest-index``).
"""

from __future__ import annotations

from typing import Any

import pytest

from devcluster import waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode
from kube import resources

from . import placement_stack
from .placement_stack import DEPLOYMENTS, P, Stack

pytestmark = pytest.mark.cluster

SCHEDULER = "fma-hints-scheduler"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


stack_opener = placement_stack.stack_opener


@pytest.fixture
def stack(simnode: RunningSimnode, stack_opener: placement_stack.StackOpener) -> Stack:
    """The webhook (``placement: hints``), the stock scheduler with the hints profile, the controllers."""
    return stack_opener.open(
        Stack,
        name="fma-hints-test",
        gpu_map_namespace=str(simnode.options.gpu_map_namespace),
        webhook_settings={"scheduler_name": SCHEDULER, "placement": "hints", "gpu_allocation": "lowest-index"},
        scheduler=SCHEDULER,
    )


def _hinted_nodes(pod: dict[str, Any]) -> dict[str, int]:
    affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(PREFERRED) or []
    found: dict[str, int] = {}
    for term in affinity:
        for field in term["preference"].get("matchFields") or []:
            for node in field["values"]:
                found[node] = term["weight"]
    return found


def test_a_requester_lands_on_its_sleepers_node_and_wakes_it_hot(stack: Stack) -> None:
    stack.api.create(DEPLOYMENTS, placement_stack.user_deployment("r1"), stack.namespace)
    first = stack.ready_requester("r1")
    assert first["spec"]["schedulerName"] == SCHEDULER
    assert _hinted_nodes(first) == {}, "nothing sleeps yet: no preference"
    node = first["spec"]["nodeName"]
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]

    stack.scale("r1", 0)

    def requester_gone() -> bool:
        items, _ = stack.api.list_all(resources.PODS, stack.namespace, label_selector="app=r1")
        return not items

    waiting.wait_for(requester_gone, timeout=60, what="the requester deleted (finalizer released)")

    stack.wait_sleeping(launcher_name, node)

    stack.scale("r1", 1)
    second = stack.ready_requester("r1")
    assert _hinted_nodes(second) == {node: 10}, "a certain-hot hint for the sleeper's node, and only that"
    assert second["spec"]["nodeName"] == node
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    assert second["metadata"]["labels"][P + "instance"] == instance_id
    waiting.wait_for(lambda: stack.actuations("hot") == 1, timeout=15, what="one hot actuation")
    text = stack.webhook_metrics.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="hinted"} 1.0' in text
