"""The sleeper cache (``kube.sleeper_cache``) over fake watch caches: memoised node views, invalidation,
summaries per version, malformed inventories counted."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

import crds
from crds import inference_server_config, keys, sleeper_scoring
from kube import resources, sleeper_cache

Handler = Callable[[str, Mapping[str, Any] | None, Mapping[str, Any] | None], None]


class FakeCache:
    """Stands in for ``kube.WatchCache``: objects put in by the test, handlers called like the real one."""

    def __init__(
        self,
        api: object,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, Callable[[Mapping[str, Any]], Iterable[str]]] | None = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.field_selector = field_selector
        self.indexers = dict(indexers or {})
        self.objects: dict[str, dict[str, Any]] = {}
        self.handlers: list[Handler] = []
        self.synced = False
        self.gets = 0
        self.index: dict[str, dict[str, set[str]]] = {}

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def start(self) -> None:
        self.synced = True

    def stop(self) -> None:
        self.synced = False

    def wait_synced(self, timeout: float) -> bool:
        return self.synced

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        old = self.objects.get(key)
        self.objects[key] = obj
        for name, func in self.indexers.items():
            index = self.index.setdefault(name, {})
            if old is not None:
                for value in func(old):
                    index.get(value, set()).discard(key)
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        for handler in self.handlers:
            handler(key, old, obj)

    def get(self, key: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.objects.get(key)

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        return [self.objects[key] for key in sorted(self.index.get(index, {}).get(value, set()))]


@pytest.fixture
def caches() -> dict[str, FakeCache]:
    return {}


@pytest.fixture
def model(caches: dict[str, FakeCache]) -> sleeper_cache.SleeperCache:
    def factory(api: object, resource: resources.Resource, **kwargs: Any) -> FakeCache:
        cache = FakeCache(api, resource, **kwargs)
        caches[resource.plural] = cache
        return cache

    return sleeper_cache.SleeperCache(object(), namespace="team", gpu_map_namespace="fma", cache_factory=factory)  # type: ignore[arg-type]  # the fake API is never called


def _node(name: str, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}, "status": {"allocatable": {"nvidia.com/gpu": "2"}}}


def _gpu_pod(name: str, node: str, uuid: str | None) -> dict[str, Any]:
    annotations = {keys.ACCELERATORS_ANNOTATION: uuid} if uuid else {}
    return {
        "metadata": {"name": name, "namespace": "team", "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": "Running"},
    }


def test_watches_what_it_needs(model: sleeper_cache.SleeperCache, caches: dict[str, FakeCache]) -> None:
    assert caches["configmaps"].namespace == "fma"
    assert caches["configmaps"].field_selector == "metadata.name=gpu-map"
    assert caches["inferenceserverconfigs"].namespace == "team"
    assert caches["pods"].namespace is None
    assert not model.synced
    assert sorted(model.wait_synced(0.01)) == [
        "configmaps",
        "inferenceserverconfigs",
        "launcherconfigs",
        "nodes",
        "pods",
    ]
    model.start()
    assert model.wait_synced(0.01) == []
    assert model.synced


def test_views_are_memoised_and_invalidated_per_node(
    model: sleeper_cache.SleeperCache, caches: dict[str, FakeCache]
) -> None:
    caches["nodes"].put(_node("a"))
    caches["nodes"].put(_node("b"))
    caches["configmaps"].put(
        {"metadata": {"name": "gpu-map", "namespace": "fma"}, "data": {"a": json.dumps({"GA0": 0, "GA1": 1})}}
    )
    assert model.node("ghost") is None
    first = model.node("a")
    assert first is not None
    assert first.gpus == ("GA0", "GA1")
    assert model.node("a") is first
    b_view = model.node("b")

    caches["pods"].put(_gpu_pod("r1", "a", "GA1"))
    second = model.node("a")
    assert second is not first
    assert second is not None
    assert second.held == frozenset({"GA1"})
    assert model.node("b") is b_view, "a change on node a must not rebuild node b"

    status_only = _gpu_pod("r1", "a", "GA1")
    status_only["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    caches["pods"].put(status_only)
    assert model.node("a") is second, "a status-only update must not rebuild the view"
    caches["nodes"].put(_node("a", version="2"))
    assert model.node("a") is second, "a heartbeat must not rebuild the view"
    relabelled = _node("a", version="3")
    relabelled["metadata"]["labels"] = {"pool": "x"}
    caches["nodes"].put(relabelled)
    second = model.node("a")  # rebuilt on a label change
    assert second is not None
    assert second.labels == {"pool": "x"}

    caches["configmaps"].put(
        {"metadata": {"name": "gpu-map", "namespace": "fma"}, "data": {"a": json.dumps({"GX": 0})}}
    )
    third = model.node("a")
    assert third is not None
    assert third.gpus == ("GX",)


def test_summaries_follow_the_resource_version(model: sleeper_cache.SleeperCache, caches: dict[str, FakeCache]) -> None:
    config = inference_server_config.ModelServerConfig(port=8005, options="--model m")
    isc: dict[str, Any] = {
        "apiVersion": crds.kinds.API_VERSION,
        "kind": "InferenceServerConfig",
        "metadata": {"name": "isc", "namespace": "team", "resourceVersion": "1"},
        "spec": {"modelServerConfig": config.to_raw(), "launcherConfigName": "lc"},
    }
    caches["inferenceserverconfigs"].put(isc)
    summary = model.server_config("team", "isc")
    assert summary is not None
    assert summary.config_key == crds.config_key(config)
    assert model.server_config("team", "isc") is summary
    changed = dict(isc, metadata=dict(isc["metadata"], resourceVersion="2"))
    changed["spec"] = dict(isc["spec"], modelServerConfig={"port": 9000})
    caches["inferenceserverconfigs"].put(changed)
    updated = model.server_config("team", "isc")
    assert updated is not None
    assert updated.port == 9000
    assert model.server_config("team", "missing") is None
    caches["launcherconfigs"].put(
        {
            "apiVersion": crds.kinds.API_VERSION,
            "kind": "LauncherConfig",
            "metadata": {"name": "lc", "namespace": "team", "resourceVersion": "5"},
            "spec": {
                "maxInstances": 3,
                "podTemplate": {
                    "spec": {"containers": [{"name": "inference-server"}], "nodeSelector": {"pool": "gpu"}}
                },
            },
        }
    )
    lc = model.launcher_config("team", "lc")
    assert lc is not None
    assert (lc.max_instances, dict(lc.node_selector)) == (3, {"pool": "gpu"})
    caches["launcherconfigs"].put({"metadata": {"name": "bad", "namespace": "team"}, "spec": {}})
    assert model.launcher_config("team", "bad") is None


def test_relevant_nodes_come_from_the_pod_index(
    model: sleeper_cache.SleeperCache, caches: dict[str, FakeCache]
) -> None:
    inventory = json.dumps(
        {"v": 1, "revision": 1, "instances": [{"id": "I1i", "configKey": "Ck", "gpus": ["G"], "status": "running"}]}
    )
    caches["pods"].put(
        {
            "metadata": {
                "name": "l1",
                "namespace": "team",
                "labels": {keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: "a"},
                "annotations": {keys.INSTANCES_ANNOTATION: inventory},
            },
            "spec": {"nodeSelector": {"kubernetes.io/hostname": "a"}},
        }
    )
    caches["pods"].put(
        {
            "metadata": {"name": "l2", "namespace": "team", "labels": {keys.LAUNCHER_CONFIG_NAME_LABEL: "lc2"}},
            "spec": {"nodeName": "b"},
        }
    )
    caches["pods"].put(_gpu_pod("r1", "c", None))
    launcher_mode = sleeper_scoring.Demand(
        namespace="team", pod="r", mode=sleeper_scoring.Mode.LAUNCHER, gpus=1, config_key="Ck", launcher_config="lc2"
    )
    assert model.relevant_nodes(launcher_mode) == frozenset({"a", "b"})
    other_namespace = dataclasses.replace(launcher_mode, namespace="elsewhere")
    assert model.relevant_nodes(other_namespace) == frozenset()


def test_malformed_inventory_is_counted_once_per_value_and_ignored(caches: dict[str, FakeCache]) -> None:
    counted: list[int] = []

    def factory(api: object, resource: resources.Resource, **kwargs: Any) -> FakeCache:
        cache = FakeCache(api, resource, **kwargs)
        caches[resource.plural] = cache
        return cache

    model = sleeper_cache.SleeperCache(
        object(),  # type: ignore[arg-type]  # the fake API is never called
        cache_factory=factory,
        on_malformed_inventory=lambda: counted.append(1),
    )
    caches["nodes"].put(_node("a"))
    launcher = {
        "metadata": {
            "name": "l1",
            "namespace": "team",
            "labels": {keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: "a"},
            "annotations": {keys.INSTANCES_ANNOTATION: "{not json"},
        },
        "spec": {"nodeName": "a", "containers": [{}]},
        "status": {"phase": "Running"},
    }
    caches["pods"].put(launcher)
    assert len(counted) == 1
    caches["pods"].put(dict(launcher, status={"phase": "Running", "podIP": "10.0.0.1"}))
    assert len(counted) == 1, "an unchanged bad value is not counted again"
    view = model.node("a")
    assert view is not None
    assert [item.name for item in view.launchers] == ["l1"]
    assert view.launchers[0].instances == ()
    assert view.sleepers() == []
