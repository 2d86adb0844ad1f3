"""Read-only views of raw Pod objects, as the dual-pods controller needs them.

Pods arrive from the watch cache as raw dicts; these functions answer the
controller's questions about them (is it a requester? which node? is the
``inference-server`` container Ready?) in one place, so no reconcile digs
through nested dicts itself.  Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from crds import binding_record, keys, names, pod_conditions

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


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def name(pod: Mapping[str, Any]) -> str:
    """The Pod's name."""
    return str(_meta(pod).get("name", ""))


def uid(pod: Mapping[str, Any]) -> str:
    """The Pod's UID."""
    return str(_meta(pod).get("uid", ""))


def annotations_of(pod: Mapping[str, Any]) -> dict[str, str]:
    """The Pod's annotations (a copy; empty when none)."""
    return dict(_meta(pod).get("annotations") or {})


def labels_of(pod: Mapping[str, Any]) -> dict[str, str]:
    """The Pod's labels (a copy; empty when none)."""
    return dict(_meta(pod).get("labels") or {})


def finalizers(pod: Mapping[str, Any]) -> list[str]:
    """The Pod's finalizers (a copy)."""
    return list(_meta(pod).get("finalizers") or [])


def is_deleting(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod has a deletionTimestamp."""
    return bool(_meta(pod).get("deletionTimestamp"))


def is_requester(pod: Mapping[str, Any]) -> bool:
    """A requester has a non-empty server-patch, or the inference-server-config key (CONTRACT §1).

    The ISC key's *presence* selects launcher mode even when empty (an empty
    value is a status error, reported by the reconcile).
    """
    notes = annotations_of(pod)
    return bool(notes.get(keys.SERVER_PATCH_ANNOTATION)) or keys.INFERENCE_SERVER_CONFIG_ANNOTATION in notes


def is_launcher(pod: Mapping[str, Any]) -> bool:
    """A launcher carries the launcher-config-name label."""
    return keys.LAUNCHER_CONFIG_NAME_LABEL in labels_of(pod)


def node_of_provider(pod: Mapping[str, Any]) -> str | None:
    """A provider's node: its hostname nodeSelector, not spec.nodeName (CONTRACT §2.4)."""
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    value = selector.get(names.HOSTNAME_NODE_SELECTOR)
    return str(value) if value else None


@dataclasses.dataclass(frozen=True)
class Classification:
    """Which kind of Pod this is for the controller, and where its work is serialized."""

    kind: PodKind
    node: str | None
    key: str | None
    """The work item: the requester UID for requesters and bound providers, the Pod name for launchers."""


def classify(pod: Mapping[str, Any]) -> Classification:
    """Classify a Pod (CONTRACT §7.1) (pure)."""
    if is_requester(pod):
        node = (pod.get("spec") or {}).get("nodeName")
        return Classification("requester", str(node) if node else None, uid(pod))
    record = binding_record.from_annotations(annotations_of(pod))
    if record is not None:
        return Classification("bound-provider", node_of_provider(pod), record.uid)
    if is_launcher(pod):
        return Classification("unbound-launcher", node_of_provider(pod), name(pod))
    return Classification("other", None, None)


def pod_ip(pod: Mapping[str, Any]) -> str | None:
    """status.podIP, or None before one is assigned."""
    value = (pod.get("status") or {}).get("podIP")
    return str(value) if value else None


is_ready = pod_conditions.is_ready
"""Whether the Pod's Ready condition is True (the shared reading in ``crds.pod_conditions``)."""


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
