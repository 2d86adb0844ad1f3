"""The launcher's published inventory: the observer seam and the annotation content.

The launcher calls an ``InventoryObserver`` after every instance event with
the full list of instances, so a publisher that patches the launcher's own
Pod (CONTRACT.md §4.9, §12.3) can be plugged in without the process table
knowing about Kubernetes.  What such a publisher writes is computed here,
purely: the ``vllm-instance-signature`` and the ``instances`` annotation.

The key names below are private until they move to ``crds``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Protocol

import pydantic

from launcher import schemas

__all__ = [
    "InventoryObserver",
    "NullObserver",
    "Snapshot",
    "inventory_json",
    "pod_annotations",
    "signature",
]

logger = logging.getLogger(__name__)

_SIGNATURE_ANNOTATION = "dual-pods.llm-d.ai/vllm-instance-signature"
_INSTANCES_ANNOTATION = "dual-pods.llm-d.ai/instances"
_ISC_NAME = "isc-name"
_INFERENCE_PORT = "inference-port"
_CONFIG_KEY = "config-key"


class Snapshot(pydantic.BaseModel):
    """The launcher revision and every instance's state, in creation order."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    revision: int
    instances: list[schemas.InstanceState]


class InventoryObserver(Protocol):
    """Told about every instance change; must not block (schedule I/O, coalesce, return)."""

    def inventory_changed(self, snapshot: Snapshot) -> None:
        """Called on the event loop after each CREATED, STOPPED or DELETED event."""
        ...


class NullObserver:
    """The observer outside a Pod: nothing to publish."""

    def inventory_changed(self, snapshot: Snapshot) -> None:
        """Ignore the change."""


def signature(instances: list[schemas.InstanceState]) -> str:
    """Lowercase hex SHA-256 over the sorted ``[instance_id, status]`` pairs (compact JSON; pure)."""
    pairs = sorted([i.instance_id, i.status] for i in instances)
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()


def _port(instance: schemas.InstanceState) -> int | None:
    raw = (instance.annotations or {}).get(_INFERENCE_PORT)
    return int(raw) if raw is not None and raw.isdigit() else None


def inventory_json(snapshot: Snapshot) -> str:
    """The compact JSON of the ``instances`` annotation (CONTRACT.md §12.3; pure)."""
    entries = []
    for instance in snapshot.instances:
        notes = instance.annotations or {}
        entry: dict[str, object] = {"id": instance.instance_id}
        if _ISC_NAME in notes:
            entry["isc"] = notes[_ISC_NAME]
        if _CONFIG_KEY in notes:
            entry["configKey"] = notes[_CONFIG_KEY]
        entry["gpus"] = list(instance.gpu_uuids or [])
        port = _port(instance)
        if port is not None:
            entry["port"] = port
        entry["status"] = instance.status
        entries.append(entry)
    body = {"v": 1, "revision": snapshot.revision, "instances": entries}
    return json.dumps(body, separators=(",", ":"))


def pod_annotations(snapshot: Snapshot) -> dict[str, str]:
    """Both annotations a publisher writes on the launcher Pod (pure)."""
    return {_SIGNATURE_ANNOTATION: signature(snapshot.instances), _INSTANCES_ANNOTATION: inventory_json(snapshot)}
