"""The requester's ``status`` annotation: compact JSON ``{"Errors":[...]}``.

The DPC reports user-facing problems here (docs/protocol.md, "Annotations";
docs/controllers.md, "How the dual-pods controller works").  The key is
capitalised because upstream marshals a Go struct without a JSON tag.  Upstream
writes ``{"Errors":null}`` when there is nothing to report; we write the same so
that both implementations produce identical bytes, and we read ``null`` and
``[]`` alike.

Pure; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from crds import errors, keys

__all__ = ["format_errors", "parse"]


def format_errors(problems: Sequence[str]) -> str:
    """Return the annotation value listing ``problems`` (``{"Errors":null}`` when there are none)."""
    payload = {"Errors": list(problems) if problems else None}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def parse(value: str | None) -> list[str]:
    """Return the errors recorded in ``value``; an absent annotation means no errors.

    Raises ``errors.InvalidAnnotation`` when the value is not the contracted JSON.
    """
    if value is None:
        return []
    try:
        document = json.loads(value)
    except json.JSONDecodeError as exc:
        raise errors.InvalidAnnotation(keys.STATUS_ANNOTATION, value, f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or "Errors" not in document:
        raise errors.InvalidAnnotation(keys.STATUS_ANNOTATION, value, 'expected an object with key "Errors"')
    listed = document["Errors"]
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise errors.InvalidAnnotation(keys.STATUS_ANNOTATION, value, '"Errors" must be null or a list of strings')
    return list(listed)
