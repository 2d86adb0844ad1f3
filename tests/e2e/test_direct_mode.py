"""Group B of docs/e2e.md, "The scenarios": direct mode through the installed chart (B1-B7).

A direct-mode set is a Deployment whose ``inference-server`` container is the
server itself (here the engine simulator) with ``actuation: direct``: the
webhook derives the server patch from it, and the controllers build the
provider from the requester.  The ``provider-of`` label moves to the provider
(``provider-labels``), which is how these tests find a set's providers.

Nodes: B1 takes the second node out of ``gpu-map`` for a while; B2 may land
on the first or second node and deletes that Node (simnode is restarted
afterwards and registers it again); B3-B6 tell one story on the first node;
B7 has the third node to itself, so that its four sets all get the node's
first GPU (the sleeper limit counts sleepers per GPU).  Each test states its
preconditions, bounds each wait, and ends with the common checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import helm_release
from kube import resources

from . import invariants, manifests
from .system import DEPLOYMENTS, E2ESystem, P

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

COLD_S = 120.0  # a new provider Pod started and Ready
HOT_S = 30.0  # a sleeping provider woken
GONE_S = 90.0  # a scaled-down requester unbound, its provider asleep, the Pod removed
NODE_GONE_S = 180.0  # Pods of a deleted Node garbage-collected (the controller manager's pod GC) and replaced
APPS = ("b1", "b2", "b3", "b7a", "b7b", "b7c", "b7d")


@dataclasses.dataclass
class Story:
    """The provider of B3-B6's set, handed from scenario to scenario."""

    provider: str = ""
    gpus: str = ""


@pytest.fixture(scope="module")
def story(e2e: E2ESystem) -> Iterator[Story]:
    """The story's record; afterwards every set and provider of group B is removed."""
    told = Story()
    yield told
    for app in APPS:
        e2e.delete(DEPLOYMENTS, app)
    e2e.delete(resources.PODS, "b5-filler", grace_period_seconds=0)
    for app in APPS:
        e2e.wait_no_requesters(app, timeout=GONE_S)
    for app in APPS:
        for provider in e2e.watch.all_pods({manifests.PROVIDER_OF: app}):
            e2e.delete(resources.PODS, provider["metadata"]["name"])
    e2e.wait(
        lambda: not any(e2e.watch.all_pods({manifests.PROVIDER_OF: app}) for app in APPS),
        timeout=GONE_S,
        what="group B's providers deleted",
    )


def _deployment(e2e: E2ESystem, app: str, model: str, **where: Any) -> None:
    e2e.create(DEPLOYMENTS, manifests.direct_deployment(app, model, run_token=e2e.run_token, **where))


def _providers(e2e: E2ESystem, app: str) -> list[dict[str, Any]]:
    return e2e.watch.live_pods({manifests.PROVIDER_OF: app})


def _asleep(e2e: E2ESystem, provider: dict[str, Any]) -> bool:
    return e2e.engine_sleeping(provider["status"]["podIP"], manifests.ENGINE_PORT_DIRECT)


def _require(condition: bool, what: str) -> None:
    """A scenario's precondition (left by the scenario before it)."""
    assert condition, f"precondition not met: {what}"


def _scale_to_zero(e2e: E2ESystem, app: str) -> None:
    e2e.scale(app, 0)
    e2e.wait_no_requesters(app, timeout=GONE_S)


def test_b1_gpu_map_late(e2e: E2ESystem) -> None:
    """Only the requester exists until ``gpu-map`` has its node; then the pair appears, both Ready."""
    node = e2e.node_names[1]
    saved = e2e.api.get(resources.CONFIG_MAPS, "gpu-map", e2e.namespace)["data"][node]
    e2e.api.patch(resources.CONFIG_MAPS, "gpu-map", {"data": {node: None}}, e2e.namespace)
    try:
        _deployment(e2e, "b1", "model-b1", node=node)

        def reported() -> dict[str, Any] | None:
            pods = e2e.requesters("b1")
            status = pods[0]["metadata"].get("annotations", {}).get(P + "status", "") if pods else ""
            return pods[0] if "is not known" in status else None

        requester = e2e.wait(reported, timeout=60, what="the requester's status naming its unknown GPU")
        assert _providers(e2e, "b1") == [], "no provider without the node's GPU map"
        assert not helm_release.pod_ready(requester)
        assert "ActuationFailed" in e2e.wait(
            lambda: e2e.watch.reasons_of(requester), timeout=30, what="an Event on the waiting requester"
        )
    finally:
        e2e.api.patch(resources.CONFIG_MAPS, "gpu-map", {"data": {node: saved}}, e2e.namespace)
    requester, provider = e2e.wait_bound("b1", timeout=COLD_S)
    assert helm_release.pod_ready(provider)
    assert provider["metadata"]["labels"][manifests.PROVIDER_OF] == "b1"
    assert "app" not in provider["metadata"]["labels"], "the provider must not match the set's selector"
    assert provider["spec"]["nodeSelector"]["kubernetes.io/hostname"] == node
    assert (
        provider["metadata"]["annotations"][P + "accelerators"]
        == requester["metadata"]["annotations"][P + "accelerators"]
    )
    assert e2e.actuation_reason(requester) == "ActuatedCold"
    engines = [p for p in e2e.engine_processes() if p.pod == provider["metadata"]["name"]]
    assert [p.role for p in engines] == ["direct"], f"the provider's engine process, found {engines}"
    invariants.check_all(e2e)


