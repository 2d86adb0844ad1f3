"""Two failure behaviours of ``fma-controllers`` with real processes: start-failure back-off, lost lease.

- An engine that exits before it ever answered is reported on the requester,
  the requester is replaced, and the next start of that configuration on
  that node waits 10 s, then 20 s, ... (at most 600 s) — retried, never a
  tight loop (docs/controllers.md, "Failures and back-off").
- A leader whose Lease is taken by another holder stops reconciling and
  exits with status 1 once its renew deadline passes, without writing the
  Lease back (docs/controllers.md, "Leader election").
"""

from __future__ import annotations

import datetime
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting
from kube import resources

from .conftest import ENGINE_OPTIONS, Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"
# The engine simulator refuses a negative start-up time and exits with status 2 before serving.
FAILING_OPTIONS = ENGINE_OPTIONS + " --sim-startup-seconds -1"


def test_an_engine_that_fails_to_start_is_retried_with_growing_back_off(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("broken", options=FAILING_OPTIONS)
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.deployment("r1", "broken", node=node)

    def creates() -> float:
        return harness.metric_count("fma_http_latency_seconds_count", purpose="create_instance")

    # Each attempt is one PUT of the instance; record when the controller made the 1st, 2nd and 3rd.
    attempts: list[float] = []
    for n, timeout in ((1, 90), (2, 60), (3, 90)):
        waiting.wait_for(_at_least(creates, n), timeout=timeout, what=f"start attempt {n}", interval=0.05)
        attempts.append(time.monotonic())
        assert creates() == n, "attempts must not bunch up"
    first_gap, second_gap = attempts[1] - attempts[0], attempts[2] - attempts[1]
    # 10 s after the first failure, then 20 s after the second (the failure itself comes after its PUT).
    assert first_gap >= 10 - 0.2, first_gap
    assert second_gap >= 20 - 0.2, second_gap
    assert second_gap > first_gap
    assert first_gap < 10 + 45, "retried, not abandoned"

    # Each failure was reported on its requester as a Warning Event with the exit code and the log tail.
    def failure_events() -> list[str]:
        items, _ = harness.api.list_all(resources.EVENTS, harness.namespace)
        return [
            str(e.get("message"))
            for e in items
            if e.get("reason") == "ActuationFailed" and "stopped before it ever answered (exit code 2)" in str(e)
        ]

    messages = waiting.wait_for(failure_events, timeout=30, what="ActuationFailed Events for the start failures")
    assert any("startup_seconds" in m for m in messages), messages
    # The launcher counted the engine's own exits, and no attempt ever became ready.
    launchers = harness.launchers()
    assert len(launchers) == 1, "every retry reuses the one launcher"
    text = httpx.get(f"http://{launchers[0]['status']['podIP']}:8001/metrics", timeout=10).text
    exits = [line for line in text.splitlines() if line.startswith("fma_launcher_instance_unsolicited_exits_total ")]
    assert exits, text
    assert float(exits[0].split()[1]) >= 2
    assert harness.metric_count("fma_actuation_seconds_count", isc_name="broken") == 0


def _at_least(count: Callable[[], float], n: int) -> Callable[[], bool]:
    return lambda: count() >= n


def _lease(harness: Harness) -> dict[str, Any] | None:
    lease: dict[str, Any] | None = harness.api.get_or_none(resources.LEASES, "fma-controllers", harness.namespace)
    return lease


def _holder(harness: Harness) -> str:
    lease = _lease(harness) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_a_leader_that_loses_its_lease_exits_with_status_1(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    port = processes.free_port()
    argv = harness.controller_argv(
        port,
        *("--leader-elect", "true", "--identity", "replica-a"),
        *("--lease-duration", "6", "--renew-deadline", "3", "--retry-period", "0.5"),
    )
    log_path = harness.workdir / "replica-a.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        waiting.wait_for(lambda: _holder(harness) == "replica-a", timeout=60, what="replica-a to lead")
        # It acts as the leader: a requester gets served.
        harness.deployment("r1", "isc1")
        harness.ready_requester("r1")
        assert process.poll() is None

        # Another candidate takes the Lease over (an optimistic update, as a real one would write it).
        lease = _lease(harness)
        assert lease is not None
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = dict(lease["spec"])
        spec.update({"holderIdentity": "replica-b", "acquireTime": now, "renewTime": now})
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        taken_at = time.monotonic()
        harness.api.replace(resources.LEASES, {**lease, "spec": spec})

        waiting.wait_for(lambda: process.poll() is not None, timeout=30, what="replica-a to exit")
        code = process.returncode
        exited_after = time.monotonic() - taken_at
        log_text = log_path.read_text(errors="replace")
        assert code == 1, log_text[-3000:]
        assert exited_after < 3 + 15, exited_after  # the renew deadline, plus shutdown
        assert "stopped leading" in log_text
        assert "shutting down" in log_text
        # It neither took the Lease back nor released it: the new holder keeps it.
        assert _holder(harness) == "replica-b"
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)
