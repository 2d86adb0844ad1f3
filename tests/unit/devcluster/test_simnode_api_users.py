"""Heartbeats and status-only Pods send the right requests (against a fake API seam)."""

from __future__ import annotations

import threading
from typing import Any

import kube
from devcluster import waiting
from devcluster.simnode import fleet, heartbeat, node_ledger, pod, status_only


class FakeApi:
    """Records requests; answers 404 for paths listed in ``missing`` (once each)."""

    server = "https://127.0.0.1:6443"

    def __init__(self, missing: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.missing = set(missing or ())
        self.lock = threading.Lock()

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((method, path, body))
            if path in self.missing:
                self.missing.discard(path)
                raise kube.errors.NotFound(404, "NotFound", f"{path} not found")
        return {}


NODES = fleet.plan(prefix="n", nodes=0, status_only_nodes=2, gpus_per_node=1, gpu_product="X", gpu_memory_mib=1)
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def test_lease_renewal_patches_and_recreates_a_missing_lease() -> None:
    api = FakeApi(missing={f"{LEASE}/n-so-0"})
    beat = heartbeat.Heartbeat(api, NODES, {"n-so-0": "uid-0"}, workers=1)  # type: ignore[arg-type]
    beat.beat(0, "n-so-0")
    beat.beat(0, "n-so-1")
    beat.beat(1, "n-so-1")
    methods = [(m, p) for m, p, _ in api.calls]
    assert methods == [
        ("PATCH", f"{LEASE}/n-so-0"),
        ("POST", LEASE),
        ("PATCH", f"{LEASE}/n-so-1"),
        ("PATCH", "/api/v1/nodes/n-so-1/status"),
    ]
    created = api.calls[1][2]
    assert created["metadata"]["ownerReferences"][0]["uid"] == "uid-0"
    assert created["spec"]["leaseDurationSeconds"] == fleet.LEASE_DURATION_SECONDS
    conditions = api.calls[3][2]["status"]["conditions"]
    assert all("lastTransitionTime" not in c for c in conditions)
    assert beat.renewals == 3


def test_heartbeat_thread_renews_every_node_then_stops() -> None:
    api = FakeApi()
    beat = heartbeat.Heartbeat(api, NODES, {}, workers=2, renew_seconds=0.2)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=beat.run, args=(stop,))
    thread.start()

    def renewed_twice() -> bool:
        with api.lock:
            paths = [p for m, p, _ in api.calls if m == "PATCH" and p.startswith(LEASE)]
        return all(paths.count(f"{LEASE}/{n.name}") >= 2 for n in NODES)

    waiting.wait_for(renewed_twice, timeout=10, what="two renewals per node")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def _pod(uid: str, node: str, deleting: bool = False) -> pod.Pod:
    meta: dict[str, Any] = {"name": uid, "namespace": "ns", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return pod.Pod.model_validate({"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "c"}]}})


def test_status_only_worker_reports_running_and_deletes_at_once() -> None:
    api = FakeApi()
    nodes = {n.name: n for n in NODES}
    ledgers = {n.name: node_ledger.NodeLedger(n) for n in NODES}
    worker = status_only.StatusOnlyWorker(api, nodes, ledgers)  # type: ignore[arg-type]
    worker.update("a", _pod("a", "n-so-1"))
    worker.update("b", _pod("b", "n-so-1", deleting=True))
    worker.update("a", _pod("a", "n-so-1"))
    worker.close()
    worker.run(threading.Event())
    patches = [(p, b) for m, p, b in api.calls if m == "PATCH"]
    assert len(patches) == 1, "an unchanged status is not sent twice"
    path, body = patches[0]
    assert path == "/api/v1/namespaces/ns/pods/a/status"
    assert body["status"]["phase"] == "Running"
    a, b = nodes["n-so-1"].block
    assert body["status"]["podIP"] == f"127.{a}.{b}.2"
    deletes = [(p, b) for m, p, b in api.calls if m == "DELETE"]
    assert deletes == [
        (
            "/api/v1/namespaces/ns/pods/b",
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": "b"}},
        )
    ]
