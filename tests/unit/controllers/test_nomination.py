"""The nominator: ``plan`` as a decision table, and the executor over the ``kube.testing`` seam.

The executor tests use ``kube.testing.FakeClient`` with the two things this
controller needs beyond merge patches: the ``pods/status`` subresource (a
merge patch, here optionally refused) and a JSON Patch of ``test`` and
``remove`` ops, refused with ``Invalid`` when a test fails, as the apiserver
does.  The cluster tests (tests/integration/test_nomination.py) run it
against a real apiserver and scheduler.
"""

from __future__ import annotations

import datetime
from typing import Any

import prometheus_client
import pytest

from controllers import nomination
from crds import keys
from devcluster import waiting
from kube import client as client_mod
from kube import errors, resources, testing

NS = "fma"
GATE = {"name": keys.NOMINATE_GATE}
OTHER = {"name": "example.com/quota"}
READY = {"type": "Ready", "status": "True"}


def _pod(
    *, gates: list[Any] | None = None, node: str | None = "n1", deleting: bool = False, status: Any = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r1", "namespace": NS, "creationTimestamp": "2026-01-01T00:00:00Z"}
    if node is not None:
        meta["annotations"] = {keys.NOMINATED_NODE_ANNOTATION: node}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:09Z"
    pod: dict[str, Any] = {"metadata": meta, "spec": {"containers": [{"name": "inference-server"}]}}
    if gates is not None:
        pod["spec"]["schedulingGates"] = gates
    if status is not None:
        pod["status"] = status
    return pod


def _node(name: str = "n1", *, ready: bool = True, unschedulable: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"conditions": [READY if ready else {"type": "Ready", "status": "Unknown"}]},
    }
    return node


@pytest.mark.parametrize(
    ("pod", "node", "expected"),
    [
        pytest.param(None, _node(), None, id="no-pod"),
        pytest.param(_pod(gates=None), _node(), None, id="no-gates"),
        pytest.param(_pod(gates=[OTHER]), _node(), None, id="only-another-gate"),
        pytest.param(_pod(gates=[GATE], deleting=True), _node(), None, id="deleting"),
        pytest.param(
            _pod(gates=[OTHER, GATE]), _node(), nomination.Plan(nomination.Outcome.NOMINATED, "n1"), id="nominate"
        ),
        pytest.param(_pod(gates=[GATE], node=None), None, nomination.Plan(nomination.Outcome.NO_NODE), id="no-node"),
        pytest.param(_pod(gates=[GATE], node=" "), None, nomination.Plan(nomination.Outcome.NO_NODE), id="blank"),
        pytest.param(_pod(gates=[GATE]), None, nomination.Plan(nomination.Outcome.NODE_GONE), id="node-gone"),
        pytest.param(
            _pod(gates=[GATE]),
            _node(ready=False),
            nomination.Plan(nomination.Outcome.NODE_UNAVAILABLE),
            id="node-not-ready",
        ),
        pytest.param(
            _pod(gates=[GATE]),
            _node(unschedulable=True),
            nomination.Plan(nomination.Outcome.NODE_UNAVAILABLE),
            id="node-cordoned",
        ),
    ],
)
def test_plan(pod: Any, node: Any, expected: nomination.Plan | None) -> None:
    assert nomination.plan(pod, node) == expected


@pytest.mark.parametrize(
    ("gates", "index"),
    [
        pytest.param([GATE], 0, id="only"),
        pytest.param([OTHER, GATE], 1, id="second"),
        pytest.param([OTHER], None, id="absent"),
        pytest.param("junk", None, id="not-a-list"),
        pytest.param(["junk", GATE], 1, id="junk-item-skipped"),
    ],
)
def test_gate_index(gates: Any, index: int | None) -> None:
    assert nomination.gate_index(_pod(gates=gates)) == index


