"""docs/e2e.md, "Fault scenarios (group C)", the platform around FMA: C7-C11 through the installed chart.

The apiserver restarted on the same etcd (C7), the webhook (C8) and the
extender (C9) down while requesters are created, a node that stops
heartbeating (C10), and 50 requesters at once for 8 GPUs (C11).  The module
makes its own LauncherConfig, InferenceServerConfigs and launcher policy
(``faults.launcher_fleet``); each scenario removes its Deployments and ends
with the common checks (``invariants.check_all``).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kube import resources

from . import faults, invariants, manifests
from .system import DEPLOYMENTS, E2ESystem, P

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

COLD_S = 150.0  # a requester Ready through a launcher that had to start
GONE_S = 120.0  # a scaled-down requester's Pods removed
NODE_LOST_S = 150.0  # kube-controller-manager's node-monitor grace (50 s) + the requesters' toleration + margin
RS_RETRY_S = 120.0  # the ReplicaSet controller's rate-limited retry of a failed Pod create
CROWD_S = 420.0  # C11: 50 requesters converted, 8 launchers started cold, 8 engines loaded, on 2 shared cores

ISCS = {
    "p-a": (8201, manifests.engine_options("model-a")),
    "p-b": (8202, manifests.engine_options("model-b")),
    "p-c": (8203, manifests.engine_options("model-c")),
}
FSCHED = "fma-scheduler"
EVICT_AFTER_S = 5
"""C10's requesters tolerate an unreachable or not-ready node this long (the user's choice; default 300 s)."""


@pytest.fixture(scope="module")
def fleet(e2e: E2ESystem) -> Iterator[None]:
    apps = ("c7", "c8", "c9", "c10", "c11a", "c11b", "c11c")
    with faults.launcher_fleet(e2e, "p-lc", "p-lpp", ISCS, apps=apps, timeout=CROWD_S):
        yield


def _all_bound(e2e: E2ESystem, app: str, count: int) -> bool:
    """Whether the set has ``count`` requesters, all Ready and bound; while not, an AssertionError says why."""
    pods = e2e.requesters(app)
    unbound = [faults.describe(e2e, p) for p in pods if not faults.bound(e2e, p)]
    assert len(pods) == count, f"{len(pods)}/{count} requesters; not bound: {unbound}"
    assert not unbound, f"not bound: {unbound}"
    return True


def _remove(e2e: E2ESystem, *apps: str) -> None:
    for app in apps:
        e2e.delete(DEPLOYMENTS, app)
    for app in apps:
        e2e.wait_no_requesters(app, timeout=GONE_S)


def _node_ready(e2e: E2ESystem, name: str) -> bool | None:
    node = e2e.watch.nodes.get_by_name(name)
    if node is None:
        return None
    ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    return bool(ready) and ready[0].get("status") == "True"


def test_c7_apiserver_restarted(e2e: E2ESystem, fleet: None) -> None:
    """The apiserver stops while an actuation is pending and comes back on the same etcd: every component
    reconnects, the pending actuation completes and new ones work."""
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c7", "p-a"))
    e2e.wait_bound("c7", timeout=COLD_S)
    e2e.scale("c7", 2)
    e2e.wait(lambda: len(e2e.requesters("c7")) == 2, timeout=60, what="c7's second requester created")
    # Long enough that the node lifecycle controller, back on the same etcd, finds the nodes' heartbeats
    # stale and marks them and their Pods not Ready: the nodes must put both back (the kubelet's job).
    took = faults.restart_apiserver(e2e, down_s=25.0)
    assert took < 120
    e2e.wait(lambda: _all_bound(e2e, "c7", 2), timeout=COLD_S, what="both c7 requesters Ready and bound")
    e2e.wait(e2e.chart.all_available, timeout=COLD_S, what="every Deployment of the release Available again")
    e2e.wait(lambda: all(_node_ready(e2e, n) for n in e2e.node_names), timeout=60, what="every simnode Node Ready")
    e2e.scale("c7", 3)
    e2e.wait(lambda: _all_bound(e2e, "c7", 3), timeout=COLD_S, what="a third c7 requester Ready after the restart")
    _remove(e2e, "c7")
    invariants.check_all(e2e)


def test_c8_webhook_down_while_scaling_up(e2e: E2ESystem, fleet: None) -> None:
    """failurePolicy Fail (the chart's default): with no webhook the apiserver refuses the annotated Pods,
    the ReplicaSet reports it and retries; once the webhook is back every Pod is a converted requester."""
    failed_before = {e["metadata"]["name"] for e in e2e.watch.events.items() if e.get("reason") == "FailedCreate"}

    def refused() -> list[str]:
        return [
            str(e.get("message"))
            for e in e2e.watch.events.items()
            if e.get("reason") == "FailedCreate"
            and e["metadata"]["name"] not in failed_before
            and str((e.get("involvedObject") or {}).get("name", "")).startswith("c8-")
        ]

    with faults.scaled_to_zero(e2e, "webhook") as webhook_pods:
        e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c8", "p-a", replicas=2))
        messages = e2e.wait(refused, timeout=60, what="the ReplicaSet's FailedCreate Event for c8")
        assert any("webhook" in m for m in messages), messages
        assert webhook_pods() == 0
        assert not e2e.watch.all_pods({"app": "c8"}), "a Pod was admitted without the webhook"
    e2e.wait(lambda: _all_bound(e2e, "c8", 2), timeout=RS_RETRY_S + COLD_S, what="c8's requesters Ready and bound")
    for pod in e2e.watch.all_pods({"app": "c8"}):
        assert pod["spec"]["schedulerName"] == FSCHED, f"{pod['metadata']['name']} was not converted"
        assert (pod["metadata"].get("annotations") or {}).get(P + "converted") == "v1", "not converted"
    _remove(e2e, "c8")
    invariants.check_all(e2e)


def test_c9_extender_down(e2e: E2ESystem, fleet: None) -> None:
    """extender.ignorable true (the chart's default): the FMA scheduler places requesters without it."""
    with faults.scaled_to_zero(e2e, "extender") as extender_pods:
        e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c9", "p-b"))
        requester, _ = e2e.wait_bound("c9", timeout=COLD_S)
        assert extender_pods() == 0
        assert requester["spec"]["schedulerName"] == FSCHED
        assert requester["spec"]["nodeName"] in e2e.node_names
    e2e.scale("c9", 2)
    e2e.wait(lambda: _all_bound(e2e, "c9", 2), timeout=COLD_S, what="c9 scaled with the extender back")
    _remove(e2e, "c9")
    invariants.check_all(e2e)


def _tolerating(deployment: dict[str, Any], seconds: int) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    spec["tolerations"] = [
        {
            "key": f"node.kubernetes.io/{taint}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": seconds,
        }
        for taint in ("unreachable", "not-ready")
    ]
    return deployment


def test_c10_node_stops_heartbeating(e2e: E2ESystem, fleet: None) -> None:
    """A node's heartbeats stop: the node lifecycle controller marks it unreachable, the requester (tolerating
    that 5 s) is evicted and its replacement binds on another node."""
    webhook_nodes = {p["spec"].get("nodeName") for p in e2e.watch.live_pods({"app.kubernetes.io/component": "webhook"})}
    # Lose a node that does not carry every webhook replica (requesters cannot be created without one).
    allowed = [n for n in e2e.node_names if webhook_nodes != {n}]
    deployment = _tolerating(manifests.vllm_deployment("c10", "p-c"), EVICT_AFTER_S)
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": allowed}]}
    deployment["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    }
    e2e.create(DEPLOYMENTS, deployment)
    first, _ = e2e.wait_bound("c10", timeout=COLD_S)
    lost = first["spec"]["nodeName"]
    with faults.silenced(e2e, lost):
        e2e.wait(lambda: _node_ready(e2e, lost) is False, timeout=NODE_LOST_S, what=f"node {lost} not Ready")

        def tainted() -> bool:
            node = e2e.watch.nodes.get_by_name(lost) or {}
            taints = {t.get("key") for t in (node.get("spec") or {}).get("taints") or []}
            assert "node.kubernetes.io/unreachable" in taints, taints
            return True

        e2e.wait(tainted, timeout=60, what=f"node {lost} tainted unreachable by the node lifecycle controller")

        def moved() -> dict[str, Any] | None:
            found = e2e.bound_requester("c10")
            if found is None or found["metadata"]["uid"] == first["metadata"]["uid"]:
                return None
            return found

        second = e2e.wait(moved, timeout=NODE_LOST_S, what="c10's requester evicted and replaced on another node")
        assert second["spec"]["nodeName"] != lost
        evicted = e2e.pod(first["metadata"]["name"])
        assert evicted is None or evicted["metadata"].get("deletionTimestamp"), "the old requester was not evicted"
    e2e.wait(lambda: _node_ready(e2e, lost), timeout=90, what=f"node {lost} Ready again")
    e2e.wait(
        lambda: e2e.api.get_or_none(resources.PODS, first["metadata"]["name"], e2e.namespace) is None,
        timeout=GONE_S,
        what="the evicted requester gone once its node is back",
    )
    _remove(e2e, "c10")
    invariants.check_all(e2e)


def test_c11_fifty_requesters_for_eight_gpus(e2e: E2ESystem, fleet: None) -> None:
    """50 requesters for 3 ISCs on 2 nodes x 4 GPUs: 8 bind, each GPU held once, the rest Pending; as one set
    scales down its GPUs go to the waiting ones."""
    nodes = e2e.node_names[:2]
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]}
    sets = {"c11a": ("p-a", 17), "c11b": ("p-b", 17), "c11c": ("p-c", 16)}
    violations: list[str] = []
    stop = threading.Event()

    def watch_gpus() -> None:
        # Every change of the cache: no GPU held by two live requesters, no GPU outside the two nodes.
        while not stop.is_set():
            holders: dict[str, list[str]] = collections.defaultdict(list)
            for app in sets:
                for pod in e2e.requesters(app):
                    for gpu in (pod["metadata"].get("annotations") or {}).get(P + "accelerators", "").split(","):
                        if gpu:
                            holders[f"{pod['spec'].get('nodeName')}/{gpu}"].append(pod["metadata"]["name"])
            violations.extend(f"{gpu} held by {names}" for gpu, names in holders.items() if len(names) > 1)
            stop.wait(0.2)

    watcher = threading.Thread(target=watch_gpus, name="c11-gpus", daemon=True)
    watcher.start()
    try:
        for app, (isc, replicas) in sets.items():
            deployment = manifests.vllm_deployment(app, isc, replicas=replicas)
            deployment["spec"]["template"]["spec"]["affinity"] = {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
            }
            e2e.create(DEPLOYMENTS, deployment)

        def census() -> tuple[int, int, int]:
            pods = [p for app in sets for p in e2e.requesters(app)]
            ready = sum(1 for p in pods if faults.bound(e2e, p))
            pending = sum(1 for p in pods if not p["spec"].get("nodeName"))
            return len(pods), ready, pending

        def reached(target: tuple[int, int, int]) -> bool:
            found = census()
            assert found == target, f"(requesters, bound, Pending) = {found}"
            return True

        e2e.wait(lambda: reached((50, 8, 42)), timeout=CROWD_S, what="50 requesters: 8 bound, 42 Pending")
        assert {p["spec"]["nodeName"] for app in sets for p in e2e.requesters(app) if p["spec"].get("nodeName")} <= set(
            nodes
        )
        held = {app: sum(1 for p in e2e.requesters(app) if faults.bound(e2e, p)) for app in sets}
        # c11a lets its GPUs go: the waiting requesters of the other sets take every one of them.
        e2e.scale("c11a", 0)
        e2e.wait_no_requesters("c11a", timeout=CROWD_S)
        e2e.wait(
            lambda: reached((33, 8, 25)),
            timeout=CROWD_S,
            what=f"c11a's GPUs (it held {held['c11a']}) taken by Pending requesters of c11b and c11c",
        )
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not violations, violations[:10]
    for app in sets:
        e2e.delete(DEPLOYMENTS, app)
    for app in sets:
        e2e.wait_no_requesters(app, timeout=CROWD_S)
    invariants.check_all(e2e)
