"""``crds.timestamps.parse_time``: the one reading of API timestamps."""

from __future__ import annotations

import datetime

import pytest

from crds import timestamps

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        pytest.param("2026-01-01T12:00:00Z", T0, id="zulu"),
        pytest.param("2026-01-01T12:00:00+00:00", T0, id="offset"),
        pytest.param("2026-01-01T14:00:00+02:00", T0, id="other-offset"),
        pytest.param("2026-01-01T12:00:00.250000Z", T0 + datetime.timedelta(milliseconds=250), id="fraction"),
        pytest.param("2026-01-01T12:00:00", T0, id="no-offset-is-utc"),
        pytest.param("nonsense", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
        pytest.param(1767268800, None, id="a-number-is-not-a-timestamp"),
    ],
)
def test_parse_time(value: object, parsed: datetime.datetime | None) -> None:
    result = timestamps.parse_time(value)
    assert result == parsed
    if result is not None:
        assert result.tzinfo is not None, "always aware, so it compares with now(UTC)"
