"""A launcher Pod's population phase: bound, stale, unbound or stuck (docs/populator.md, "How it works").

The populator decides three things from one classification: which launchers
it may delete (stale and excess unbound ones, never bound ones), which ones
to label stuck (with one Warning Event), and the ``fma_launcher_pod_count``
metric (docs/protocol.md, "Metrics").  Keeping the classification in one pure function makes those
three agree, and makes the inclusive time boundaries testable with a fixed
``now``.  ``next_crossing`` says when a launcher's phase will change by time
alone, so the populator schedules exactly one check then instead of sweeping
periodically.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

from crds import binding_record, keys, pod_view, timestamps

__all__ = [
    "Phase",
    "Thresholds",
    "classify",
    "is_ready",
    "is_terminating",
    "next_crossing",
    "pair_of",
]


class Phase(enum.StrEnum):
    """The value of the metric label ``phase``."""

    BOUND = "bound"
    UNBOUND = "unbound"
    STUCK_SCHEDULING = "stuck_scheduling"
    STUCK_STARTING = "stuck_starting"
    STALE = "stale"

    @property
    def stuck(self) -> bool:
        """Whether this is one of the two stuck phases."""
        return self in (Phase.STUCK_SCHEDULING, Phase.STUCK_STARTING)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """How long a launcher may take before it counts as stuck."""

    scheduling: datetime.timedelta = datetime.timedelta(minutes=2)
    """From creation until scheduled (``--stuck-scheduling-threshold``)."""
    starting: datetime.timedelta = datetime.timedelta(minutes=7, seconds=30)
    """From ``PodScheduled=True`` until Ready (``--stuck-starting-threshold``)."""


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


is_ready = pod_view.is_ready
"""Whether the Pod's Ready condition is True (the shared reading in ``crds.pod_view``)."""


def is_terminating(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod has a ``deletionTimestamp`` (pure)."""
    return pod_view.PodView(pod).deleting


def pair_of(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """Return (node, LauncherConfig) of a launcher in a population pair, or None for other Pods (pure).

    A Pod belongs to a pair when it is a launcher (``crds.pod_view``) that also carries the labels the
    populator selects by: ``app.kubernetes.io/component=launcher`` and a
    non-empty LauncherConfig name and node name.
    """
    view = pod_view.PodView(pod)
    if not view.is_launcher or view.labels.get(keys.COMPONENT_LABEL) != keys.COMPONENT_LAUNCHER:
        return None
    config = view.labels.get(keys.LAUNCHER_CONFIG_NAME_LABEL)
    node = view.labels.get(keys.NODE_NAME_LABEL)
    if not config or not node:
        return None
    return str(node), str(config)


def _scheduling(pod: Mapping[str, Any]) -> tuple[bool, datetime.datetime | None]:
    """(scheduled, since when) from the ``PodScheduled`` condition."""
    scheduled = pod_view.condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "True":
        return False, None
    return True, timestamps.parse_time(scheduled.get("lastTransitionTime"))


def _stuck_phase(pod: Mapping[str, Any], thresholds: Thresholds, now: datetime.datetime) -> Phase | None:
    scheduled, since = _scheduling(pod)
    if scheduled:
        return Phase.STUCK_STARTING if since is not None and now >= since + thresholds.starting else None
    created = timestamps.parse_time(_meta(pod).get("creationTimestamp"))
    return Phase.STUCK_SCHEDULING if created is not None and now >= created + thresholds.scheduling else None


def classify(
    pod: Mapping[str, Any], template_hash: str | None, thresholds: Thresholds, now: datetime.datetime
) -> Phase:
    """Return the first phase that applies to ``pod`` at ``now`` (boundaries inclusive).

    The order: bound, stale, unbound if Ready, stuck_starting, stuck_scheduling, else unbound.

    ``template_hash`` is the LauncherConfig's current template hash; None (the
    LC is missing or malformed) means no launcher counts as stale.  Pure.
    """
    meta = _meta(pod)
    if binding_record.from_annotations(meta.get("annotations")) is not None:
        return Phase.BOUND
    annotations = meta.get("annotations") or {}
    if template_hash is not None and annotations.get(keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION) != template_hash:
        return Phase.STALE
    if is_ready(pod):
        return Phase.UNBOUND
    return _stuck_phase(pod, thresholds, now) or Phase.UNBOUND


def next_crossing(
    pod: Mapping[str, Any], template_hash: str | None, thresholds: Thresholds, now: datetime.datetime
) -> datetime.datetime | None:
    """Return the next time after ``now`` at which time alone makes ``pod`` stuck, or None (pure).

    Only unbound, current, not-Ready Pods have one: scheduled ones at
    ``PodScheduled`` + starting threshold, unscheduled ones at creation +
    scheduling threshold.  A Pod already stuck (or any other phase) has none;
    a change of its status comes with a Pod event instead.
    """
    if classify(pod, template_hash, thresholds, now) is not Phase.UNBOUND or is_ready(pod):
        return None
    scheduled, since = _scheduling(pod)
    if scheduled:
        return None if since is None else since + thresholds.starting
    created = timestamps.parse_time(_meta(pod).get("creationTimestamp"))
    return None if created is None else created + thresholds.scheduling
