"""``fma_start_failures_total``: one count per failed engine start, with the reason.

With the real ``fma-controllers`` and launchers running the engine simulator:

- an engine that exits before it ever answers counts once per start with
  ``reason="exited"`` (each retry after the back-off is a new start), never
  once per reconcile of the stopped instance;
- an engine still silent when ``--start-deadline`` passes counts once with
  ``reason="deadline"``, and no more when it then answers and serves.
"""

from __future__ import annotations

import pytest

from devcluster import waiting

from .conftest import ENGINE_OPTIONS, Harness

pytestmark = pytest.mark.cluster

# The engine simulator refuses a negative start-up time and exits with status 2 before serving.
FAILING_OPTIONS = ENGINE_OPTIONS + " --sim-startup-seconds -1"
# Later flags win: an engine that takes 8 s to answer.
SLOW_OPTIONS = ENGINE_OPTIONS + " --sim-startup-seconds 8"


def test_each_engine_that_exits_before_answering_counts_once(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("broken", options=FAILING_OPTIONS)
    harness.start_controller()
    harness.deployment("r1", "broken", node=harness.simnode.node_names[0])

    def failures() -> float:
        return harness.metric_count("fma_start_failures_total", isc_name="broken", reason="exited")

    def creates() -> float:
        return harness.metric_count("fma_http_latency_seconds_count", purpose="create_instance")

    waiting.wait_for(lambda: failures() >= 1, timeout=90, what="the first start failure counted", interval=0.1)
    # The next start waits out a 10 s back-off, so this failure is the only one so far.
    assert failures() == 1
    assert creates() == 1
    waiting.wait_for(lambda: failures() >= 2, timeout=90, what="the retried start's failure counted", interval=0.1)
    assert failures() == 2
    assert creates() == 2, "one count per start: the second retry waits 20 s"
    assert harness.metric_count("fma_start_failures_total", reason="deadline") == 0
    # Exported with its namespace label, as an ``_total`` counter.
    assert harness.metric_count("fma_start_failures_total", exported_namespace=harness.namespace) == 2


def test_an_engine_that_outlives_the_start_deadline_counts_once(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("slow", options=SLOW_OPTIONS)
    harness.start_controller("--start-deadline", "2")
    harness.deployment("r1", "slow", node=harness.simnode.node_names[0])

    def failures(reason: str) -> float:
        return harness.metric_count("fma_start_failures_total", isc_name="slow", reason=reason)

    waiting.wait_for(lambda: failures("deadline") >= 1, timeout=90, what="the passed deadline counted", interval=0.1)
    requester = harness.ready_requester("r1")
    assert requester["metadata"]["labels"]["dual-pods.llm-d.ai/dual"]
    assert failures("deadline") == 1
    assert failures("exited") == 0
