"""``fma_requester_count`` follows the cluster, and a normal actuation raises no Warning.

With the real ``fma-controllers`` (dual-pods controller only): a requester
that no node can take counts for its ISC; moving its ISC annotation moves the
count; a served requester counts too; deleting them all brings every ISC's
count to 0.  The served requester went through the moment between scheduling
and getting a Pod IP, which is a normal start and must not show as an
``ActuationFailed`` Warning.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devcluster import samples, waiting
from kube import resources

from .conftest import Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def _events(harness: Harness, reason: str, pod: str | None = None) -> list[dict[str, Any]]:
    items, _ = harness.api.list_all(resources.EVENTS, harness.namespace)
    return [
        e
        for e in items
        if e.get("reason") == reason and (pod is None or (e.get("involvedObject") or {}).get("name") == pod)
    ]


def test_requester_count_follows_unscheduled_moved_served_and_deleted_requesters(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.isc("isc2")
    harness.start_controller()

    def count(isc: str) -> float:
        return harness.metric_count("fma_requester_count", isc_name=isc)

    def counts_are(isc1: float, isc2: float) -> bool:
        return count("isc1") == isc1 and count("isc2") == isc2

    # A requester no node can take: it is never scheduled, and still counts.
    template = samples.requester_template("isc1", "nowhere")
    template["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "no-such-node"}
    harness.create(
        resources.PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "nowhere", **template["metadata"]},
            "spec": template["spec"],
        },
    )
    waiting.wait_for(lambda: counts_are(1, 0), timeout=30, what="the unscheduled requester counted for isc1")
    assert not harness.get("nowhere")["spec"].get("nodeName")

    # Its ISC annotation changes: the count moves with it.
    harness.api.patch(
        resources.PODS,
        "nowhere",
        {"metadata": {"annotations": {P + "inference-server-config": "isc2"}}},
        harness.namespace,
    )
    waiting.wait_for(lambda: counts_are(0, 1), timeout=30, what="the count moved from isc1 to isc2")

    # A served requester counts too, and its actuation shows no Warning on the way.
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "isc2", node=node)
    served = harness.ready_requester("r1")
    name = served["metadata"]["name"]
    waiting.wait_for(lambda: counts_are(0, 2), timeout=30, what="the served requester counted for isc2")
    actuated = waiting.wait_for(
        lambda: _events(harness, "ActuatedCold", name),
        timeout=30,
        what="the ActuatedCold Event of the served requester",
    )
    assert actuated[0]["type"] == "Normal"
    failures = _events(harness, "ActuationFailed")
    assert failures == [], [e.get("message") for e in failures]

    # Deleting every requester lowers both counts to 0 (the series stay, at 0).
    harness.api.delete(resources.PODS, "nowhere", harness.namespace)
    harness.scale("r1", 0)
    waiting.wait_for(lambda: counts_are(0, 0), timeout=60, what="both counts back to 0")
    waiting.wait_for(lambda: harness.requesters("r1") == [], timeout=60, what="the served requester gone")
    assert _series(harness, "isc1") == 0
    assert _series(harness, "isc2") == 0


def _series(harness: Harness, isc: str) -> float | None:
    """The value of ``fma_requester_count{isc_name=isc}``, or None when the series is not exported."""
    text = httpx.get(f"http://127.0.0.1:{harness.metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'fma_requester_count{{isc_name="{isc}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return None