def test_b2_node_deleted(e2e: E2ESystem) -> None:
    """Delete the requester's Node: both Pods go; a new pair appears on another node."""
    allowed = e2e.node_names[:2]
    _deployment(e2e, "b2", "model-b2", nodes=allowed)
    first, first_provider = e2e.wait_bound("b2", timeout=COLD_S)
    node = first["spec"]["nodeName"]
    try:
        e2e.api.delete(resources.NODES, node)

        def both_gone() -> bool:
            names = {first["metadata"]["name"], first_provider["metadata"]["name"]}
            return not any(e2e.pod(n) for n in names)

        e2e.wait(both_gone, timeout=NODE_GONE_S, what=f"the requester and provider of deleted Node {node} gone")
        second, second_provider = e2e.wait_bound("b2", timeout=COLD_S)
        assert second["spec"]["nodeName"] in set(allowed) - {node}
        assert second_provider["spec"]["nodeSelector"]["kubernetes.io/hostname"] == second["spec"]["nodeName"]
        assert e2e.actuation_reason(second) == "ActuatedCold"
        invariants.check_all(e2e)
    finally:
        _scale_to_zero(e2e, "b2")
        e2e.restart_simnode()
        e2e.wait(
            lambda: (n := e2e.watch.nodes.get(node)) is not None and helm_release.pod_ready(n),
            timeout=60,
            what=f"Node {node} registered again and Ready",
        )


def test_b3_requester_deleted(e2e: E2ESystem, story: Story) -> None:
    """Scale to 0: the provider remains, asleep."""
    _deployment(e2e, "b3", "model-b3", node=e2e.node_names[0])
    requester, provider = e2e.wait_bound("b3", timeout=COLD_S)
    _scale_to_zero(e2e, "b3")
    sleeper = e2e.pod(provider["metadata"]["name"])
    assert sleeper is not None, "the provider remains"
    meta = sleeper["metadata"]
    assert meta["labels"][P + "sleeping"] == "true"
    assert P + "requester" not in meta["annotations"]
    assert P + "dual" not in meta["labels"]
    assert meta["annotations"][P + "accelerators"] == requester["metadata"]["annotations"][P + "accelerators"]
    assert _asleep(e2e, sleeper)
    story.provider = meta["name"]
    invariants.check_all(e2e)


def test_b4_provider_deleted_while_unbound(e2e: E2ESystem, story: Story) -> None:
    """Delete the sleeping provider, scale to 1: a new pair."""
    sleeper = e2e.pod(story.provider)
    _require(sleeper is not None and P + "requester" not in sleeper["metadata"]["annotations"], "B3's sleeper")
    e2e.delete(resources.PODS, story.provider)
    e2e.wait(lambda: e2e.pod(story.provider) is None, timeout=GONE_S, what="the sleeping provider gone")
    e2e.scale("b3", 1)
    requester, provider = e2e.wait_bound("b3", timeout=COLD_S)
    assert provider["metadata"]["name"] != story.provider
    assert e2e.actuation_reason(requester) == "ActuatedCold"
    story.provider, story.gpus = provider["metadata"]["name"], requester["metadata"]["annotations"][P + "accelerators"]
    invariants.check_all(e2e)


