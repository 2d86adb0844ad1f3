"""A launcher's population phase and its next threshold crossing (docs/populator.md, "How it works"), as tables."""

from __future__ import annotations

import datetime
from typing import Any

import prometheus_client
import pytest

from controllers import launcher_phase, launcher_pod_count
from crds import keys

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
TH = launcher_phase.Thresholds(scheduling=datetime.timedelta(minutes=2), starting=datetime.timedelta(minutes=7.5))
HASH = "current-hash"
P = launcher_phase.Phase


def stamp(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    *,
    template_hash: str = HASH,
    requester: str | None = None,
    ready: bool = False,
    scheduled_at: datetime.datetime | None = None,
    created: datetime.datetime = T0,
) -> dict[str, Any]:
    annotations = {keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION: template_hash}
    if requester is not None:
        annotations[keys.REQUESTER_ANNOTATION] = requester
    conditions = []
    if scheduled_at is not None:
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(scheduled_at)})
    else:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    return {
        "metadata": {
            "name": "l",
            "creationTimestamp": stamp(created),
            "annotations": annotations,
            "labels": {
                keys.COMPONENT_LABEL: "launcher",
                keys.LAUNCHER_CONFIG_NAME_LABEL: "lc",
                keys.NODE_NAME_LABEL: "n1",
            },
        },
        "status": {"conditions": conditions},
    }


SECOND = datetime.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("the_pod", "now", "phase"),
    [
        pytest.param(pod(requester="u r", template_hash="old"), T0 + TH.scheduling, P.BOUND, id="bound-beats-stale"),
        pytest.param(pod(requester="u r"), T0 + 10 * TH.starting, P.BOUND, id="bound-beats-stuck"),
        pytest.param(pod(requester="garbage"), T0, P.UNBOUND, id="garbage-record-is-unbound"),
        pytest.param(pod(template_hash="old", ready=True), T0, P.STALE, id="stale-beats-ready"),
        pytest.param(pod(ready=True, scheduled_at=T0), T0 + 10 * TH.starting, P.UNBOUND, id="ready"),
        pytest.param(pod(scheduled_at=T0), T0 + TH.starting - SECOND, P.UNBOUND, id="starting-before-threshold"),
        pytest.param(pod(scheduled_at=T0), T0 + TH.starting, P.STUCK_STARTING, id="starting-at-threshold-inclusive"),
        pytest.param(pod(), T0 + TH.scheduling - SECOND, P.UNBOUND, id="scheduling-before-threshold"),
        pytest.param(pod(), T0 + TH.scheduling, P.STUCK_SCHEDULING, id="scheduling-at-threshold-inclusive"),
        pytest.param(
            pod(scheduled_at=T0 + 5 * TH.scheduling),
            T0 + 5 * TH.scheduling + SECOND,
            P.UNBOUND,
            id="scheduled-late-measures-from-scheduling",
        ),
    ],
)
def test_classify(the_pod: dict[str, Any], now: datetime.datetime, phase: launcher_phase.Phase) -> None:
    assert launcher_phase.classify(the_pod, HASH, TH, now) is phase


def test_without_a_template_hash_nothing_is_stale() -> None:
    assert launcher_phase.classify(pod(template_hash="old", ready=True), None, TH, T0) is P.UNBOUND


@pytest.mark.parametrize(
    ("the_pod", "now", "crossing"),
    [
        pytest.param(pod(), T0, T0 + TH.scheduling, id="unscheduled"),
        pytest.param(pod(scheduled_at=T0 + SECOND), T0 + SECOND, T0 + SECOND + TH.starting, id="scheduled"),
        pytest.param(pod(), T0 + TH.scheduling, None, id="already-stuck"),
        pytest.param(pod(ready=True, scheduled_at=T0), T0, None, id="ready"),
        pytest.param(pod(requester="u r"), T0, None, id="bound"),
        pytest.param(pod(template_hash="old"), T0, None, id="stale"),
    ],
)
def test_next_crossing(the_pod: dict[str, Any], now: datetime.datetime, crossing: datetime.datetime | None) -> None:
    assert launcher_phase.next_crossing(the_pod, HASH, TH, now) == crossing


@pytest.mark.parametrize(
    ("labels", "pair"),
    [
        pytest.param(
            {keys.COMPONENT_LABEL: "launcher", keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: "n"},
            ("n", "lc"),
            id="launcher",
        ),
        pytest.param({keys.COMPONENT_LABEL: "launcher", keys.LAUNCHER_CONFIG_NAME_LABEL: "lc"}, None, id="no-node"),
        pytest.param({keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: "n"}, None, id="no-component"),
        pytest.param(None, None, id="no-labels"),
    ],
)
def test_pair_of(labels: dict[str, str] | None, pair: tuple[str, str] | None) -> None:
    assert launcher_phase.pair_of({"metadata": {"labels": labels}}) == pair


def test_tally_has_every_phase() -> None:
    pods = [pod(requester="u r"), pod(template_hash="old"), pod(ready=True, scheduled_at=T0), pod()]
    counts = launcher_pod_count.tally(pods, HASH, TH, T0 + TH.scheduling)
    assert counts == {P.BOUND: 1, P.STALE: 1, P.UNBOUND: 1, P.STUCK_SCHEDULING: 1, P.STUCK_STARTING: 0}


def test_gauge_series_are_complete_or_absent() -> None:
    registry = prometheus_client.CollectorRegistry()
    gauge = launcher_pod_count.LauncherPodCount(registry)
    gauge.update("lc1", {P.BOUND: 2})
    for phase in P:
        value = registry.get_sample_value("fma_launcher_pod_count", {"lcfg_name": "lc1", "phase": phase.value})
        assert value == (2.0 if phase is P.BOUND else 0.0)
    assert gauge.names() == {"lc1"}
    gauge.remove("lc1")
    gauge.remove("lc1")
    assert registry.get_sample_value("fma_launcher_pod_count", {"lcfg_name": "lc1", "phase": "bound"}) is None
    assert gauge.names() == set()
