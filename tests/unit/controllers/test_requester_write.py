"""The requester write: one patch, no needless conflicts, one re-read when the cache lagged.

``RequesterSide.write`` merges the controller's labels and annotations
without a resourceVersion (so racing the kubelet's status updates costs
nothing), always with the UID as a precondition, and with the resourceVersion
only when it changes the finalizer list.  A conflict means the cache lagged:
it reads the Pod once and decides the write again on it.  A second conflict,
or a Pod that is gone or replaced, propagates.  The API seam is
``kube.testing.FakeClient``.
"""

from __future__ import annotations

from typing import Any

import prometheus_client
import pytest

import kube
from controllers import dpc_metrics, dpc_state, requester_side
from crds import keys
from kube import resources, testing

NS = "ns"


def _side(api: testing.FakeClient) -> requester_side.RequesterSide:
    return requester_side.RequesterSide(
        api,
        namespace=NS,
        agents=None,  # type: ignore[arg-type]  # the write makes no agent call
        events=kube.EventRecorder(api, component="test", instance="test"),
        metrics=dpc_metrics.DPCMetrics(prometheus_client.CollectorRegistry()),
        state=dpc_state.DPCState(),
    )


@pytest.fixture
def api() -> testing.FakeClient:
    fake = testing.FakeClient()
    fake.seed(
        resources.PODS,
        {
            "metadata": {
                "name": "r",
                "namespace": NS,
                "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"},
            },
            "status": {},
        },
    )
    return fake


def _pod(api: testing.FakeClient) -> dict[str, Any]:
    pod = api.stored(resources.PODS, "r", NS)
    assert pod is not None
    return pod


def _kubelet_writes(api: testing.FakeClient) -> None:
    """Someone else's write (the kubelet's status update) the cache has not seen yet."""
    api.patch(resources.PODS, "r", {"status": {"phase": "Running"}}, NS)
    api.writes.clear()


def _write(side: requester_side.RequesterSide, pod: dict[str, Any], *, finalizer: bool = True) -> dict[str, Any]:
    return side.write(pod, dual="launcher-1", instance="i1", gpus=["GPU-0"], problems=[], finalizer=finalizer)


def test_a_lagging_cache_costs_one_read_when_the_finalizer_changes(api: testing.FakeClient) -> None:
    stale = _pod(api)
    _kubelet_writes(api)
    written = _write(_side(api), stale)
    assert (len(api.writes), api.conflicts) == (1, 1), "one refused patch, then one that went through"
    assert written["metadata"]["labels"][keys.DUAL_LABEL] == "launcher-1"
    assert written["metadata"]["finalizers"] == [keys.REQUESTER_FINALIZER]
    assert written["status"] == {"phase": "Running"}


def test_labels_and_annotations_race_the_kubelet_without_a_conflict(api: testing.FakeClient) -> None:
    api.patch(resources.PODS, "r", {"metadata": {"finalizers": [keys.REQUESTER_FINALIZER]}}, NS)
    stale = _pod(api)
    _kubelet_writes(api)
    written = _write(_side(api), stale)
    assert (len(api.writes), api.conflicts) == (1, 0)
    assert "resourceVersion" not in api.writes[0].body["metadata"]
    assert written["metadata"]["annotations"][keys.ACCELERATORS_ANNOTATION] == "GPU-0"
    assert written["status"] == {"phase": "Running"}


def test_nothing_to_change_writes_nothing(api: testing.FakeClient) -> None:
    side = _side(api)
    _write(side, _pod(api))
    api.writes.clear()
    _write(side, _pod(api))
    assert api.writes == []


def test_a_second_conflict_propagates(api: testing.FakeClient) -> None:
    stale = _pod(api)
    stale["metadata"]["resourceVersion"] = "0"  # older than anything the fake will hold
    side = _side(api)
    original_get = api.get_or_none

    def also_stale(resource: resources.Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        fresh = original_get(resource, name, namespace)
        assert fresh is not None
        fresh["metadata"]["resourceVersion"] = "0"
        return fresh

    api.get_or_none = also_stale  # type: ignore[method-assign]  # the re-read is stale too
    with pytest.raises(kube.errors.Conflict):
        _write(side, stale)
    assert api.conflicts == 2


def test_a_replaced_pod_is_not_written(api: testing.FakeClient) -> None:
    stale = _pod(api)
    stale["metadata"]["uid"] = "uid-of-a-predecessor"  # deleted and recreated under the same name
    with pytest.raises(kube.errors.Conflict):
        _write(_side(api), stale, finalizer=False)
    assert api.writes == []
