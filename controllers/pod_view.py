"""Read-only views of raw Pod objects, as the dual-pods controller needs them.

Pods arrive from the watch cache as raw dicts; these functions answer the
controller's questions about them (which node? is the ``inference-server``
container Ready?) in one place, so no reconcile digs through nested dicts
itself.  What kind of Pod something is (requester, its mode, launcher, a
provider's node) is decided once for every process in ``crds.pod_view``;
the names here are that rule, re-exported for the controller's callers.
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from crds import binding_record, names
from crds import pod_view as crds_pod_view

__all__ = [
    "Classification",
    "PodKind",
    "annotations_of",
    "classify",
    "container_status",
    "finalizers",
    "is_deleting",
    "is_failed",
    "is_launcher",
    "is_ready",
    "is_requester",
    "labels_of",
    "name",
    "node_of_provider",
    "pod_ip",
    "restarts",
    "server_running",
    "started_at",
    "uid",
]

PodKind = Literal["requester", "bound-provider", "unbound-launcher", "other"]


def name(pod: Mapping[str, Any]) -> str:
    """The Pod's name."""
    return crds_pod_view.PodView(pod).name


def uid(pod: Mapping[str, Any]) -> str:
    """The Pod's UID."""
    return crds_pod_view.PodView(pod).uid


def annotations_of(pod: Mapping[str, Any]) -> dict[str, str]:
    """The Pod's annotations (a copy the caller may change; empty when none)."""
    return dict(crds_pod_view.PodView(pod).annotations)


def labels_of(pod: Mapping[str, Any]) -> dict[str, str]:
    """The Pod's labels (a copy the caller may change; empty when none)."""
    return dict(crds_pod_view.PodView(pod).labels)


def finalizers(pod: Mapping[str, Any]) -> list[str]:
    """The Pod's finalizers (a copy the caller may change)."""
    return list(crds_pod_view.PodView(pod).finalizers)


def is_deleting(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod has a deletionTimestamp."""
    return crds_pod_view.PodView(pod).deleting


is_requester = crds_pod_view.is_requester
"""Whether the Pod is a requester (the one rule, in ``crds.pod_view``)."""

is_launcher = crds_pod_view.is_launcher
"""Whether the Pod is a launcher (the one rule, in ``crds.pod_view``)."""

node_of_provider = crds_pod_view.provider_node
"""A provider's node: its hostname nodeSelector, not spec.nodeName (the one rule, in ``crds.pod_view``)."""


@dataclasses.dataclass(frozen=True)
class Classification:
    """Which kind of Pod this is for the controller, and where its work is serialized."""

    kind: PodKind
    node: str | None
    key: str | None
    """The work item: the requester UID for requesters and bound providers, the Pod name for launchers."""


def classify(pod: Mapping[str, Any]) -> Classification:
    """Classify a Pod (docs/protocol.md, "Roles of Pods") (pure)."""
    view = crds_pod_view.PodView(pod)
    if view.is_requester:
        return Classification("requester", view.node_name, view.uid)
    record = binding_record.from_annotations(view.annotations)
    if record is not None:
        return Classification("bound-provider", view.provider_node, record.uid)
    if view.is_launcher:
        return Classification("unbound-launcher", view.provider_node, view.name)
    return Classification("other", None, None)


def pod_ip(pod: Mapping[str, Any]) -> str | None:
    """status.podIP, or None before one is assigned."""
    value = (pod.get("status") or {}).get("podIP")
    return str(value) if value else None


is_ready = crds_pod_view.is_ready
"""Whether the Pod's Ready condition is True (the shared reading in ``crds.pod_view``)."""


def container_status(pod: Mapping[str, Any], container: str = names.INFERENCE_SERVER_CONTAINER) -> dict[str, Any]:
    """The status of ``container`` (empty when not reported yet)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return dict(status)
    return {}


def server_running(pod: Mapping[str, Any]) -> bool:
    """Whether the ``inference-server`` container is Running."""
    return "running" in (container_status(pod).get("state") or {})


def started_at(pod: Mapping[str, Any]) -> str | None:
    """``state.running.startedAt`` of ``inference-server``, or None."""
    running = (container_status(pod).get("state") or {}).get("running") or {}
    value = running.get("startedAt")
    return str(value) if value else None


def restarts(pod: Mapping[str, Any]) -> int:
    """restartCount of ``inference-server``."""
    return int(container_status(pod).get("restartCount") or 0)


def is_failed(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod's phase is Failed."""
    return (pod.get("status") or {}).get("phase") == "Failed"
