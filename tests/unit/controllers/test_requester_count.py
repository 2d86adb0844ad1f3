"""``fma_requester_count`` is counted from the Pod cache on every Pod change.

The dual-pods controller is built on in-memory stand-ins for its caches (the
subset of ``kube.WatchCache`` it reads, with the controller's own indexers);
nothing is started and no API call is made: the gauge must follow the cache
from the change handler alone, whether or not a requester is scheduled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import prometheus_client
import pytest

from controllers import dpc_metrics, dual_pods
from crds import keys

NS = "ns"


class FakeCache:
    """The subset of ``kube.WatchCache`` the controller's handlers use; the test changes it by hand."""

    def __init__(self, indexers: Mapping[str, Callable[[Mapping[str, Any]], Iterable[str]]] | None = None) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.handlers: list[Callable[..., None]] = []
        self._indexers = dict(indexers or {})

    def add_handler(self, handler: Callable[..., None]) -> None:
        self.handlers.append(handler)

    def put(self, obj: dict[str, Any]) -> None:
        key = f"{NS}/{obj['metadata']['name']}"
        old = self.objects.get(key)
        self.objects[key] = obj
        for handler in self.handlers:
            handler(key, old, obj)

    def remove(self, name: str) -> None:
        key = f"{NS}/{name}"
        old = self.objects.pop(key)
        for handler in self.handlers:
            handler(key, old, None)

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        indexer = self._indexers[index]
        return [obj for obj in self.objects.values() if value in indexer(obj)]

    def index_values(self, index: str) -> list[str]:
        indexer = self._indexers[index]
        return sorted({value for obj in self.objects.values() for value in indexer(obj)})


def _requester(name: str, isc: str, *, node: str | None = None, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{name}",
        "resourceVersion": "1",
        "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: isc},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {"nodeName": node} if node else {}
    return {"metadata": meta, "spec": spec}


@pytest.fixture
def world() -> tuple[FakeCache, prometheus_client.CollectorRegistry]:
    registry = prometheus_client.CollectorRegistry()
    pods = FakeCache(dual_pods.POD_INDEXERS)
    controller = dual_pods.DualPodsController(
        None,  # type: ignore[arg-type]  # the handlers make no API call
        settings=dual_pods.DPCSettings(namespace=NS),
        pods=pods,  # type: ignore[arg-type]  # the subset the handlers read
        nodes=FakeCache(),  # type: ignore[arg-type]
        iscs=FakeCache(),  # type: ignore[arg-type]
        lcs=FakeCache(),  # type: ignore[arg-type]
        gpu_maps=FakeCache(),  # type: ignore[arg-type]
        agents=None,  # type: ignore[arg-type]
        events=None,  # type: ignore[arg-type]
        metrics=dpc_metrics.DPCMetrics(registry),
    )
    controller.register_handlers()
    return pods, registry


def _count(registry: prometheus_client.CollectorRegistry, isc: str) -> float | None:
    return registry.get_sample_value("fma_requester_count", {"isc_name": isc})


def test_unscheduled_requesters_are_counted(world: tuple[FakeCache, prometheus_client.CollectorRegistry]) -> None:
    pods, registry = world
    pods.put(_requester("a", "isc1"))
    pods.put(_requester("b", "isc1", node="n1"))
    assert _count(registry, "isc1") == 2


def test_annotation_change_moves_the_count(world: tuple[FakeCache, prometheus_client.CollectorRegistry]) -> None:
    pods, registry = world
    pods.put(_requester("a", "isc1", node="n1"))
    pods.put(_requester("a", "isc2", node="n1"))
    assert _count(registry, "isc1") == 0
    assert _count(registry, "isc2") == 1


def test_deletion_lowers_the_count_to_zero(world: tuple[FakeCache, prometheus_client.CollectorRegistry]) -> None:
    pods, registry = world
    pods.put(_requester("a", "isc1", node="n1"))
    pods.put(_requester("b", "isc1"))
    pods.put(_requester("a", "isc1", node="n1", deleting=True))
    assert _count(registry, "isc1") == 1
    pods.remove("a")
    pods.remove("b")
    assert _count(registry, "isc1") == 0


def test_other_pods_leave_the_gauge_alone(world: tuple[FakeCache, prometheus_client.CollectorRegistry]) -> None:
    pods, registry = world
    pods.put({"metadata": {"name": "plain", "namespace": NS, "uid": "u", "resourceVersion": "1"}, "spec": {}})
    direct = _requester("d", "isc1")
    del direct["metadata"]["annotations"][keys.INFERENCE_SERVER_CONFIG_ANNOTATION]
    direct["metadata"]["annotations"][keys.SERVER_PATCH_ANNOTATION] = "spec: {}"
    pods.put(direct)
    assert _count(registry, "isc1") is None
