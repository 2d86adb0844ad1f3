"""Deletion ordering and readiness-relay decisions, as tables."""

from __future__ import annotations

import pytest

from controllers import requester_plan as plan

GRACE = plan.RELAY_GRACE_S


@pytest.mark.parametrize(
    ("provider", "steps"),
    [
        pytest.param("none", ("remove-requester-finalizer",), id="unbound"),
        pytest.param("healthy", ("unbind", "remove-requester-finalizer"), id="bound-unbind-first"),
        pytest.param(
            "deleting", ("release-provider-finalizer", "wait-for-provider"), id="provider-deleting-is-waited-for"
        ),
        pytest.param("troubled", ("delete-provider", "wait-for-provider"), id="troubled-provider-deleted-not-kept"),
    ],
)
def test_deletion_steps(provider: plan.ProviderState, steps: tuple[str, ...]) -> None:
    assert plan.deletion_steps(provider) == steps


@pytest.mark.parametrize("provider", ["none", "deleting", "troubled", "healthy"])
def test_the_requester_finalizer_goes_only_when_nothing_is_bound(provider: plan.ProviderState) -> None:
    steps = plan.deletion_steps(provider)
    if "remove-requester-finalizer" in steps:
        assert steps[-1] == "remove-requester-finalizer"
        assert provider in ("none", "healthy"), "only after a completed unbind or with no provider"
    else:
        assert "wait-for-provider" in steps


@pytest.mark.parametrize(
    ("serving", "requester_ready", "relayed_before", "expected"),
    [
        pytest.param(
            True, False, False, plan.RelayDecision("become-ready", True, True, GRACE), id="first-ready-observed"
        ),
        pytest.param(
            True, False, True, plan.RelayDecision("become-ready", False, False, GRACE), id="ready-again-not-observed"
        ),
        pytest.param(
            False, True, True, plan.RelayDecision("become-unready", False, False, GRACE), id="engine-lost-unready"
        ),
        pytest.param(True, True, False, plan.RelayDecision(None, False, True), id="already-ready-after-restart"),
        pytest.param(True, True, True, plan.RelayDecision(None, False, False), id="steady-ready"),
        pytest.param(False, False, False, plan.RelayDecision(None, False, False), id="still-starting"),
    ],
)
def test_relay_decision(
    serving: bool, requester_ready: bool, relayed_before: bool, expected: plan.RelayDecision
) -> None:
    assert (
        plan.relay_decision(serving=serving, requester_ready=requester_ready, relayed_before=relayed_before) == expected
    )


def _facts(**overrides: object) -> plan.BoundFacts:
    base: dict[str, object] = {
        "launcher_failed": False,
        "launcher_reachable": True,
        "instance_known": False,
        "engine_answered": False,
        "path": None,
    }
    return plan.BoundFacts(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "action"),
    [
        pytest.param(_facts(launcher_failed=True), "delete-requester-launcher-failed", id="launcher-failed"),
        pytest.param(_facts(launcher_reachable=False), "wait-for-launcher", id="launcher-not-ready"),
        pytest.param(_facts(), "look-at-instance", id="instance-unknown-look"),
        pytest.param(_facts(instance="missing"), "create-instance", id="missing-never-seen-create"),
        pytest.param(
            _facts(instance="missing", instance_known=True), "delete-requester-instance-vanished", id="vanished"
        ),
        pytest.param(
            _facts(instance="stopped", path="warm"), "report-start-failure-and-delete-requester", id="warm-start-failed"
        ),
        pytest.param(
            _facts(instance="stopped", path="cold"), "report-start-failure-and-delete-requester", id="cold-start-failed"
        ),
        pytest.param(_facts(instance="stopped", path="hot"), "delete-requester-instance-stopped", id="hot-stopped"),
        pytest.param(
            _facts(instance="stopped", path="warm", engine_answered=True),
            "delete-requester-instance-stopped",
            id="stopped-after-answering",
        ),
        pytest.param(_facts(instance="running"), "ask-engine", id="running-ask"),
        pytest.param(_facts(instance="running", published="ready"), "ask-engine", id="published-ready-ask"),
        pytest.param(
            _facts(instance="running", published="starting"), "wait-for-engine", id="published-starting-no-call"
        ),
        pytest.param(_facts(instance="running", engine="no-answer"), "wait-for-engine", id="loading-wait"),
        pytest.param(_facts(instance="running", engine="sleeping"), "wake", id="sleeping-wake"),
        pytest.param(_facts(instance="running", engine="awake"), "serve", id="awake-serve"),
    ],
)
def test_bound_step(facts: plan.BoundFacts, action: plan.BoundAction) -> None:
    assert plan.bound_step(facts) == action


@pytest.mark.parametrize(
    ("last_call", "since", "expected"),
    [
        pytest.param(None, None, plan.RelayDecision("become-ready", True, True, GRACE), id="first-call"),
        pytest.param("become-ready", 1.0, plan.RelayDecision(None, False, False, GRACE - 1.0), id="within-grace-wait"),
        pytest.param("become-ready", GRACE, plan.RelayDecision("become-ready", True, True, GRACE), id="grace-over"),
        pytest.param(
            "become-unready", 1.0, plan.RelayDecision("become-ready", True, True, GRACE), id="other-call-not-held"
        ),
    ],
)
def test_a_relay_is_not_repeated_within_its_grace(
    last_call: str | None, since: float | None, expected: plan.RelayDecision
) -> None:
    decision = plan.relay_decision(
        serving=True,
        requester_ready=False,
        relayed_before=False,
        last_call=last_call,  # type: ignore[arg-type]
        since_last_call=since,
    )
    assert decision == expected
