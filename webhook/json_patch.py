"""RFC 6902 JSON Patch operations, built against the raw incoming object.

The webhook never diffs a re-dumped model: it emits a few
targeted ``add``/``replace`` operations at paths it found in the raw
object.  Every operation emitted is idempotent (``add`` to an object member
and ``replace`` both overwrite), so applying a patch twice gives the same
object as applying it once.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Operation", "add", "pointer", "replace"]

Operation = dict[str, Any]
"""One JSON Patch operation: ``{"op", "path", "value"}``."""


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 JSON pointer from unescaped tokens (``~`` → ``~0``, ``/`` → ``~1``)."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def add(path: str, value: Any) -> Operation:
    """``add``: create or overwrite an object member (never used to insert into arrays)."""
    return {"op": "add", "path": path, "value": value}


def replace(path: str, value: Any) -> Operation:
    """``replace``: overwrite an existing value."""
    return {"op": "replace", "path": path, "value": value}
