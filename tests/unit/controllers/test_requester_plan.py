"""Deletion ordering and readiness-relay decisions, as tables."""

from __future__ import annotations

import pytest

from controllers import requester_plan as plan


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
        pytest.param(True, False, False, plan.RelayDecision("become-ready", True, True), id="first-ready-observed"),
        pytest.param(
            True, False, True, plan.RelayDecision("become-ready", False, False), id="ready-again-not-observed"
        ),
        pytest.param(False, True, True, plan.RelayDecision("become-unready", False, False), id="engine-lost-unready"),
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
