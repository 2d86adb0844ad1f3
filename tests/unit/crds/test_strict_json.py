"""``crds.strict_json``: what Python's ``json`` accepts but JSON does not is refused, with a message that says so."""

from __future__ import annotations

import pytest

from crds import errors, strict_json


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(b'{"x": NaN}', "NaN and Infinity are not JSON numbers", id="nan"),
        pytest.param(b"[Infinity]", "NaN and Infinity are not JSON numbers", id="infinity"),
        pytest.param(b"[1, -Infinity]", "NaN and Infinity are not JSON numbers", id="minus-infinity"),
        pytest.param(b"[1e400]", "too large for a double", id="overflow-exponent"),
        pytest.param(b"[" + b"9" * 400 + b".0]", "too large for a double", id="overflow-mantissa"),
        pytest.param(b"[" + b"9" * 250 + b"e99]", "too large for a double", id="overflow-long-mantissa-short-exponent"),
        pytest.param(b"[-0.5E+309]", "too large for a double", id="overflow-negative-signed-exponent"),
        pytest.param(b'"\\udc80"', "lone UTF-16 surrogate", id="lone-low-surrogate"),
        pytest.param(b'{"a": "\\ud800"}', "lone UTF-16 surrogate", id="lone-high-surrogate"),
        pytest.param(b'"\xed\xb2\x80"', "invalid unicode", id="raw-surrogate-bytes"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "nested deeper than 201 levels", id="200000-deep"),
        pytest.param(b"[" * 202 + b"]" * 202, "nested deeper than 201 levels", id="202-deep"),
        pytest.param(b"{", "malformed JSON", id="truncated"),
        pytest.param(b"\xff\xfe", "malformed JSON", id="not-utf8"),
    ],
)
def test_refused_with_a_message_naming_the_problem(body: bytes, named: str) -> None:
    with pytest.raises(errors.MalformedJson, match=named):
        strict_json.loads(body)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "value"),
    [
        pytest.param(b'{"a": [1, 2.5, "NaN", "1e999"]}', {"a": [1, 2.5, "NaN", "1e999"]}, id="lookalikes-in-strings"),
        pytest.param(b'"\\ud83d\\ude00"', "\U0001f600", id="surrogate-pair"),
        pytest.param(b"[1.7e308, -1e-400]", [1.7e308, -0.0], id="finite-extremes"),
        pytest.param(b"[" * 201 + b"]" * 201, _nested(201), id="201-deep"),
        pytest.param(b'{"a": 1, "a": 2}', {"a": 2}, id="duplicate-keys-last-wins"),
    ],
)
def test_accepted(body: bytes, value: object) -> None:
    assert strict_json.loads(body) == value


def test_is_a_value_error_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError, match="malformed JSON"):
        strict_json.loads("[NaN]")