class GateClient(testing.FakeClient):
    """``FakeClient`` plus a refusable ``pods/status`` merge patch and JSON Patch ``test``/``remove`` ops."""

    def __init__(self) -> None:
        super().__init__(field_manager="fma-test")
        self.status_error: errors.KubeError | None = None
        self.moved_once = False
        """Before the first JSON patch, insert another gate in front (the cached index goes stale)."""

    def patch(
        self,
        resource: resources.Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: client_mod.PatchType = "merge",
        subresource: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        if subresource == "status" and self.status_error is not None:
            raise self.status_error
        if patch_type != "json":
            return super().patch(resource, name, patch, namespace, patch_type=patch_type, subresource=subresource)
        current = self.stored(resource, name, namespace)
        if current is None:
            raise errors.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        gates = current["spec"].get("schedulingGates") or []
        if self.moved_once:
            self.moved_once = False
            gates.insert(0, {"name": "example.com/late"})
        for op in patch:
            index = int(op["path"].split("/")[3])
            if op["op"] == "test" and (index >= len(gates) or gates[index]["name"] != op["value"]):
                self.seed(resource, {**current, "spec": {**current["spec"], "schedulingGates": gates}})
                raise errors.Invalid(422, "Invalid", "the test operation failed")
            if op["op"] == "remove":
                del gates[index]
        self.writes.append(testing.Write("patch", resource.plural, namespace, name, patch))
        current["spec"]["schedulingGates"] = gates
        return self.seed(resource, current)


@pytest.fixture
def world() -> tuple[GateClient, nomination.Nominator, prometheus_client.CollectorRegistry]:
    api = GateClient()
    pods = api.cache(resources.PODS)
    nodes = api.cache(resources.NODES)
    registry = prometheus_client.CollectorRegistry()
    clock = lambda: datetime.datetime(2026, 1, 1, 0, 0, 2, tzinfo=datetime.UTC)  # noqa: E731 - a fixed clock
    nominator = nomination.Nominator(api, namespace=NS, pods=pods, nodes=nodes, registry=registry, clock=clock)
    api.seed(resources.NODES, _node())
    return api, nominator, registry


def _count(registry: prometheus_client.CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value("fma_nominations_total", {"outcome": outcome}) or 0.0


def test_nominates_then_lifts_only_its_gate(world) -> None:
    api, nominator, registry = world
    api.seed(resources.PODS, _pod(gates=[OTHER, GATE]))
    api.sync()
    assert nominator.reconcile("fma/r1", "fma/r1") is None
    stored = api.stored(resources.PODS, "r1", NS)
    assert stored is not None
    assert stored["status"]["nominatedNodeName"] == "n1"
    assert stored["spec"]["schedulingGates"] == [OTHER]
    status_write, gate_write = api.writes_to("r1")
    assert status_write.body == {"status": {"nominatedNodeName": "n1"}}, "the status is written first"
    assert gate_write.body[0] == {"op": "test", "path": "/spec/schedulingGates/1/name", "value": keys.NOMINATE_GATE}
    assert _count(registry, "nominated") == 1
    assert registry.get_sample_value("fma_nomination_ungate_seconds_sum") == 2.0
    api.sync()
    assert nominator.reconcile("fma/r1", "fma/r1") is None, "no gate left: nothing to do"
    assert len(api.writes_to("r1")) == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(errors.Forbidden(403, "Forbidden", "no pods/status"), id="forbidden"),
        pytest.param(errors.TransportError("connection reset"), id="transport"),
    ],
)
def test_a_failed_nomination_still_lifts_the_gate(world, failure) -> None:
    api, nominator, registry = world
    api.status_error = failure
    api.seed(resources.PODS, _pod(gates=[GATE]))
    api.sync()
    assert nominator.reconcile("fma/r1", "fma/r1") is None
    stored = api.stored(resources.PODS, "r1", NS)
    assert stored is not None
    assert stored["spec"]["schedulingGates"] == []
    assert "status" not in stored
    assert _count(registry, "failed") == 1


def test_a_missing_node_lifts_the_gate_without_nominating(world) -> None:
    api, nominator, registry = world
    api.seed(resources.PODS, _pod(gates=[GATE], node="gone"))
    api.sync()
    nominator.reconcile("fma/r1", "fma/r1")
    stored = api.stored(resources.PODS, "r1", NS)
    assert stored is not None
    assert stored["spec"]["schedulingGates"] == []
    assert all(not isinstance(w.body, dict) for w in api.writes_to("r1")), "no status patch"
    assert _count(registry, "node_gone") == 1


def test_a_stale_gate_index_is_read_again(world) -> None:
    api, nominator, _ = world
    api.seed(resources.PODS, _pod(gates=[GATE]))
    api.sync()
    api.moved_once = True
    nominator.reconcile("fma/r1", "fma/r1")
    stored = api.stored(resources.PODS, "r1", NS)
    assert stored is not None
    assert stored["spec"]["schedulingGates"] == [{"name": "example.com/late"}]


def test_start_queues_gated_pods_already_cached(world) -> None:
    api, nominator, registry = world
    api.seed(resources.PODS, _pod(gates=[GATE]))
    nominator.register_handlers()
    api.sync()
    nominator.start()
    try:
        waiting.wait_for(lambda: _count(registry, "nominated") == 1, timeout=10, what="the worker's nomination")
    finally:
        nominator.stop()
    assert _count(registry, "nominated") == 1


def test_a_cache_still_showing_the_lifted_gate_costs_no_write(world) -> None:
    api, nominator, registry = world
    api.seed(resources.PODS, _pod(gates=[GATE]))
    api.sync()
    nominator.reconcile("fma/r1", "fma/r1")
    writes = len(api.writes)
    # No sync: the cache lags behind and still shows the gate (as a watch event of the status patch would).
    assert nominator.reconcile("fma/r1", "fma/r1") is None
    assert len(api.writes) == writes
    assert _count(registry, "nominated") == 1
