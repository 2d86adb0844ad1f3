"""Status: observedGeneration, errors and standard conditions."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest

from crds import status

_CONDITION = {
    "type": "Accepted",
    "status": "True",
    "observedGeneration": 3,
    "lastTransitionTime": "2026-01-02T03:04:05Z",
    "reason": "Valid",
    "message": "",
}


def test_round_trip() -> None:
    raw = {"observedGeneration": 3, "errors": ["x"], "conditions": [_CONDITION]}
    parsed = status.ResourceStatus.model_validate(raw)
    assert parsed.to_raw() == raw
    condition = parsed.condition(status.ACCEPTED)
    assert condition is not None
    assert condition.last_transition_time == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert parsed.condition(status.RESOLVED_REFS) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({}, id="empty"),
        pytest.param({"conditions": None, "errors": None}, id="nulls"),
        pytest.param({"observedGeneration": 1, "errors": ["a"]}, id="upstream-shape-without-conditions"),
    ],
)
def test_tolerates_upstream_status(raw: dict[str, Any]) -> None:
    parsed = status.ResourceStatus.model_validate(raw)
    assert parsed.conditions == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"status": "Maybe"}, "status", id="bad-status"),
        pytest.param({"reason": ""}, "reason", id="empty-reason"),
        pytest.param({"reason": "has space"}, "reason", id="reason-pattern"),
        pytest.param({"type": "bad type"}, "type", id="type-pattern"),
        pytest.param({"lastTransitionTime": "2026-01-02T03:04:05"}, "lastTransitionTime", id="naive-time"),
        pytest.param({"observedGeneration": -1}, "observedGeneration", id="negative-generation"),
    ],
)
def test_invalid_conditions(change: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        status.Condition.model_validate({**_CONDITION, **change})
    assert caught.value.errors()[0]["loc"][0] == field


def test_condition_types_are_unique() -> None:
    with pytest.raises(pydantic.ValidationError, match="more than once"):
        status.ResourceStatus.model_validate({"conditions": [_CONDITION, _CONDITION]})


def test_upstream_messages() -> None:
    assert status.lc_missing_container_message() == 'container "inference-server" not found'
    assert status.lpp_missing_lc_message("x") == 'LauncherConfig "x" referenced in CountForLauncher does not exist'
    assert (
        status.lpp_malformed_lc_message("x", "boom")
        == 'LauncherConfig "x" referenced in CountForLauncher is malformed: boom'
    )


_T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_T1 = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)


def _set(
    conditions: list[status.Condition], state: Any, reason: str, when: datetime.datetime
) -> list[status.Condition]:
    return status.set_condition(
        conditions,
        condition_type=status.ACCEPTED,
        status=state,
        reason=reason,
        message=f"because {reason}",
        observed_generation=4,
        now=when,
    )


def test_set_condition_appends_a_new_type() -> None:
    other = status.Condition.model_validate({**_CONDITION, "type": "ResolvedRefs"})
    result = _set([other], "True", status.REASON_VALID, _T0)
    assert [c.type for c in result] == ["ResolvedRefs", "Accepted"]
    assert result[1].last_transition_time == _T0
    assert result[1].observed_generation == 4


def test_set_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    first = _set([], "True", status.REASON_VALID, _T0)
    again = _set(first, "True", "StillValid", _T1)
    assert again[0].last_transition_time == _T0
    assert again[0].reason == "StillValid"
    flipped = _set(again, "False", status.REASON_INVALID_SPEC, _T1)
    assert flipped[0].last_transition_time == _T1
    assert flipped[0].status == "False"
    assert len(flipped) == 1
    assert first[0].status == "True", "the input list is not modified"
