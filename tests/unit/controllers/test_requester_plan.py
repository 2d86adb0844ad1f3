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
            "deleting", ("release-provider-finalizer", "remove-requester-finalizer"), id="provider-already-deleting"
        ),
        pytest.param(
            "troubled",
            ("delete-provider", "release-provider-finalizer", "remove-requester-finalizer"),
            id="troubled-provider-deleted-not-kept",
        ),
    ],
)
def test_deletion_steps(provider: plan.ProviderState, steps: tuple[str, ...]) -> None:
    assert plan.deletion_steps(provider) == steps
    assert plan.deletion_steps(provider)[-1] == "remove-requester-finalizer", "the finalizer always goes last"


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
