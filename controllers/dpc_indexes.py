"""The dual-pods controller's indexes over the Pod cache.

Every reconcile finds its Pods through one of these (requester by UID,
providers bound to a requester, launchers per node, ...), so they are defined
once, beside each other, and handed to the shared Pod ``WatchCache`` at start.
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kube
from controllers import pod_view
from crds import binding_record, keys

__all__ = [
    "BOUND_TO",
    "DIRECT_NODE",
    "LAUNCHER_NODE",
    "NOMINAL",
    "POD_INDEXERS",
    "REQUESTER_ISC",
    "REQUESTER_NODE",
    "REQUESTER_UID",
    "requester_isc",
]

REQUESTER_UID = "requester-uid"
"""Requesters by UID."""
BOUND_TO = "bound-to"
"""Providers by the UID of the requester they are bound to."""
LAUNCHER_NODE = "launcher-node"
"""Launcher Pods by node."""
REQUESTER_NODE = "requester-node"
"""Scheduled requesters by node."""
REQUESTER_ISC = "requester-isc"
"""Requesters by the InferenceServerConfig they name."""
NOMINAL = "nominal"
"""Direct providers by their ``nominal`` hash."""
DIRECT_NODE = "direct-provider-node"
"""Direct providers by node."""


def _requester_node(pod: Mapping[str, Any]) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if pod_view.is_requester(pod) and node else []


def _requester_uid(pod: Mapping[str, Any]) -> list[str]:
    return [pod_view.uid(pod)] if pod_view.is_requester(pod) else []


def _bound_to(pod: Mapping[str, Any]) -> list[str]:
    if pod_view.is_requester(pod):
        return []
    record = binding_record.from_annotations(pod_view.annotations_of(pod))
    return [record.uid] if record is not None else []


def _launcher_node(pod: Mapping[str, Any]) -> list[str]:
    if not pod_view.is_launcher(pod):
        return []
    node = pod_view.node_of_provider(pod)
    return [node] if node else []


def requester_isc(pod: Mapping[str, Any]) -> list[str]:
    """The ISC a requester names, as an index value list (empty for other Pods)."""
    if not pod_view.is_requester(pod):
        return []
    value = pod_view.annotations_of(pod).get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION)
    return [value] if value else []


def _nominal(pod: Mapping[str, Any]) -> list[str]:
    value = pod_view.annotations_of(pod).get(keys.NOMINAL_ANNOTATION)
    return [value] if value and not pod_view.is_requester(pod) else []


def _direct_node(pod: Mapping[str, Any]) -> list[str]:
    if not _nominal(pod):
        return []
    node = pod_view.node_of_provider(pod)
    return [node] if node else []


POD_INDEXERS: dict[str, kube.cache.Indexer] = {
    REQUESTER_UID: _requester_uid,
    BOUND_TO: _bound_to,
    LAUNCHER_NODE: _launcher_node,
    REQUESTER_NODE: _requester_node,
    REQUESTER_ISC: requester_isc,
    NOMINAL: _nominal,
    DIRECT_NODE: _direct_node,
}
"""Indexes the controllers' Pod cache needs; pass them to its ``WatchCache``."""
