"""Pod conditions read from a raw Pod: one reading for the controllers, the populator and `kubectl fma`.

The rule is the kubelet's: a Pod is ready when its ``Ready`` condition's status is ``"True"``.  Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["condition", "is_ready"]


def condition(pod: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    """The Pod condition of type ``condition_type``, or None.  Pure."""
    status = pod.get("status")
    if not isinstance(status, Mapping):
        return None
    for item in status.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == condition_type:
            return item
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod's ``Ready`` condition is True.  Pure."""
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"
