"""InferenceServerConfig status (docs/api.md, "Status"), computed without a cluster, as tables."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from controllers import isc_status

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)

GOOD_LC: dict[str, Any] = {
    "metadata": {"name": "lc", "namespace": "ns", "uid": "uid-lc", "generation": 1},
    "spec": {"maxInstances": 1, "podTemplate": {"spec": {"containers": [{"name": "inference-server"}]}}},
}
BAD_LC: dict[str, Any] = {
    **GOOD_LC,
    "spec": {"maxInstances": 1, "podTemplate": {"spec": {"containers": [{"name": "x"}]}}},
}


def isc(
    *, lc: str = "lc", labels: dict[str, str] | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "metadata": {"name": "isc", "namespace": "ns", "generation": 3},
        "spec": {"launcherConfigName": lc, "modelServerConfig": {"port": 8005, "labels": labels or {}}},
    }
    if status is not None:
        raw["status"] = status
    return raw


def summary(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("raw", "lc", "failures", "conditions", "errors"),
    [
        pytest.param(
            isc(),
            GOOD_LC,
            [],
            {"Accepted": ("True", "Valid"), "ResolvedRefs": ("True", "RefsResolved")},
            [],
            id="valid",
        ),
        pytest.param(
            isc(lc="gone"),
            None,
            [],
            {"Accepted": ("True", "Valid"), "ResolvedRefs": ("False", "LauncherConfigNotFound")},
            ['LauncherConfig "gone" does not exist'],
            id="lc-missing",
        ),
        pytest.param(
            isc(),
            BAD_LC,
            [],
            {"Accepted": ("True", "Valid"), "ResolvedRefs": ("False", "LauncherConfigMalformed")},
            ['LauncherConfig "lc" is malformed: container "inference-server" not found'],
            id="lc-malformed",
        ),
        pytest.param(
            isc(labels={"bad key!": "v"}),
            GOOD_LC,
            [],
            {"Accepted": ("False", "InvalidSpec"), "ResolvedRefs": ("True", "RefsResolved")},
            None,
            id="bad-routing-label",
        ),
        pytest.param(
            isc(),
            GOOD_LC,
            [isc_status.StartFailure("n1", 2, "exit 1"), isc_status.StartFailure("n2", 1, "oom")],
            {"Accepted": ("True", "Valid"), "ResolvedRefs": ("True", "RefsResolved")},
            [
                "engine start failed 2 time(s) on node n1: exit 1",
                "engine start failed 1 time(s) on node n2: oom",
            ],
            id="start-failures",
        ),
    ],
)
def test_status_table(
    raw: dict[str, Any],
    lc: dict[str, Any] | None,
    failures: list[isc_status.StartFailure],
    conditions: dict[str, tuple[str, str]],
    errors: list[str] | None,
) -> None:
    plan = isc_status.compute(raw, lc, failures, T0)
    assert plan.status is not None
    assert plan.status["observedGeneration"] == 3
    assert summary(plan.status) == conditions
    if errors is None:  # the routing-metadata wording belongs to crds.metadata_rules
        assert plan.status["errors"]
        assert "bad key!" in plan.status["errors"][0]
        assert plan.status["conditions"][0]["message"] == "; ".join(plan.status["errors"])
    else:
        assert plan.status["errors"] == errors
    for condition in plan.status["conditions"]:
        assert condition["observedGeneration"] == 3
        assert condition["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_nothing_to_write_when_the_stored_status_says_the_same() -> None:
    first = isc_status.compute(isc(), GOOD_LC, [], T0).status
    assert first is not None
    again = isc_status.compute(isc(status=first), GOOD_LC, [], T1)
    assert again.status is None
    assert again.event is None


def test_transition_time_holds_while_a_condition_keeps_its_status() -> None:
    first = isc_status.compute(isc(), GOOD_LC, [], T0).status
    assert first is not None
    failing = isc_status.compute(isc(status=first), GOOD_LC, [isc_status.StartFailure("n1", 1, "x")], T1)
    assert failing.status is not None, "a new error is written"
    times = {c["type"]: c["lastTransitionTime"] for c in failing.status["conditions"]}
    assert times == {"Accepted": "2026-01-01T12:00:00Z", "ResolvedRefs": "2026-01-01T12:00:00Z"}
    broken = isc_status.compute(isc(status=first), None, [], T1).status
    assert broken is not None
    times = {c["type"]: c["lastTransitionTime"] for c in broken["conditions"]}
    assert times == {"Accepted": "2026-01-01T12:00:00Z", "ResolvedRefs": "2026-01-01T12:05:00Z"}


def test_a_new_problem_raises_one_warning_event() -> None:
    plan = isc_status.compute(isc(lc="gone"), None, [], T0)
    assert plan.event is not None
    assert (plan.event.reason, plan.event.message) == ("LauncherConfigNotFound", 'LauncherConfig "gone" does not exist')
    assert plan.status is not None
    assert isc_status.compute(isc(lc="gone", status=plan.status), None, [], T1).event is None


def test_a_spec_without_fields_reads_as_an_empty_launcher_config_name() -> None:
    plan = isc_status.compute({"metadata": {"name": "isc", "generation": 1}}, None, [], T0)
    assert plan.status is not None
    assert plan.status["errors"] == ['LauncherConfig "" does not exist']
