"""The requester write survives a cache that lags someone else's write, once.

``DualPodsController.requester_write`` patches with the resourceVersion it
read.  A conflict means the cache lagged (typically the kubelet's status
update): it reads the Pod once and decides the write again on it.  A second
conflict, or a Pod that is gone or replaced, propagates.  The API seam is an
in-memory stand-in for ``kube.Client`` that enforces resourceVersion
preconditions the way the apiserver does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import prometheus_client
import pytest

import kube
from controllers import dpc_metrics, dual_pods
from crds import keys

NS = "ns"


class FakeApi:
    """Pods by name, with resourceVersion preconditions on patch; counts calls."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.patches = 0
        self.gets = 0
        self.always_conflict = False

    def patch(
        self, resource: kube.resources.Resource, name: str, body: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        self.patches += 1
        pod = self.pods[name]
        meta = body["metadata"]
        if self.always_conflict or meta["resourceVersion"] != pod["metadata"]["resourceVersion"]:
            raise kube.errors.Conflict(409, "Conflict", "the object has been modified")
        for field in ("labels", "annotations"):
            target = pod["metadata"].setdefault(field, {})
            for key, value in (meta.get(field) or {}).items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
        if "finalizers" in meta:
            pod["metadata"]["finalizers"] = list(meta["finalizers"])
        self.bump(name)
        return copy.deepcopy(pod)

    def get_or_none(
        self, resource: kube.resources.Resource, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        self.gets += 1
        pod = self.pods.get(name)
        return copy.deepcopy(pod) if pod is not None else None

    def bump(self, name: str) -> None:
        meta = self.pods[name]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)


def _controller(api: FakeApi) -> dual_pods.DualPodsController:
    return dual_pods.DualPodsController(
        api,  # type: ignore[arg-type]  # the subset requester_write uses
        settings=dual_pods.DPCSettings(namespace=NS),
        pods=None,  # type: ignore[arg-type]
        nodes=None,  # type: ignore[arg-type]
        iscs=None,  # type: ignore[arg-type]
        lcs=None,  # type: ignore[arg-type]
        gpu_maps=None,  # type: ignore[arg-type]
        agents=None,  # type: ignore[arg-type]
        events=None,  # type: ignore[arg-type]
        metrics=dpc_metrics.DPCMetrics(prometheus_client.CollectorRegistry()),
    )


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.pods["r"] = {
        "metadata": {
            "name": "r",
            "namespace": NS,
            "uid": "u1",
            "resourceVersion": "1",
            "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"},
        },
        "status": {},
    }
    return fake


def _write(controller: dual_pods.DualPodsController, pod: dict[str, Any]) -> dict[str, Any]:
    return controller.requester_write(
        pod, dual="launcher-1", instance="i1", gpus=["GPU-0"], problems=[], finalizer=True
    )


def test_a_lagging_cache_costs_one_read_not_a_failed_reconcile(api: FakeApi) -> None:
    stale = copy.deepcopy(api.pods["r"])
    api.pods["r"]["status"] = {"phase": "Running"}  # the kubelet wrote meanwhile
    api.bump("r")
    written = _write(_controller(api), stale)
    assert (api.patches, api.gets) == (2, 1)
    assert written["metadata"]["labels"][keys.DUAL_LABEL] == "launcher-1"
    assert written["metadata"]["finalizers"] == [keys.REQUESTER_FINALIZER]
    assert written["status"] == {"phase": "Running"}


def test_a_second_conflict_propagates(api: FakeApi) -> None:
    api.always_conflict = True
    with pytest.raises(kube.errors.Conflict):
        _write(_controller(api), copy.deepcopy(api.pods["r"]))
    assert (api.patches, api.gets) == (2, 1)


def test_a_replaced_pod_is_not_written(api: FakeApi) -> None:
    stale = copy.deepcopy(api.pods["r"])
    api.pods["r"]["metadata"]["uid"] = "u2"  # deleted and recreated under the same name
    api.bump("r")
    with pytest.raises(kube.errors.Conflict):
        _write(_controller(api), stale)
    assert api.patches == 1
