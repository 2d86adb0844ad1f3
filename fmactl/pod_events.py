"""A Pod's Event history, and what the controller's own Events say about its actuation.

The dual-pods controller records ``ActuatedHot``/``ActuatedWarm``/``ActuatedCold``
(message ``"<path> actuation in <seconds>s"``) and the Warning ``ActuationFailed``
and ``OutdatedRoutingMetadata`` on the requester (docs/protocol.md, "Events, leases
and health endpoints"); the scheduler and the kubelet add theirs.  Events are
matched to a Pod by UID, so a replaced Pod with the same name never inherits its
predecessor's history.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Any

from crds import names, timestamps
from fmactl import pod_facts

__all__ = ["ACTUATION_REASONS", "Actuation", "PodEvent", "actuation", "for_pod", "parse"]

ACTUATION_REASONS: dict[str, str] = {
    names.EVENT_ACTUATED_HOT: "hot",
    names.EVENT_ACTUATED_WARM: "warm",
    names.EVENT_ACTUATED_COLD: "cold",
}
"""Event reason -> path."""

_SECONDS = re.compile(r"in ([0-9]+(?:\.[0-9]+)?)s\b")


@dataclasses.dataclass(frozen=True)
class PodEvent:
    """One Event about one Pod."""

    at: datetime.datetime | None
    type: str
    reason: str
    message: str
    count: int
    source: str
    pod_name: str
    pod_uid: str


@dataclasses.dataclass(frozen=True)
class Actuation:
    """How and how fast a requester was actuated, from the controller's Event."""

    path: str
    seconds: float | None
    at: datetime.datetime | None


def parse(raw: Mapping[str, Any]) -> PodEvent | None:
    """Read a core/v1 Event about a Pod; None for Events about anything else."""
    involved = raw.get("involvedObject") or raw.get("regarding") or {}
    if not isinstance(involved, Mapping) or involved.get("kind") != "Pod":
        return None
    series = raw.get("series") if isinstance(raw.get("series"), Mapping) else {}
    assert isinstance(series, Mapping)
    at = (
        timestamps.parse_time(raw.get("lastTimestamp"))
        or timestamps.parse_time(series.get("lastObservedTime"))
        or timestamps.parse_time(raw.get("eventTime"))
        or timestamps.parse_time(raw.get("firstTimestamp"))
    )
    source = raw.get("source") if isinstance(raw.get("source"), Mapping) else {}
    assert isinstance(source, Mapping)
    return PodEvent(
        at=at,
        type=str(raw.get("type") or ""),
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or raw.get("note") or ""),
        count=int(raw.get("count") or series.get("count") or 1),
        source=str(source.get("component") or raw.get("reportingComponent") or raw.get("reportingController") or ""),
        pod_name=str(involved.get("name") or ""),
        pod_uid=str(involved.get("uid") or ""),
    )


def _sort_key(event: PodEvent) -> datetime.datetime:
    return event.at or datetime.datetime.min.replace(tzinfo=datetime.UTC)


def for_pod(events: Iterable[Mapping[str, Any]], pod: Mapping[str, Any]) -> list[PodEvent]:
    """The Events about ``pod`` (same UID, or same name when the Event carries no UID), oldest first."""
    name, uid = pod_facts.name(pod), pod_facts.uid(pod)
    found = []
    for raw in events:
        event = parse(raw)
        if event is None or event.pod_name != name:
            continue
        if event.pod_uid and uid and event.pod_uid != uid:
            continue
        found.append(event)
    return sorted(found, key=_sort_key)


def actuation(history: Iterable[PodEvent]) -> Actuation | None:
    """The latest ``Actuated*`` Event's path and duration, or None when the requester was never actuated."""
    latest: Actuation | None = None
    for event in history:
        path = ACTUATION_REASONS.get(event.reason)
        if path is None:
            continue
        match = _SECONDS.search(event.message)
        latest = Actuation(path=path, seconds=float(match.group(1)) if match else None, at=event.at)
    return latest
