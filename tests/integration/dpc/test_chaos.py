"""Chaos: the controller dies mid-actuation; leadership moves between replicas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devcluster import processes, waiting
from kube import resources

from .conftest import ENGINE_OPTIONS, Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def _bound_launchers(harness: Harness) -> list[dict[str, Any]]:
    return [p for p in harness.launchers() if P + "requester" in (p["metadata"].get("annotations") or {})]


def test_killing_the_controller_between_bind_and_wake_loses_nothing(harness: Harness) -> None:
    harness.launcher_config()
    # A slow engine start widens the window between the bind write and the wake.
    harness.isc("isc1", options=ENGINE_OPTIONS.replace("--sim-startup-seconds 0.3", "--sim-startup-seconds 8"))
    harness.start_controller()
    harness.deployment("r1", "isc1", replicas=2)
    waiting.wait_for(lambda: len(_bound_launchers(harness)) == 2, timeout=60, what="both requesters bound")
    assert not [p for p in harness.requesters("r1") if _ready(p)], "killed before any engine answered"
    harness.stop_controller(kill=True)
    harness.start_controller()

    def both_ready() -> list[dict[str, Any]] | None:
        items = harness.requesters("r1")
        return items if len(items) == 2 and all(_ready(p) for p in items) else None

    requesters = waiting.wait_for(both_ready, timeout=90, what="both requesters Ready after the restart")
    launchers = _bound_launchers(harness)
    assert len(launchers) == 2
    records = sorted(p["metadata"]["annotations"][P + "requester"] for p in launchers)
    assert records == sorted(f"{r['metadata']['uid']} {r['metadata']['name']}" for r in requesters)
    gpus = [r["metadata"]["annotations"][P + "accelerators"] for r in requesters]
    assert len(set(gpus)) == 2, "no GPU is used twice"
    for launcher in launchers:
        listing = harness.launcher_instances(launcher)["instances"]
        assert [i["instance_id"] for i in listing] == [launcher["metadata"]["annotations"][P + "instance-id"]]


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or []
    )


def test_leader_failover_between_two_replicas(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    lease_flags = ("--leader-elect", "true", "--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "0.5")
    replicas = []
    for identity in ("replica-a", "replica-b"):
        port = processes.free_port()
        argv = harness.controller_argv(port, *lease_flags, "--identity", identity)
        record = processes.spawn(identity, argv, harness.workdir / f"{identity}.log")
        replicas.append((identity, record, port))
    try:
        for _identity, _record, port in replicas:
            waiting.wait_for(
                lambda p=port: httpx.get(f"http://127.0.0.1:{p}/readyz", timeout=2).status_code == 200,
                timeout=60,
                what="a replica ready",
                ignore=(httpx.HTTPError,),
            )

        def holder() -> str:
            lease = harness.api.get_or_none(resources.LEASES, "fma-controllers", harness.namespace)
            return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

        leader = waiting.wait_for(holder, timeout=30, what="a leader")
        harness.deployment("r1", "isc1")
        harness.ready_requester("r1")
        # Kill the leader without a chance to release the lease: the other must take over.
        for identity, record, _port in replicas:
            if identity == leader:
                processes.stop(record, grace_seconds=0)
        waiting.wait_for(lambda: holder() not in ("", leader), timeout=30, what="the standby to take the lease")
        harness.deployment("r2", "isc1")
        harness.ready_requester("r2")
    finally:
        for _identity, record, _port in replicas:
            processes.stop(record, grace_seconds=5)
