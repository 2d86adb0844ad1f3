"""The ``accelerators`` annotation: GPU UUIDs comma-joined, in SPI order.

The order is the one the requester's SPI reported, which is also the order of
``CUDA_VISIBLE_DEVICES`` and of the instance ID (docs/protocol.md, "Annotations"
and "Identity hashes"), so it is kept, never sorted.  An empty value means "not known yet".

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from crds import errors, keys

__all__ = ["format_uuids", "parse"]


def format_uuids(uuids: Sequence[str]) -> str:
    """Return the UUIDs joined with ``,`` and no spaces; raise ``ValueError`` on an unjoinable UUID."""
    for uuid in uuids:
        if not uuid or "," in uuid or uuid != uuid.strip() or " " in uuid:
            raise ValueError(f"GPU UUID {uuid!r} cannot be part of a comma-separated list")
    return ",".join(uuids)


def parse(value: str | None) -> list[str]:
    """Return the UUIDs in ``value`` in order; absent or empty means none known yet.

    Raises ``errors.InvalidAnnotation`` on empty items or surrounding spaces, which
    this format never produces.
    """
    if not value:
        return []
    items = value.split(",")
    for item in items:
        if not item or item != item.strip() or " " in item:
            raise errors.InvalidAnnotation(keys.ACCELERATORS_ANNOTATION, value, f"bad GPU UUID {item!r}")
    return items
