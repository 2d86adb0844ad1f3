"""The accelerators annotation keeps the SPI order of GPU UUIDs."""

from __future__ import annotations

import pytest

from crds import accelerators, errors


def test_round_trip_keeps_order() -> None:
    uuids = ["GPU-b", "GPU-a", "GPU-c"]
    assert accelerators.format_uuids(uuids) == "GPU-b,GPU-a,GPU-c"
    assert accelerators.parse(accelerators.format_uuids(uuids)) == uuids


@pytest.mark.parametrize(("value", "expected"), [pytest.param(None, [], id="absent"), pytest.param("", [], id="empty")])
def test_unknown_yet(value: str | None, expected: list[str]) -> None:
    assert accelerators.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("GPU-a,,GPU-b", id="empty-item"),
        pytest.param("GPU-a, GPU-b", id="space"),
        pytest.param(",", id="comma"),
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation, match="accelerators"):
        accelerators.parse(value)


@pytest.mark.parametrize(
    "uuid", [pytest.param("a,b", id="comma"), pytest.param("", id="empty"), pytest.param("a b", id="space")]
)
def test_format_rejects_unjoinable(uuid: str) -> None:
    with pytest.raises(ValueError, match="GPU UUID"):
        accelerators.format_uuids([uuid])
