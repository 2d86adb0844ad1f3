"""The Kubernetes adapter against a real apiserver: verbs, typed errors,
watch-fed caches (with relist after 410), leader election and Events."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import kube
from devcluster import control_plane, waiting
from kube import errors, resources

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def api(devcluster: control_plane.ClusterState) -> Iterator[kube.Client]:
    client = kube.connect(str(devcluster.kubeconfig), field_manager="fma-test")
    yield client
    client.close()


@pytest.fixture
def namespace(api: kube.Client) -> Iterator[str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    api.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    api.delete(resources.NAMESPACES, name)


def _cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


def test_verbs_and_typed_errors(api: kube.Client, namespace: str) -> None:
    created = api.create(resources.CONFIG_MAPS, _cm("a", x="1"), namespace)
    assert created["metadata"]["uid"]
    with pytest.raises(errors.AlreadyExists):
        api.create(resources.CONFIG_MAPS, _cm("a"), namespace)
    with pytest.raises(errors.NotFound, match='configmaps "zzz" not found'):
        api.get(resources.CONFIG_MAPS, "zzz", namespace)
    assert api.get_or_none(resources.CONFIG_MAPS, "zzz", namespace) is None

    patched = api.patch(resources.CONFIG_MAPS, "a", {"data": {"y": "2"}}, namespace)
    assert patched["data"] == {"x": "1", "y": "2"}
    json_patched = api.patch(
        resources.CONFIG_MAPS, "a", [{"op": "remove", "path": "/data/x"}], namespace, patch_type="json"
    )
    assert json_patched["data"] == {"y": "2"}

    # An update against a stale resourceVersion is a Conflict, and nothing changes.
    stale = dict(created)
    stale["data"] = {"z": "3"}
    with pytest.raises(errors.Conflict):
        api.replace(resources.CONFIG_MAPS, stale)
    assert api.get(resources.CONFIG_MAPS, "a", namespace)["data"] == {"y": "2"}

    # Delete with a stale precondition is refused; with the right one it works.
    current = api.get(resources.CONFIG_MAPS, "a", namespace)
    with pytest.raises(errors.Conflict):
        api.delete(resources.CONFIG_MAPS, "a", namespace, uid=current["metadata"]["uid"], resource_version="1")
    api.delete(
        resources.CONFIG_MAPS,
        "a",
        namespace,
        uid=current["metadata"]["uid"],
        resource_version=current["metadata"]["resourceVersion"],
    )
    assert api.get_or_none(resources.CONFIG_MAPS, "a", namespace) is None


def test_invalid_object_names_the_field(api: kube.Client, namespace: str) -> None:
    with pytest.raises(errors.Invalid) as caught:
        api.create(resources.CONFIG_MAPS, _cm("Not_A_Valid_Name"), namespace)
    assert "metadata.name" in caught.value.message


def test_list_all_follows_pages(api: kube.Client, namespace: str) -> None:
    for i in range(7):
        api.create(resources.CONFIG_MAPS, _cm(f"p{i}", {"paged": "yes"}), namespace)
    items, version = api.list_all(resources.CONFIG_MAPS, namespace, label_selector="paged=yes", page_size=3)
    assert sorted(o["metadata"]["name"] for o in items) == [f"p{i}" for i in range(7)]
    assert version


def test_cache_mirrors_changes_with_indexes_and_handlers(api: kube.Client, namespace: str) -> None:
    api.create(resources.CONFIG_MAPS, _cm("before", {"tier": "gold"}), namespace)
    seen: list[tuple[str, bool, bool]] = []
    lock = threading.Lock()

    def handler(key: str, old: Any, new: Any) -> None:
        with lock:
            seen.append((key, old is not None, new is not None))

    cache = kube.WatchCache(
        api,
        resources.CONFIG_MAPS,
        namespace=namespace,
        indexers={"tier": lambda o: [(o["metadata"].get("labels") or {}).get("tier", "")]},
    )
    cache.add_handler(handler)
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert cache.get(f"{namespace}/before") is not None
        api.create(resources.CONFIG_MAPS, _cm("after", {"tier": "gold"}), namespace)
        waiting.wait_for(lambda: len(cache.by_index("tier", "gold")) == 2, timeout=10, what="2 gold ConfigMaps")
        api.patch(resources.CONFIG_MAPS, "after", {"metadata": {"labels": {"tier": "silver"}}}, namespace)
        waiting.wait_for(
            lambda: [o["metadata"]["name"] for o in cache.by_index("tier", "silver")] == ["after"],
            timeout=10,
            what="the index to follow a label change",
        )
        assert [o["metadata"]["name"] for o in cache.by_index("tier", "gold")] == ["before"]
        api.delete(resources.CONFIG_MAPS, "before", namespace)
        waiting.wait_for(lambda: cache.get(f"{namespace}/before") is None, timeout=10, what="the delete")
        assert cache.by_index("tier", "gold") == []
        with lock:
            assert (f"{namespace}/before", True, False) in seen
            assert (f"{namespace}/after", False, True) in seen
    finally:
        cache.stop()


def test_cache_relists_when_its_version_is_gone(api: kube.Client, namespace: str) -> None:
    cache = kube.WatchCache(api, resources.CONFIG_MAPS, namespace=namespace)
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert cache.relists == 1
        # Simulate a long disconnection: the server no longer has our version.
        # (Version "1" predates the apiserver's watch cache, so the next watch
        # gets 410.)  Nothing else touches this namespace meanwhile, so no event
        # can overwrite the version between these two statements.
        abort = waiting.wait_for(lambda: cache._abort, timeout=10, what="an open watch")
        cache.resource_version = "1"
        abort()
        api.create(resources.CONFIG_MAPS, _cm("while-away"), namespace)
        waiting.wait_for(lambda: cache.relists >= 2, timeout=15, what="a relist after 410 Gone")
        waiting.wait_for(
            lambda: cache.get(f"{namespace}/while-away") is not None, timeout=10, what="the object created meanwhile"
        )
    finally:
        cache.stop()


def test_leader_election_has_one_leader_and_hands_over_on_release(api: kube.Client, namespace: str) -> None:
    events: list[str] = []

    def elector(identity: str) -> kube.LeaderElector:
        return kube.LeaderElector(
            api,
            namespace=namespace,
            name="fma-test",
            identity=identity,
            lease_duration=4.0,
            renew_deadline=3.0,
            retry_period=0.2,
            on_started_leading=lambda: events.append(f"{identity}+"),
            on_stopped_leading=lambda: events.append(f"{identity}-"),
        )

    first, second = elector("a"), elector("b")
    first.start()
    waiting.wait_for(lambda: first.is_leader, timeout=10, what="a to lead")
    second.start()
    try:
        # b keeps trying but cannot win while a renews.
        waiting.wait_for(lambda: second._observation is not None, timeout=10, what="b to see the lease")
        assert not second.is_leader
        lease = api.get(resources.LEASES, "fma-test", namespace)
        assert lease["spec"]["holderIdentity"] == "a"
        first.stop()
        assert events[:2] == ["a+", "a-"]
        # a released the lease, so b takes it at its next round, well before expiry.
        waiting.wait_for(lambda: second.is_leader, timeout=3, what="b to take over after a released")
        assert api.get(resources.LEASES, "fma-test", namespace)["spec"]["leaseTransitions"] == 1
    finally:
        first.stop()
        second.stop()


def test_events_are_recorded_and_repeats_counted(api: kube.Client, namespace: str) -> None:
    target = api.create(resources.CONFIG_MAPS, _cm("subject"), namespace)
    target = {**target, "apiVersion": "v1", "kind": "ConfigMap"}
    recorder = kube.EventRecorder(api, component="fma-test", instance="t1")
    recorder.record(target, "Warning", "BadConfig", "spec.port: must be 1..65535, got 0")
    recorder.record(target, "Warning", "BadConfig", "spec.port: must be 1..65535, got 0")
    recorder.record(target, "Normal", "Fixed", "all good")
    items, _ = api.list_all(resources.EVENTS, namespace)
    by_reason = {e["reason"]: e for e in items}
    assert by_reason["BadConfig"]["count"] == 2
    assert by_reason["BadConfig"]["type"] == "Warning"
    assert by_reason["BadConfig"]["involvedObject"]["uid"] == target["metadata"]["uid"]
    assert by_reason["Fixed"]["count"] == 1
    assert len(items) == 2
