"""What one raw Pod (or Event) says about FMA, read through the ``crds`` keys.

``kubectl fma`` sees the cluster only through the raw objects the apiserver
returns; this module is the one place that turns a Pod dict into FMA facts —
its role, its node, its binding, its GPUs, when the controller last wrote it —
so the status and explain builders never index dicts themselves.  Malformed
FMA annotations are read as "not known" here rather than raised: an operator
tool must still show the rest of the cluster.

Pure; no I/O.
"""

from __future__ import annotations

import datetime
import enum
import shlex
from collections.abc import Mapping
from typing import Any

from crds import (
    accelerators,
    binding_record,
    errors,
    keys,
    launcher_inventory,
    names,
    pod_view,
    requester_status,
    timestamps,
)

__all__ = [
    "Role",
    "annotations_of",
    "binding",
    "condition",
    "dpc_last_write",
    "gpus",
    "inventory",
    "is_deleting",
    "is_ready",
    "isc_name",
    "labels_of",
    "model_of_options",
    "name",
    "node_of",
    "role",
    "status_errors",
    "uid",
]


class Role(enum.StrEnum):
    """The part a Pod plays in FMA."""

    REQUESTER = "requester"
    LAUNCHER = "launcher"
    DIRECT_PROVIDER = "direct-provider"
    OTHER = "other"


def name(obj: Mapping[str, Any]) -> str:
    """``metadata.name``."""
    return pod_view.PodView(obj).name


def uid(obj: Mapping[str, Any]) -> str:
    """``metadata.uid``."""
    return pod_view.PodView(obj).uid


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.annotations`` (empty when absent)."""
    return pod_view.PodView(obj).annotations


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.labels`` (empty when absent)."""
    return pod_view.PodView(obj).labels


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Whether ``metadata.deletionTimestamp`` is set."""
    return pod_view.PodView(obj).deleting


def role(pod: Mapping[str, Any]) -> Role:
    """Classify ``pod`` by its role (requester and launcher by ``crds.pod_view``).

    See docs/protocol.md, "Roles of Pods".
    """
    view = pod_view.PodView(pod)
    if view.is_requester:
        return Role.REQUESTER
    if view.is_launcher:
        return Role.LAUNCHER
    notes = view.annotations
    if keys.NOMINAL_ANNOTATION in notes or keys.REQUESTER_ANNOTATION in notes:
        return Role.DIRECT_PROVIDER
    return Role.OTHER


def isc_name(pod: Mapping[str, Any]) -> str | None:
    """A launcher-mode requester's ISC name, or None (direct mode, or not a requester)."""
    return pod_view.PodView(pod).isc_name


def node_of(pod: Mapping[str, Any]) -> str | None:
    """The node a Pod runs on: providers by their hostname nodeSelector, others by ``spec.nodeName``."""
    view = pod_view.PodView(pod)
    if role(pod) in (Role.LAUNCHER, Role.DIRECT_PROVIDER) and view.provider_node:
        return view.provider_node
    return view.node_name


def binding(pod: Mapping[str, Any]) -> binding_record.BindingRecord | None:
    """The requester a provider is bound to, or None."""
    return binding_record.from_annotations(annotations_of(pod))


def gpus(pod: Mapping[str, Any]) -> list[str]:
    """The ``accelerators`` annotation's UUIDs (empty when unknown or malformed)."""
    try:
        return accelerators.parse(annotations_of(pod).get(keys.ACCELERATORS_ANNOTATION))
    except errors.InvalidAnnotation:
        return []


def inventory(pod: Mapping[str, Any]) -> launcher_inventory.LauncherInventory | None:
    """A launcher's published inventory (its ``instances`` annotation), or None when absent or malformed."""
    try:
        return launcher_inventory.parse(annotations_of(pod).get(keys.INSTANCES_ANNOTATION))
    except errors.InvalidAnnotation:
        return None


def status_errors(pod: Mapping[str, Any]) -> list[str]:
    """The controller's errors in a requester's ``status`` annotation (a malformed value is shown as is)."""
    value = annotations_of(pod).get(keys.STATUS_ANNOTATION)
    try:
        return requester_status.parse(value)
    except errors.InvalidAnnotation:
        return [f"unreadable status annotation: {value!r}"]


condition = pod_view.condition
"""The Pod condition of a type, or None (the shared reading in ``crds.pod_view``)."""

is_ready = pod_view.is_ready
"""Whether the Pod's Ready condition is True (the shared reading in ``crds.pod_view``)."""


def dpc_last_write(pod: Mapping[str, Any]) -> datetime.datetime | None:
    """When the dual-pods controller last updated the Pod's metadata (its managedFields entry), or None."""
    latest: datetime.datetime | None = None
    for entry in pod_view.PodView(pod).metadata.get("managedFields") or []:
        if not isinstance(entry, Mapping) or entry.get("manager") != names.DPC_FIELD_MANAGER:
            continue
        if entry.get("subresource"):
            continue
        when = timestamps.parse_time(entry.get("time"))
        if when is not None and (latest is None or when > latest):
            latest = when
    return latest


def model_of_options(options: str | None) -> str:
    """The ``--model`` value in an engine's command-line options ("" when absent or unparsable)."""
    if not options:
        return ""
    try:
        words = shlex.split(options)
    except ValueError:
        return ""
    for index, word in enumerate(words):
        if word == "--model" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--model="):
            return word.split("=", 1)[1]
    return ""
