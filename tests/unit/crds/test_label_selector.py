"""Label selectors: Kubernetes' parse rules and matching."""

from __future__ import annotations

from typing import Any

import pytest

from crds import selector


def _selector(raw: dict[str, Any]) -> selector.LabelSelector:
    return selector.LabelSelector.model_validate(raw)


@pytest.mark.parametrize(
    ("raw", "labels", "expected"),
    [
        pytest.param({}, {"any": "thing"}, True, id="empty-matches-everything"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="match-labels"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="match-labels-differ"),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "In", "values": ["x", "y"]}]}, {"z": "y"}, True, id="in"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "In", "values": ["x"]}]}, {}, False, id="in-absent"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["x"]}]}, {}, True, id="notin-absent"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["x"]}]}, {"z": "x"}, False, id="notin"
        ),
        pytest.param({"matchExpressions": [{"key": "z", "operator": "Exists"}]}, {"z": ""}, True, id="exists"),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "DoesNotExist"}]}, {"z": ""}, False, id="does-not-exist"
        ),
    ],
)
def test_matches(raw: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert _selector(raw).matches(labels) is expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        pytest.param({"matchExpressions": [{"key": "z", "operator": "Near"}]}, "not a valid", id="bad-operator"),
        pytest.param({"matchExpressions": [{"key": "z", "operator": "In"}]}, "non-empty", id="in-without-values"),
        pytest.param(
            {"matchExpressions": [{"key": "z", "operator": "Exists", "values": ["a"]}]},
            "empty",
            id="exists-with-values",
        ),
        pytest.param({"matchLabels": {"bad key": "v"}}, "key", id="bad-key"),
        pytest.param({"matchLabels": {"k": "bad value"}}, "value", id="bad-value"),
    ],
)
def test_unparsable_selectors_report_and_match_nothing(raw: dict[str, Any], fragment: str) -> None:
    parsed = _selector(raw)
    problems = parsed.problems()
    assert any(fragment in problem for problem in problems), problems
    assert parsed.matches({"z": "a", "k": "bad value", "bad key": "v"}) is False
