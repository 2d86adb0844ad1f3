"""The requester status annotation: ``{"Errors":[...]}``, with ``null`` and ``[]`` read alike."""

from __future__ import annotations

import pytest

from crds import errors, requester_status


def test_format_matches_upstream_bytes() -> None:
    assert requester_status.format_errors([]) == '{"Errors":null}'
    assert requester_status.format_errors(["no IP assigned yet"]) == '{"Errors":["no IP assigned yet"]}'
    assert requester_status.format_errors(["é"]) == '{"Errors":["é"]}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('{"Errors":null}', [], id="null"),
        pytest.param('{"Errors":[]}', [], id="empty-list"),
        pytest.param('{"Errors":["a","b"]}', ["a", "b"], id="two"),
        pytest.param(None, [], id="absent"),
    ],
)
def test_parse(value: str | None, expected: list[str]) -> None:
    assert requester_status.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"errors":[]}', id="lowercase-key"),
        pytest.param('["a"]', id="not-an-object"),
        pytest.param('{"Errors":"a"}', id="string-not-list"),
        pytest.param('{"Errors":[1]}', id="non-string-item"),
    ],
)
def test_parse_rejects_malformed_values(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation) as caught:
        requester_status.parse(value)
    assert caught.value.key == "dual-pods.llm-d.ai/status"
    assert repr(value) in str(caught.value)


def test_round_trip() -> None:
    problems = ['failed to get InferenceServerConfig "x": not found', "second"]
    assert requester_status.parse(requester_status.format_errors(problems)) == problems
