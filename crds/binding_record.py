"""The binding record: the provider's ``requester`` annotation ``"<uid> <name>"``.

A binding exists only in this one annotation (docs/protocol.md, "Annotations"), so every
reader must agree on when a value means "bound".  Upstream's rule is kept
exactly: the value is a binding iff it splits on single spaces into exactly two
parts.  Anything else reads as unbound rather than as an error, because the
controller must be able to rebind over garbage instead of getting stuck on it.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from crds import keys

__all__ = ["BindingRecord", "format_record", "from_annotations", "parse"]


@dataclasses.dataclass(frozen=True)
class BindingRecord:
    """Which requester a provider is bound to."""

    uid: str
    """The requester Pod's UID."""
    name: str
    """The requester Pod's name (same namespace as the provider)."""

    def format(self) -> str:
        """Return the annotation value ``"<uid> <name>"``."""
        return format_record(self.uid, self.name)


def format_record(uid: str, name: str) -> str:
    """Return ``"<uid> <name>"``; raise ``ValueError`` if either part is empty or has a space."""
    for what, part in (("uid", uid), ("name", name)):
        if not part or " " in part:
            raise ValueError(f"binding record {what} must be non-empty and without spaces, got {part!r}")
    return f"{uid} {name}"


def parse(value: str | None) -> BindingRecord | None:
    """Return the record in ``value``, or ``None`` when it does not denote a binding."""
    if value is None:
        return None
    parts = value.split(" ")
    if len(parts) != 2:
        return None
    return BindingRecord(uid=parts[0], name=parts[1])


def from_annotations(annotations: Mapping[str, str] | None) -> BindingRecord | None:
    """Return the binding recorded in a provider's annotations, or ``None`` if it is unbound."""
    if not annotations:
        return None
    return parse(annotations.get(keys.REQUESTER_ANNOTATION))
