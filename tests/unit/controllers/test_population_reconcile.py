"""The populator's executor and handlers against in-memory fakes of its cache and client seams.

The plans are covered by their own tables; these tests check what only the
executor does: expectations across reconciles (no double creation from a
lagging cache, a direct List after the timeout), precondition conflicts,
which items the handlers enqueue, status writes (and the pruned-conditions
guard), and waiting for the caches to sync.
"""

from __future__ import annotations

import copy
import datetime
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import prometheus_client
import pytest

import kube
from controllers import errors, launcher_template, populator
from crds import keys

NS = "ns"
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


class FakeCache:
    """The subset of ``kube.WatchCache`` the populator uses; the test changes it by hand."""

    def __init__(self, indexers: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] | None = None) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.handlers: list[Callable[..., None]] = []
        self.synced = True
        self._indexers = dict(indexers or {})

    def add_handler(self, handler: Callable[..., None]) -> None:
        self.handlers.append(handler)

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        old = self.objects.get(key)
        self.objects[key] = obj
        for handler in self.handlers:
            handler(key, old, obj)

    def remove(self, key: str) -> None:
        old = self.objects.pop(key)
        for handler in self.handlers:
            handler(key, old, None)

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        indexer = self._indexers[index]
        return [obj for obj in self.objects.values() if value in indexer(obj)]


