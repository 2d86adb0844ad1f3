"""Timestamps as the Kubernetes API writes them (RFC 3339: ``2026-01-01T12:00:00Z``, fractions optional).

One reading for every package: the controllers' phase and nomination
clocks, the requester-side start times and ``kubectl fma``'s explanations.

Pure; no I/O.
"""

from __future__ import annotations

import datetime

__all__ = ["parse_time"]


def parse_time(value: object) -> datetime.datetime | None:
    """An aware datetime (UTC when the text names no offset); None when ``value`` is absent, not a string or
    not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)
