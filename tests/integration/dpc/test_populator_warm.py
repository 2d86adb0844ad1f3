"""The populator and the dual-pods controller together: a waiting launcher makes the first start warm."""

from __future__ import annotations

import pytest

from devcluster import waiting
from kube import resources

from .conftest import Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def test_a_requester_on_a_node_with_a_waiting_launcher_takes_the_warm_path(harness: Harness) -> None:
    node = harness.simnode.node_names[0]
    harness.launcher_config()
    harness.isc("isc1")
    harness.create(
        resources.LAUNCHER_POPULATION_POLICIES,
        {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "LauncherPopulationPolicy",
            "metadata": {"name": "one-per-node"},
            "spec": {
                "enhancedNodeSelector": {"labelSelector": {"matchLabels": {"kubernetes.io/hostname": node}}},
                "countForLauncher": [{"launcherConfigName": "lc", "launcherCount": 1}],
            },
        },
    )
    harness.start_controller("--enable-populator", "true")

    def waiting_launcher() -> dict | None:
        items = [
            p
            for p in harness.launchers()
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in p["status"].get("conditions") or [])
        ]
        return items[0] if len(items) == 1 else None

    launcher = waiting.wait_for(waiting_launcher, timeout=90, what="one Ready unbound launcher from the populator")
    assert P + "requester" not in (launcher["metadata"].get("annotations") or {})
    assert launcher["metadata"]["labels"][P + "node-name"] == node

    harness.deployment("r1", "isc1", node=node)
    requester = harness.ready_requester("r1")
    assert requester["metadata"]["labels"][P + "dual"] == launcher["metadata"]["name"]
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="warm", isc_name="isc1") == 1,
        timeout=10,
        what="a warm actuation",
    )
    assert harness.metric_count("fma_actuation_seconds_count", path="cold") == 0
    # The bound launcher counts toward the policy: the populator adds none while it is bound.
    assert len(harness.launchers()) == 1
    assert harness.metric_count("fma_launcher_pod_count", lcfg_name="lc", phase="bound") == 1
