"""The Kubernetes adapter against a real apiserver: verbs, typed errors,
watch-fed caches (with relist after 410), leader election and Events."""

from __future__ import annotations

import contextlib
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


# A resource of this module's own, so that its watch cache is born late.
#
# The apiserver answers a watch from its watch cache, and the cache says 410
# only for a version older than its history: the revision of its first list,
# until its ring buffer has dropped an event.  The built-in resources' caches
# list when the apiserver starts on an empty etcd, at revision 1 or 2, so on a
# young cluster a ConfigMap watch from "1" is served, not refused; compacting
# etcd does not change that, because the cache does not read etcd for it.  A
# custom resource's cache lists when its CRD is established, after the
# cluster's bootstrap writes, so a watch from "1" is always older than its
# history.
_PROBES = resources.custom("kube-adapter.fma-test.dev", "v1", "probes", "Probe")


@pytest.fixture(scope="module")
def probes(api: kube.Client) -> Iterator[resources.Resource]:
    name = f"{_PROBES.plural}.{_PROBES.group}"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": _PROBES.group,
            "scope": "Namespaced",
            "names": {"plural": _PROBES.plural, "singular": "probe", "kind": _PROBES.kind, "listKind": "ProbeList"},
            "versions": [
                {"name": _PROBES.version, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }
    with contextlib.suppress(errors.AlreadyExists):
        api.create(resources.CUSTOM_RESOURCE_DEFINITIONS, crd)

    def established() -> bool:
        status = api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, name).get("status") or {}
        return any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions") or [])

    waiting.wait_for(established, timeout=30, what=f"CRD {name} Established")
    yield _PROBES
    api.delete(resources.CUSTOM_RESOURCE_DEFINITIONS, name)


def _watch_from(api: kube.Client, resource: resources.Resource, namespace: str, version: str) -> None:
    """Open a watch from ``version`` and close it at once; raises what the apiserver answered."""
    for _ in api.watch(resource, namespace, resource_version=version, timeout_seconds=1):
        return


def test_cache_relists_when_its_version_is_gone(api: kube.Client, namespace: str, probes: resources.Resource) -> None:
    # The precondition, from the real apiserver: version "1" is gone.  (Right
    # after the CRD is established its cache may still be loading: 429.)
    def refused_as_gone() -> bool:
        with pytest.raises(errors.Gone, match="too old resource version"):
            _watch_from(api, probes, namespace, "1")
        return True

    waiting.wait_for(
        refused_as_gone, timeout=30, what="a watch from version 1 to get 410", ignore=(errors.TooManyRequests,)
    )

    cache = kube.WatchCache(api, probes, namespace=namespace)
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert cache.relists == 1
        # Simulate a long disconnection: the server no longer has our version.
        # Nothing else touches this namespace meanwhile, so no event can
        # overwrite the version between these two statements.
        abort = waiting.wait_for(lambda: cache._abort, timeout=10, what="an open watch")
        cache.resource_version = "1"
        abort()
        probe = {"apiVersion": probes.api_version, "kind": probes.kind, "metadata": {"name": "while-away"}}
        api.create(probes, probe, namespace)
        waiting.wait_for(lambda: cache.relists >= 2, timeout=15, what="a relist after 410 Gone")
        waiting.wait_for(
            lambda: cache.get(f"{namespace}/while-away") is not None, timeout=10, what="the object created meanwhile"
        )
        assert cache.relists == 2
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
