"""Range planning for instance logs (docs/protocol.md, "Launcher API"), pure."""

from __future__ import annotations

import pytest

from launcher import errors, log_range

MIB = log_range.MAX_CHUNK


@pytest.mark.parametrize(
    ("header", "total", "expected"),
    [
        pytest.param(None, 10, (200, 0, 9, "bytes 0-9/10"), id="no-range"),
        pytest.param(None, 0, (200, 0, -1, "bytes */0"), id="no-range-empty-log"),
        pytest.param(None, 3 * MIB, (200, 0, MIB - 1, f"bytes 0-{MIB - 1}/{3 * MIB}"), id="no-range-capped"),
        pytest.param("bytes=4-", 10, (206, 4, 9, "bytes 4-9/10"), id="open"),
        pytest.param("bytes=2-5", 10, (206, 2, 5, "bytes 2-5/10"), id="closed"),
        pytest.param("bytes=2-2", 10, (206, 2, 2, "bytes 2-2/10"), id="one-byte"),
        pytest.param("bytes=2-500", 10, (206, 2, 9, "bytes 2-9/10"), id="closed-past-end"),
        pytest.param("bytes=1-", 3 * MIB, (206, 1, MIB, f"bytes 1-{MIB}/{3 * MIB}"), id="open-capped"),
        pytest.param("bytes=0-2097151", 3 * MIB, (206, 0, MIB - 1, f"bytes 0-{MIB - 1}/{3 * MIB}"), id="closed-capped"),
    ],
)
def test_plan(header: str | None, total: int, expected: tuple[int, int, int, str]) -> None:
    piece = log_range.plan(header, total)
    assert (piece.status, piece.start, piece.end, piece.content_range) == expected
    assert piece.length == expected[2] - expected[1] + 1


@pytest.mark.parametrize("header", ["bytes=-5", "bytes=1-2,4-5", "items=0-1", "bytes=5-2", "", "bytes=", "bytes=a-b"])
def test_bad_ranges_are_400(header: str) -> None:
    with pytest.raises(errors.BadRange) as info:
        log_range.plan(header, 10)
    assert info.value.http_status == 400
    assert repr(header) in str(info.value)


@pytest.mark.parametrize(("header", "total"), [("bytes=10-", 10), ("bytes=0-", 0), ("bytes=11-12", 10)])
def test_start_at_or_after_the_end_is_416(header: str, total: int) -> None:
    with pytest.raises(errors.RangeNotSatisfiable) as info:
        log_range.plan(header, total)
    assert info.value.total == total
    assert info.value.http_status == 416