class FakeClient:
    """Records writes; Pod creates get UIDs; scripted errors per verb."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.server_pods: dict[str, dict[str, Any]] = {}
        self.delete_error: Exception | None = None
        self.create_error: Exception | None = None
        self.prune_conditions = False
        self._uids = itertools.count(1)

    def create(self, resource: kube.resources.Resource, body: Mapping[str, Any], namespace: str | None = None) -> Any:
        if self.create_error is not None:
            raise self.create_error
        obj = copy.deepcopy(dict(body))
        uid = f"uid-{next(self._uids)}"
        obj["metadata"] |= {"name": obj["metadata"]["generateName"] + uid, "uid": uid, "resourceVersion": "1"}
        obj["metadata"]["creationTimestamp"] = "2026-01-01T12:00:00Z"
        self.writes.append(("create", obj["metadata"]["name"]))
        self.server_pods[obj["metadata"]["name"]] = obj
        return obj

    def delete(self, resource: kube.resources.Resource, name: str, namespace: str | None = None, **kwargs: Any) -> Any:
        self.writes.append(("delete", name))
        if self.delete_error is not None:
            raise self.delete_error
        self.server_pods.pop(name, None)
        return None

    def patch(
        self, resource: kube.resources.Resource, name: str, patch: Any, namespace: str | None = None, **kw: Any
    ) -> Any:
        self.writes.append(("patch", name))
        return {}

    def replace(self, resource: kube.resources.Resource, body: Mapping[str, Any], **kwargs: Any) -> Any:
        self.writes.append(("status", body["metadata"]["name"]))
        result = copy.deepcopy(dict(body))
        if self.prune_conditions:
            result["status"].pop("conditions", None)
        return result

    def list_all(self, resource: kube.resources.Resource, namespace: str | None = None, **kwargs: Any) -> Any:
        self.writes.append(("list", kwargs.get("label_selector", "")))
        return list(self.server_pods.values()), "1"


class FakeEvents:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    def record(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        self.recorded.append((obj["metadata"]["name"], reason, message))


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.pods = FakeCache(populator.POD_INDEXERS)  # type: ignore[arg-type]
        self.nodes = FakeCache()
        self.configs = FakeCache()
        self.policies = FakeCache()
        self.events = FakeEvents()
        self.monotonic = Monotonic()
        self.registry = prometheus_client.CollectorRegistry()
        self.populator = populator.Populator(
            self.client,  # type: ignore[arg-type]
            namespace=NS,
            pods=self.pods,  # type: ignore[arg-type]
            nodes=self.nodes,  # type: ignore[arg-type]
            launcher_configs=self.configs,  # type: ignore[arg-type]
            policies=self.policies,  # type: ignore[arg-type]
            events=self.events,  # type: ignore[arg-type]
            registry=self.registry,
            settings=populator.PopulatorSettings(expectation_timeout=5.0),
            clock=lambda: NOW,
            monotonic=self.monotonic,
        )
        self.populator.register_handlers()

    def drain(self) -> list[tuple[str, float | None]]:
        """Process every ready item once; return (item, result) pairs."""
        done: list[tuple[str, float | None]] = []
        while True:
            got = self.populator.queue.get(timeout=0)
            if got is None:
                return done
            group, item = got
            try:
                done.append((str(item), self.populator._reconcile(group, item)))
            finally:
                self.populator.queue.done(group, item)

    def pair(self, node: str = "n1", config: str = "lc") -> float | None:
        return self.populator._reconcile_pair(node, config)


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": "2"}}}


def lc(name: str = "lc") -> dict[str, Any]:
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {"maxInstances": 1, "podTemplate": {"spec": {"containers": [{"name": "inference-server"}]}}},
    }


def lpp(count: int, name: str = "p", config: str = "lc") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "generation": 1, "resourceVersion": str(count + 10)},
        "spec": {
            "enhancedNodeSelector": {"labelSelector": {"matchLabels": {"pool": "a"}}},
            "countForLauncher": [{"launcherConfigName": config, "launcherCount": count}],
        },
    }


@pytest.fixture
def world() -> World:
    w = World()
    w.nodes.put(node("n1", {"pool": "a"}))
    w.configs.put(lc())
    w.drain()
    w.client.writes.clear()
    return w


def seen_in_cache(w: World, names: list[str]) -> None:
    for name in names:
        pod = copy.deepcopy(w.client.server_pods[name])
        pod["metadata"]["namespace"] = NS
        pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        w.pods.put(pod)


def test_a_lagging_cache_never_causes_double_creation(world: World) -> None:
    world.policies.put(lpp(2))
    world.drain()
    created = [name for verb, name in world.client.writes if verb == "create"]
    assert len(created) == 2
    # The cache has not caught up: reconciling again waits instead of creating more.
    world.populator.queue.add(populator.WorkItem("pair", "lc", "n1"), populator.WorkItem("pair", "lc", "n1"))
    assert world.pair() == pytest.approx(5.0)
    assert len([w for w in world.client.writes if w[0] == "create"]) == 2
    # Once the cache shows both, the pair is converged.
    seen_in_cache(world, created[:1])
    assert world.pair() is not None
    seen_in_cache(world, created[1:])
    world.client.writes.clear()
    assert world.pair() is None
    assert world.client.writes == []


def test_after_the_expectation_timeout_the_pair_is_listed_directly(world: World) -> None:
    world.policies.put(lpp(1))
    world.drain()
    assert sorted(verb for verb, _ in world.client.writes) == ["create", "status"]
    world.client.writes.clear()
    world.monotonic.now += 5.1
    world.pair()
    assert world.client.writes == [
        (
            "list",
            "app.kubernetes.io/component=launcher,dual-pods.llm-d.ai/launcher-config-name=lc,"
            "dual-pods.llm-d.ai/node-name=n1",
        )
    ]
    assert world.populator.stats().direct_lists == 1


def test_a_delete_conflict_keeps_the_launcher_and_creates_nothing(world: World) -> None:
    world.policies.put(lpp(1))
    pod = launcher_template.specialise(lc(), "n1")
    pod["metadata"] |= {"name": "l1", "uid": "u1", "resourceVersion": "5", "namespace": NS}
    pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    world.pods.put(pod)
    world.drain()
    assert not any(verb in ("create", "delete") for verb, _ in world.client.writes)
    world.client.writes.clear()
    world.client.delete_error = kube.errors.Conflict(409, "Conflict", "precondition failed")
    world.policies.put(lpp(0))
    world.drain()
    assert ("delete", "l1") in world.client.writes
    assert not any(verb == "create" for verb, _ in world.client.writes)
    assert world.populator.stats().delete_conflicts == 1
    # The controller bound it meanwhile: the next look leaves it alone.
    bound = copy.deepcopy(pod)
    bound["metadata"]["annotations"][keys.REQUESTER_ANNOTATION] = "uid-r r"
    bound["metadata"]["resourceVersion"] = "6"
    world.client.writes.clear()
    world.pods.put(bound)
    world.drain()
    assert not any(verb in ("delete", "create") for verb, _ in world.client.writes)


def test_node_heartbeats_enqueue_nothing_but_label_changes_do(world: World) -> None:
    beat = node("n1", {"pool": "a"})
    beat["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    world.nodes.put(beat)
    assert world.populator.queue.pending() == 0
    world.nodes.put(node("n1", {"pool": "b"}))
    assert [item for item, _ in world.drain()] == ["pair/n1/lc", "count/lc"]


def test_status_is_written_once_and_pruned_conditions_do_not_loop(world: World) -> None:
    world.client.prune_conditions = True
    world.policies.put(lpp(0))
    world.drain()
    assert ("status", "p") in world.client.writes
    # The apiserver pruned the conditions; the stored status lacks them from now on.
    stored = lpp(0)
    stored["status"] = {"observedGeneration": 1, "errors": []}
    stored["metadata"]["resourceVersion"] = "99"
    world.client.writes.clear()
    world.policies.put(stored)
    world.drain()
    assert world.client.writes == []


def test_missing_config_is_reported_once_with_an_event(world: World) -> None:
    world.policies.put(lpp(1, config="nope"))
    world.drain()
    assert world.events.recorded == [
        ("p", "LauncherConfigNotFound", 'LauncherConfig "nope" referenced in CountForLauncher does not exist')
    ]
    assert not any(verb == "create" for verb, _ in world.client.writes)


def test_reconciles_wait_for_the_caches(world: World) -> None:
    world.pods.synced = False
    assert (
        world.populator._reconcile(populator.WorkItem("pair", "lc", "n1"), populator.WorkItem("pair", "lc", "n1"))
        == 0.25
    )
    assert world.client.writes == []


def test_gauge_follows_the_launchers_and_disappears_with_them(world: World) -> None:
    pod = launcher_template.specialise(lc(), "n1")
    pod["metadata"] |= {"name": "l1", "uid": "u1", "resourceVersion": "5", "namespace": NS}
    pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    world.pods.put(pod)
    world.drain()
    sample = world.registry.get_sample_value
    assert sample("fma_launcher_pod_count", {"lcfg_name": "lc", "phase": "unbound"}) == 1.0
    world.configs.remove(f"{NS}/lc")
    world.pods.remove(f"{NS}/l1")
    world.drain()
    assert sample("fma_launcher_pod_count", {"lcfg_name": "lc", "phase": "unbound"}) is None


def test_a_refused_create_is_reported_on_the_config_and_retried(world: World) -> None:
    world.client.create_error = kube.errors.Invalid(422, "Invalid", "spec.containers[0].image: Required value")
    world.policies.put(lpp(1))
    with pytest.raises(errors.RetryableError, match="image: Required value"):
        world.pair()
    assert world.events.recorded == [
        (
            "lc",
            "FailedCreateLauncher",
            "creating a launcher on node 'n1' failed: spec.containers[0].image: Required value",
        )
    ]


def test_a_stored_negative_count_is_reported_and_its_pairs_left_alone(world: World) -> None:
    # Our CRD rejects it; an object stored under upstream's schema can still carry one.
    pod = launcher_template.specialise(lc(), "n1")
    pod["metadata"] |= {"name": "l1", "uid": "u1", "resourceVersion": "5", "namespace": NS}
    world.policies.put(lpp(-1))
    world.pods.put(pod)
    world.drain()
    assert not any(verb in ("create", "delete") for verb, _ in world.client.writes)
    message = "spec.countForLauncher[0].launcherCount: must not be negative, got -1"
    assert world.events.recorded == [("p", "InvalidSpec", message)]
    assert ("status", "p") in world.client.writes
