"""A silenced node sends no heartbeat; back from the outage it reports Ready at once (fake API seam)."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

from devcluster.simnode import fleet, heartbeat

NODES = fleet.plan(prefix="n", nodes=0, status_only_nodes=2, gpus_per_node=1, gpu_product="X", gpu_memory_mib=1)
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


class FakeApi:
    server = "https://127.0.0.1:6443"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((method, path, body))
        return {}


def test_a_silenced_node_sends_nothing_and_reports_ready_when_it_comes_back(tmp_path: pathlib.Path) -> None:
    api = FakeApi()
    silent = heartbeat.silence_file(tmp_path, "n-so-0")
    beat = heartbeat.Heartbeat(
        api,  # type: ignore[arg-type]
        NODES,
        {},
        workers=1,
        silenced=lambda name: heartbeat.silence_file(tmp_path, name).exists(),
    )
    silent.parent.mkdir(parents=True)
    silent.touch()
    beat.beat(0, "n-so-0")
    beat.beat(1, "n-so-0")
    beat.beat(0, "n-so-1")
    assert [(m, p) for m, p, _ in api.calls] == [("PATCH", f"{LEASE}/n-so-1")]

    silent.unlink()
    beat.beat(0, "n-so-0")
    beat.beat(0, "n-so-0")
    paths = [p for _, p, _ in api.calls[1:]]
    # The first beat after the outage renews the Lease and reports the status (with a transition);
    # the next one is an ordinary renewal again.
    assert paths == [f"{LEASE}/n-so-0", "/api/v1/nodes/n-so-0/status", f"{LEASE}/n-so-0"]
    conditions = api.calls[2][2]["status"]["conditions"]
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert "lastTransitionTime" in ready
