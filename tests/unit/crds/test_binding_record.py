"""The binding record ``"<uid> <name>"`` is bound iff it splits into exactly two parts."""

from __future__ import annotations

import pytest

from crds import binding_record, keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("uid-1 req-a", binding_record.BindingRecord("uid-1", "req-a"), id="bound"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("uid-only", None, id="one-part"),
        pytest.param("a b c", None, id="three-parts"),
        pytest.param("a  b", None, id="double-space-is-three-parts"),
    ],
)
def test_parse(value: str | None, expected: binding_record.BindingRecord | None) -> None:
    assert binding_record.parse(value) == expected


def test_round_trip() -> None:
    record = binding_record.BindingRecord("0c6e-uid", "requester-7")
    assert record.format() == "0c6e-uid requester-7"
    assert binding_record.parse(record.format()) == record


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        pytest.param("", "n", id="empty-uid"),
        pytest.param("u", "", id="empty-name"),
        pytest.param("u", "a b", id="space"),
    ],
)
def test_format_refuses_parts_that_would_not_parse_back(uid: str, name: str) -> None:
    with pytest.raises(ValueError, match="binding record"):
        binding_record.format_record(uid, name)


def test_from_annotations() -> None:
    assert binding_record.from_annotations({keys.REQUESTER_ANNOTATION: "u n"}) == binding_record.BindingRecord("u", "n")
    assert binding_record.from_annotations({"other": "u n"}) is None
    assert binding_record.from_annotations(None) is None
