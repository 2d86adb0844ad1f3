"""Every branch of launcher selection (docs/controllers.md, "Launcher mode"), as a table."""

from __future__ import annotations

import pytest

from controllers import launcher_selection as sel

TARGET = "Itargeti"
PORT = 8005


def inst(instance_id: str, port: int | None = 8006, stopped: bool = False) -> sel.InstanceView:
    return sel.InstanceView(instance_id, port, stopped)


def cand(name: str, *instances: sel.InstanceView, ready: bool = True, unusable: bool = False) -> sel.Candidate:
    return sel.Candidate(name=name, ready=ready, unusable=unusable, instances=tuple(instances))


LRU = {("a", "old"): 1.0, ("a", "new"): 5.0, ("b", "older"): 0.5, ("b", "x"): 9.0, ("c", "p1"): 2.0}


@pytest.mark.parametrize(
    ("candidates", "max_instances", "expected"),
    [
        pytest.param([], 2, sel.Choice("new"), id="no-candidates-new"),
        pytest.param([cand("a", inst(TARGET, PORT))], 1, sel.Choice("hot", "a"), id="hot"),
        pytest.param(
            [cand("a", inst("other")), cand("b", inst(TARGET, PORT))],
            2,
            sel.Choice("hot", "b"),
            id="hot-beats-capacity",
        ),
        pytest.param(
            [cand("a", inst(TARGET, PORT, stopped=True))],
            2,
            sel.Choice("reclaim", "a", (TARGET,)),
            id="stopped-target-is-not-hot",
        ),
        pytest.param([cand("a", inst("x"))], 2, sel.Choice("capacity", "a"), id="capacity"),
        pytest.param([cand("a", inst("x", PORT))], 3, sel.Choice("reclaim", "a", ("x",)), id="port-clash-reclaims"),
        pytest.param(
            [cand("a", inst("old"), inst("new"))], 2, sel.Choice("reclaim", "a", ("old",)), id="full-reclaims-lru"
        ),
        pytest.param(
            [cand("a", inst("old"), inst("new")), cand("b", inst("older"))],
            2,
            sel.Choice("capacity", "b"),
            id="capacity-beats-reclaim",
        ),
        pytest.param(
            [cand("a", inst("old"), inst("new")), cand("b", inst("older"), inst("x"))],
            2,
            sel.Choice("reclaim", "b", ("older",)),
            id="tie-goes-to-older-victim",
        ),
        pytest.param(
            [cand("a", inst("old"), inst("new", PORT))],
            2,
            sel.Choice("reclaim", "a", ("new",)),
            id="port-victim-counts-toward-needed",
        ),
        pytest.param(
            [cand("a", inst("old", PORT), inst("new", PORT)), cand("c", inst("p1"), inst("x2"))],
            2,
            sel.Choice("reclaim", "c", ("x2",)),
            id="fewest-victims-wins",
        ),
        pytest.param([cand("a", inst(TARGET, PORT), ready=False)], 2, sel.Choice("wait"), id="not-ready-waits"),
        pytest.param(
            [cand("a", inst(TARGET, PORT), unusable=True)], 2, sel.Choice("new"), id="bound-or-deleting-is-skipped"
        ),
        pytest.param(
            [cand("a", inst("old"), inst("new")), cand("b", ready=False)],
            2,
            sel.Choice("reclaim", "a", ("old",)),
            id="reclaim-before-waiting",
        ),
    ],
)
def test_choose(candidates: list[sel.Candidate], max_instances: int, expected: sel.Choice) -> None:
    assert sel.choose(candidates, instance_id=TARGET, port=PORT, max_instances=max_instances, last_used=LRU) == expected


def test_unknown_last_use_counts_as_least_recent() -> None:
    choice = sel.choose(
        [cand("a", inst("seen"), inst("unseen"))],
        instance_id=TARGET,
        port=PORT,
        max_instances=2,
        last_used={("a", "seen"): 3.0},
    )
    assert choice == sel.Choice("reclaim", "a", ("unseen",))


def test_cleanup_removes_stopped_and_portless_instances() -> None:
    assert sel.cleanup_needed(cand("a", inst("ok"), inst("dead", stopped=True), inst("noport", None))) == (
        "dead",
        "noport",
    )
