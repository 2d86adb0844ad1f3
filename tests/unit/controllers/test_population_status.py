"""LauncherConfig and policy status (docs/api.md, "Status") and the populator's expectations, as tables."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from controllers import population_expectations, population_status, population_target

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def lc(name: str, *, server: bool = True, status: dict[str, Any] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 4},
        "spec": {
            "maxInstances": 1,
            "podTemplate": {"spec": {"containers": [{"name": "inference-server" if server else "x"}]}},
        },
    }
    if status is not None:
        raw["status"] = status
    return raw


def lpp(counts: dict[str, int], *, expressions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    selector: dict[str, Any] = {"matchLabels": {"gpu": "yes"}}
    if expressions is not None:
        selector = {"matchExpressions": expressions}
    return {
        "metadata": {"name": "p", "namespace": "ns", "generation": 2},
        "spec": {
            "enhancedNodeSelector": {"labelSelector": selector},
            "countForLauncher": [{"launcherConfigName": k, "launcherCount": v} for k, v in counts.items()],
        },
    }


MALFORMED = 'LauncherConfig "bad" referenced in CountForLauncher is malformed: container "inference-server" not found'
CONFIGS = {name: population_target.read_config(raw) for name, raw in (("a", lc("a")), ("bad", lc("bad", server=False)))}


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_valid_config_status() -> None:
    raw = lc("a")
    plan = population_status.config_status(raw, CONFIGS["a"], T0)
    assert plan.status is not None
    assert plan.status["observedGeneration"] == 4
    assert plan.status["errors"] == []
    assert conditions(plan.status) == {"Accepted": ("True", "Valid")}
    assert plan.status["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert plan.status["conditions"][0]["observedGeneration"] == 4
    assert plan.event is None


def test_malformed_config_status_and_event() -> None:
    raw = lc("bad", server=False)
    plan = population_status.config_status(raw, CONFIGS["bad"], T0)
    assert plan.status is not None
    assert plan.status["errors"] == ['container "inference-server" not found']
    assert conditions(plan.status) == {"Accepted": ("False", "InvalidSpec")}
    assert plan.event == population_status.StatusEvent("InvalidSpec", 'container "inference-server" not found')


def test_unchanged_status_is_not_written_and_keeps_transition_time() -> None:
    raw = lc("a")
    first = population_status.config_status(raw, CONFIGS["a"], T0)
    assert first.status is not None
    raw["status"] = first.status
    again = population_status.config_status(raw, CONFIGS["a"], T1)
    assert again == population_status.StatusPlan(status=None, event=None)
    raw["metadata"]["generation"] = 5
    bumped = population_status.config_status(raw, CONFIGS["a"], T1)
    assert bumped.status is not None
    assert bumped.status["observedGeneration"] == 5
    assert bumped.status["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_pruned_conditions_do_not_cause_a_write_loop() -> None:
    raw = lc("a", status={"observedGeneration": 4, "errors": None})
    assert population_status.config_status(raw, CONFIGS["a"], T0).status is not None
    assert population_status.config_status(raw, CONFIGS["a"], T0, compare_conditions=False).status is None


def test_repeated_errors_give_no_new_event() -> None:
    raw = lc("bad", server=False)
    first = population_status.config_status(raw, CONFIGS["bad"], T0)
    assert first.status is not None
    raw["status"] = first.status
    assert population_status.config_status(raw, CONFIGS["bad"], T1).event is None


@pytest.mark.parametrize(
    ("raw", "errors", "accepted", "resolved"),
    [
        pytest.param(lpp({"a": 2}), [], ("True", "Valid"), ("True", "RefsResolved"), id="valid"),
        pytest.param(
            lpp({"missing": 2}),
            ['LauncherConfig "missing" referenced in CountForLauncher does not exist'],
            ("True", "Valid"),
            ("False", "LauncherConfigNotFound"),
            id="missing-lc",
        ),
        pytest.param(
            lpp({"bad": 1}),
            [MALFORMED],
            ("True", "Valid"),
            ("False", "LauncherConfigMalformed"),
            id="malformed-lc",
        ),
        pytest.param(
            lpp({"a": 1}, expressions=[{"key": "gpu", "operator": "Bogus"}]),
            ["matchExpressions[0]: 'Bogus' is not a valid label selector operator"],
            ("False", "InvalidSelector"),
            ("True", "RefsResolved"),
            id="unparsable-selector",
        ),
        pytest.param(
            lpp({"a": -1}),
            ["spec.countForLauncher[0].launcherCount: must not be negative, got -1"],
            ("False", "InvalidSpec"),
            ("True", "RefsResolved"),
            id="negative-count",
        ),
        pytest.param(
            lpp({"missing": 1, "bad": 1}),
            [
                'LauncherConfig "missing" referenced in CountForLauncher does not exist',
                MALFORMED,
            ],
            ("True", "Valid"),
            ("False", "LauncherConfigNotFound"),
            id="first-failure-names-the-reason",
        ),
    ],
)
def test_policy_status(
    raw: dict[str, Any], errors: list[str], accepted: tuple[str, str], resolved: tuple[str, str]
) -> None:
    plan = population_status.policy_status(raw, population_target.read_policy(raw), CONFIGS, T0)
    assert plan.status is not None
    assert plan.status["errors"] == errors
    assert plan.status["observedGeneration"] == 2
    assert conditions(plan.status) == {"Accepted": accepted, "ResolvedRefs": resolved}
    if errors:
        assert plan.event is not None
        assert plan.event.message == "; ".join(errors)
        assert plan.event.reason == (accepted[1] if accepted[0] == "False" else resolved[1])
    else:
        assert plan.event is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_expectations_wait_for_exact_uids() -> None:
    clock = Clock()
    store: population_expectations.Expectations[str] = population_expectations.Expectations(5.0, clock)
    store.expect("p", created=set(), deleted=set())
    assert store.get("p") is None
    store.expect("p", created={"c1", "c2"}, deleted={"d1"})
    pending = store.get("p")
    assert pending is not None
    assert store.remaining(pending) == 5.0
    d1 = {"metadata": {"uid": "d1"}}
    d1_going = {"metadata": {"uid": "d1", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    other = {"metadata": {"uid": "x"}}
    assert not population_expectations.seen(pending, {"c1": other, "d1": d1})
    assert not population_expectations.seen(pending, {"c1": other, "c2": other, "d1": d1})
    assert population_expectations.seen(pending, {"c1": other, "c2": other, "d1": d1_going})
    assert population_expectations.seen(pending, {"c1": other, "c2": other})
    clock.now += 6
    assert store.remaining(pending) < 0
    store.expect("p", created={"c3"}, deleted=set())
    merged = store.get("p")
    assert merged is not None
    assert merged.created == {"c1", "c2", "c3"}
    assert store.remaining(merged) == 5.0
    store.clear("p")
    assert store.get("p") is None
