"""The plan for one (node, LauncherConfig) pair (docs/populator.md, "How it works"), as tables."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from controllers import launcher_phase, population_plan, population_target
from crds import keys

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
TH = launcher_phase.Thresholds(scheduling=datetime.timedelta(minutes=2), starting=datetime.timedelta(minutes=7.5))
HASH = "h1"
NOW = T0 + datetime.timedelta(minutes=10)


def stamp(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def launcher(
    name: str,
    *,
    bound: bool = False,
    stale: bool = False,
    ready: bool = True,
    scheduled: bool = True,
    age_s: int = 60,
    terminating: bool = False,
    stuck_label: bool = False,
) -> dict[str, Any]:
    created = NOW - datetime.timedelta(seconds=age_s)
    annotations = {keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION: "old" if stale else HASH}
    if bound:
        annotations[keys.REQUESTER_ANNOTATION] = f"uid-r-{name} r-{name}"
    labels = {keys.COMPONENT_LABEL: "launcher", keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: "n1"}
    if stuck_label:
        labels[keys.LAUNCHER_STUCK_LABEL] = "true"
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": f"rv-{name}",
        "creationTimestamp": stamp(created),
        "annotations": annotations,
        "labels": labels,
    }
    if terminating:
        meta["deletionTimestamp"] = stamp(NOW)
    conditions = [
        {"type": "PodScheduled", "status": "True" if scheduled else "False", "lastTransitionTime": stamp(created)},
        {"type": "Ready", "status": "True" if ready else "False"},
    ]
    return {"metadata": meta, "status": {"conditions": conditions}}


def plan(
    pods: list[dict[str, Any]], count: int, *, hands_off: bool = False, node_exists: bool = True
) -> population_plan.PairPlan:
    state = population_plan.PairState(
        node_exists=node_exists,
        target=population_target.Target(count=count, hands_off=hands_off),
        template_hash=HASH,
        pods=pods,
    )
    return population_plan.compute(state, TH, NOW)


def deleted(result: population_plan.PairPlan) -> list[tuple[str, str]]:
    return [(d.name, d.reason) for d in result.deletes]


@pytest.mark.parametrize(
    ("pods", "count", "deletes", "creates"),
    [
        pytest.param([], 2, [], 2, id="empty-node-gets-the-count"),
        pytest.param([launcher("a")], 2, [], 1, id="deficit"),
        pytest.param([launcher("a"), launcher("b")], 2, [], 0, id="converged"),
        pytest.param([launcher("a"), launcher("b", age_s=10)], 1, [("b", "excess")], 0, id="excess-newest-first"),
        pytest.param([launcher("a"), launcher("b")], 0, [("b", "excess"), ("a", "excess")], 0, id="count-zero"),
        pytest.param(
            [launcher("a", bound=True), launcher("b", bound=True), launcher("c", bound=True)],
            2,
            [],
            0,
            id="bound-above-desired-untouched",
        ),
        pytest.param(
            [launcher("a", bound=True), launcher("b", bound=True), launcher("c")],
            2,
            [("c", "excess")],
            0,
            id="bound-count-toward-desired",
        ),
        pytest.param([launcher("a", bound=True)], 2, [], 1, id="bound-plus-deficit"),
        pytest.param(
            [launcher("a", stale=True), launcher("b")], 2, [("a", "stale")], 0, id="stale-deleted-before-creating"
        ),
        pytest.param(
            [launcher("a", stale=True, bound=True), launcher("b")], 2, [], 0, id="stale-bound-untouched-and-counted"
        ),
        pytest.param(
            [launcher("a", stale=True), launcher("b"), launcher("c")],
            1,
            [("a", "stale"), ("c", "excess")],
            0,
            id="stale-and-excess-together",
        ),
        pytest.param([launcher("a", terminating=True)], 1, [], 0, id="terminating-unbound-blocks-creation"),
        pytest.param([launcher("a", terminating=True, bound=True)], 1, [], 1, id="terminating-bound-does-not-block"),
        pytest.param(
            [launcher("a", terminating=True), launcher("b"), launcher("c")],
            1,
            [("c", "excess")],
            0,
            id="terminating-not-counted",
        ),
    ],
)
def test_deletes_and_creates(
    pods: list[dict[str, Any]], count: int, deletes: list[tuple[str, str]], creates: int
) -> None:
    result = plan(pods, count)
    assert deleted(result) == deletes
    assert result.creates == creates


def test_delete_preconditions_come_from_the_observed_pod() -> None:
    result = plan([launcher("a")], 0)
    assert result.deletes == (population_plan.Delete("a", "uid-a", "rv-a", "excess"),)


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        pytest.param({"node_exists": False}, 2, id="node-missing"),
        pytest.param({"hands_off": True}, 0, id="hands-off"),
    ],
)
def test_nothing_to_do(kwargs: dict[str, Any], count: int) -> None:
    pods = [launcher("a", stale=True), launcher("b"), launcher("c", ready=False, scheduled=False, age_s=600)]
    assert plan(pods, count, **kwargs) == population_plan.PairPlan()


def test_excess_order_stuck_then_not_ready_then_newest() -> None:
    pods = [
        launcher("ready-old", age_s=500),
        launcher("ready-new", age_s=5),
        launcher("starting", ready=False, age_s=30),
        launcher("stuck-sched", ready=False, scheduled=False, age_s=400),
        launcher("stuck-start", ready=False, age_s=500),
    ]
    order = [d.name for d in plan(pods, 0).deletes]
    # within each rank the newest goes first
    assert order == ["stuck-sched", "stuck-start", "starting", "ready-new", "ready-old"]
    assert [d.name for d in plan(pods, 3).deletes] == ["stuck-sched", "stuck-start"]
    assert [d.name for d in plan(pods, 2).deletes] == ["stuck-sched", "stuck-start", "starting"]


def test_excess_ties_are_broken_by_name() -> None:
    pods = [launcher("a"), launcher("c"), launcher("b")]
    assert [d.name for d in plan(pods, 1).deletes] == ["c", "b"]


@pytest.mark.parametrize(
    ("pods", "marks", "clears"),
    [
        pytest.param(
            [launcher("a", ready=False, scheduled=False, age_s=120)],
            [("a", launcher_phase.Phase.STUCK_SCHEDULING)],
            [],
            id="becomes-stuck-scheduling",
        ),
        pytest.param(
            [launcher("a", ready=False, age_s=450)],
            [("a", launcher_phase.Phase.STUCK_STARTING)],
            [],
            id="becomes-stuck-starting",
        ),
        pytest.param(
            [launcher("a", ready=False, scheduled=False, age_s=300, stuck_label=True)], [], [], id="already-labelled"
        ),
        pytest.param([launcher("a", stuck_label=True)], [], ["a"], id="recovered"),
        pytest.param([launcher("a", ready=False, age_s=30)], [], [], id="still-starting"),
        pytest.param([launcher("a", bound=True, ready=False, age_s=900)], [], [], id="bound-never-labelled"),
    ],
)
def test_stuck_labels(
    pods: list[dict[str, Any]], marks: list[tuple[str, launcher_phase.Phase]], clears: list[str]
) -> None:
    result = plan(pods, len(pods))
    assert [(m.name, m.phase) for m in result.mark_stuck] == marks
    assert list(result.clear_stuck) == clears
    assert result.deletes == ()
    assert result.creates == 0


def test_stuck_launcher_is_kept_and_counts() -> None:
    result = plan([launcher("a", ready=False, scheduled=False, age_s=300)], 1)
    assert result.deletes == ()
    assert result.creates == 0


def test_doomed_stuck_launcher_is_not_labelled() -> None:
    result = plan([launcher("a", ready=False, scheduled=False, age_s=300), launcher("b")], 1)
    assert deleted(result) == [("a", "excess")]
    assert result.mark_stuck == ()


def test_recheck_at_the_earliest_threshold_crossing() -> None:
    pods = [
        launcher("sched", ready=False, scheduled=False, age_s=60),  # crosses in 60 s
        launcher("start", ready=False, age_s=400),  # crosses in 50 s
        launcher("ok"),
    ]
    result = plan(pods, 3)
    assert result.recheck_at == NOW + datetime.timedelta(seconds=50)
    assert plan([launcher("ok")], 1).recheck_at is None


def test_writes_flag() -> None:
    assert plan([], 1).writes
    assert plan([launcher("a")], 0).writes
    assert not plan([launcher("a")], 1).writes
    assert plan([launcher("a", terminating=True)], 1).waiting_for_deletion


def test_excess_keeps_launchers_holding_sleepers_longest() -> None:
    sleeper = launcher("sleeper", age_s=5)
    inventory = {"v": 1, "revision": 3, "instances": [{"id": "I1", "isc": "m", "status": "running"}]}
    sleeper["metadata"]["annotations"][keys.INSTANCES_ANNOTATION] = json.dumps(inventory)
    empty = launcher("empty", age_s=500)
    empty["metadata"]["annotations"][keys.INSTANCES_ANNOTATION] = json.dumps({"v": 1, "revision": 1, "instances": []})
    garbled = launcher("garbled", age_s=400)
    garbled["metadata"]["annotations"][keys.INSTANCES_ANNOTATION] = "{not json"
    # Newest first would delete "sleeper"; a sleeping instance is a future hot start, so it goes last.
    assert [d.name for d in plan([sleeper, empty, garbled], 1).deletes] == ["garbled", "empty"]
    assert [d.name for d in plan([sleeper, empty, garbled], 0).deletes] == ["garbled", "empty", "sleeper"]
