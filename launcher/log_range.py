"""Which bytes of an instance log to send for a ``Range`` header (docs/protocol.md, "Launcher API"); pure.

Only ``bytes=START-`` and ``bytes=START-END`` (END ≥ START) are accepted;
every answer is capped at 1 MiB, closed ranges included, and the reported
``Content-Range`` is what is actually sent (both improvements over upstream).
"""

from __future__ import annotations

import re

import pydantic

from launcher import errors

__all__ = ["MAX_CHUNK", "Slice", "plan"]

MAX_CHUNK = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d{1,18})-(\d{1,18})?$")


class Slice(pydantic.BaseModel):
    """Send bytes ``start`` … ``end`` inclusive (``end == start - 1`` means nothing) of a ``total``-byte log."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    status: int
    start: int
    end: int
    total: int

    @property
    def length(self) -> int:
        """How many bytes to send."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header value."""
        if self.length == 0:
            return f"bytes */{self.total}"
        return f"bytes {self.start}-{self.end}/{self.total}"


def plan(header: str | None, total: int) -> Slice:
    """Decide the answer for ``header`` on a log of ``total`` bytes.

    Raises ``BadRange`` (400) for a header we do not accept and
    ``RangeNotSatisfiable`` (416) when it starts at or after the end.
    """
    if header is None:
        end = min(total, MAX_CHUNK) - 1
        return Slice(status=200, start=0, end=end, total=total)
    match = _RANGE.match(header.strip())
    if match is None:
        raise errors.BadRange(f"unsupported Range header {header!r}; use 'bytes=START-' or 'bytes=START-END'")
    start = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else None
    if last is not None and last < start:
        raise errors.BadRange(f"invalid Range header {header!r}: END is before START")
    if start >= total:
        raise errors.RangeNotSatisfiable(total)
    end = total - 1 if last is None else min(last, total - 1)
    end = min(end, start + MAX_CHUNK - 1)
    return Slice(status=206, start=start, end=end, total=total)
