"""The pure leader-election decision."""

from __future__ import annotations

from typing import Any

import pytest

from kube import leader_election as le


def _lease(holder: str, renew: str = "t1") -> dict[str, Any]:
    return {"spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": 15}}


@pytest.mark.parametrize(
    ("lease", "previous", "now", "action"),
    [
        pytest.param(None, None, 0.0, "create", id="no-lease"),
        pytest.param(_lease("me"), None, 0.0, "renew", id="ours"),
        pytest.param(_lease(""), None, 0.0, "take", id="released"),
        pytest.param(_lease("other"), None, 100.0, "wait", id="foreign-first-sight"),
        pytest.param(_lease("other"), le.Observation("other", "t1", 90.0), 100.0, "wait", id="foreign-fresh"),
        pytest.param(_lease("other"), le.Observation("other", "t1", 80.0), 100.0, "take", id="foreign-expired"),
        pytest.param(
            _lease("other", "t2"), le.Observation("other", "t1", 0.0), 100.0, "wait", id="foreign-renewed-meanwhile"
        ),
    ],
)
def test_decide(lease: dict[str, Any] | None, previous: le.Observation | None, now: float, action: str) -> None:
    assert le.decide(lease, "me", previous, now, lease_duration=15.0).action == action


def test_a_renewal_restarts_the_expiry_clock() -> None:
    first = le.decide(_lease("other", "t1"), "me", None, 10.0, 15.0)
    assert first.observation is not None
    later = le.decide(_lease("other", "t2"), "me", first.observation, 24.0, 15.0)
    assert later.observation is not None
    assert later.observation.observed_at == 24.0
    assert le.decide(_lease("other", "t2"), "me", later.observation, 38.0, 15.0).action == "wait"
    assert le.decide(_lease("other", "t2"), "me", later.observation, 39.0, 15.0).action == "take"