def test_b5_reuse(e2e: E2ESystem, story: Story) -> None:
    """Delete the requester: its replacement reuses the same provider (hot).

    The replacement must get the same GPU to match the sleeper, so a plain
    Pod holds the node's other three GPUs meanwhile: the replacement waits
    until the deleted requester has released its GPU.
    """
    first = e2e.bound_requester("b3")
    _require(first is not None and first["metadata"]["labels"][P + "dual"] == story.provider, "B4's pair")
    assert first is not None
    filler = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "b5-filler"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": e2e.node_names[0]},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "hold",
                    "image": "busybox",
                    "command": ["python3", "-c", "import signal; signal.pause()"],
                    "resources": {"limits": {"nvidia.com/gpu": "3"}},
                }
            ],
        },
    }
    e2e.create(resources.PODS, filler)
    try:
        e2e.wait(
            lambda: (p := e2e.pod("b5-filler")) is not None and p.get("status", {}).get("phase") == "Running",
            timeout=60,
            what="the Pod holding the node's other GPUs Running",
        )
        e2e.delete(resources.PODS, first["metadata"]["name"])

        def replaced() -> dict[str, Any] | None:
            found = e2e.bound_requester("b3")
            return found if found is not None and found["metadata"]["uid"] != first["metadata"]["uid"] else None

        second = e2e.wait(replaced, timeout=GONE_S + HOT_S, what="the replacement Ready and bound")
        assert second["metadata"]["labels"][P + "dual"] == story.provider, "the same provider"
        assert second["metadata"]["annotations"][P + "accelerators"] == story.gpus
        assert e2e.actuation_reason(second) == "ActuatedHot"
        assert len(_providers(e2e, "b3")) == 1
    finally:
        e2e.delete(resources.PODS, "b5-filler", grace_period_seconds=0)
    e2e.wait(lambda: e2e.pod("b5-filler") is None, timeout=60, what="the GPU-holding Pod gone")
    invariants.check_all(e2e)


def test_b6_provider_deleted_while_bound(e2e: E2ESystem, story: Story) -> None:
    """Delete the bound provider: the requester is deleted and a new pair appears."""
    first = e2e.bound_requester("b3")
    _require(first is not None and first["metadata"]["labels"][P + "dual"] == story.provider, "B5's pair")
    assert first is not None
    e2e.delete(resources.PODS, story.provider)

    def new_pair() -> dict[str, Any] | None:
        found = e2e.bound_requester("b3")
        if found is None or found["metadata"]["uid"] == first["metadata"]["uid"]:
            return None
        return found if found["metadata"]["labels"][P + "dual"] != story.provider else None

    e2e.wait(new_pair, timeout=GONE_S + COLD_S, what="a new requester bound to a new provider")
    e2e.wait(
        lambda: e2e.pod(first["metadata"]["name"]) is None and e2e.pod(story.provider) is None,
        timeout=GONE_S,
        what="the old requester and the deleted provider gone",
    )
    invariants.check_all(e2e)


def test_b7_sleeper_limit(e2e: E2ESystem) -> None:
    """With ``sleeperLimit: 2``: three sets fulfilled then scaled to 0; a fourth evicts the LRU sleeper only."""
    node = e2e.node_names[2]
    _require(
        not [
            p for p in e2e.watch.live_pods() if p["spec"].get("nodeName") == node and p["metadata"]["labels"].get("app")
        ],
        f"nothing of the scenarios runs on {node}",
    )
    sleepers: dict[str, str] = {}
    gpus = set()
    for app in ("b7a", "b7b", "b7c"):
        _deployment(e2e, app, f"model-{app}", node=node)
        requester, provider = e2e.wait_bound(app, timeout=COLD_S)
        gpus.add(requester["metadata"]["annotations"][P + "accelerators"])
        sleepers[app] = provider["metadata"]["name"]
        _scale_to_zero(e2e, app)
    assert len(gpus) == 1, f"the three sets used one GPU, got {gpus}"
    assert all(e2e.pod(name) is not None for name in sleepers.values()), "three sleepers on the GPU (limit 2)"

    _deployment(e2e, "b7d", "model-b7d", node=node)
    requester, _ = e2e.wait_bound("b7d", timeout=COLD_S)
    assert requester["metadata"]["annotations"][P + "accelerators"] in gpus
    e2e.wait(lambda: e2e.pod(sleepers["b7a"]) is None, timeout=GONE_S, what="the least recently used sleeper evicted")
    assert e2e.pod(sleepers["b7b"]) is not None, "only the least recently used sleeper goes"
    assert e2e.pod(sleepers["b7c"]) is not None, "only the least recently used sleeper goes"
    invariants.check_all(e2e)
