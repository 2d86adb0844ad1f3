"""The launcher's published inventory: the observer seam and the annotation content.

The launcher calls an ``InventoryObserver`` after every instance event with
the full list of instances, so the publisher that patches the launcher's own
Pod (docs/launcher.md, "Publishing the inventory on the launcher
Pod"; ``pod_publisher``) plugs in without the process
table knowing about Kubernetes.  What it writes is computed here, purely: the
``vllm-instance-signature`` and the ``instances`` annotation, whose keys and
model live in ``crds`` (``keys``, ``names``, ``launcher_inventory``) so that
the readers (controller, extender) parse exactly what is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Protocol

import pydantic

from crds import keys, launcher_inventory, names
from launcher import schemas

__all__ = [
    "InventoryObserver",
    "NullObserver",
    "Snapshot",
    "inventory",
    "inventory_json",
    "pod_annotations",
    "signature",
]

logger = logging.getLogger(__name__)

_MAX_PORT = 65535


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
    raw = (instance.annotations or {}).get(names.INSTANCE_INFERENCE_PORT)
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    port = int(raw)
    return port if 1 <= port <= _MAX_PORT else None


def inventory(snapshot: Snapshot) -> launcher_inventory.LauncherInventory:
    """The ``instances`` annotation model of this snapshot (pure).

    Create annotations give ``isc``, ``configKey`` and ``port``.
    """
    entries = []
    for instance in snapshot.instances:
        notes = instance.annotations or {}
        entries.append(
            launcher_inventory.InventoryInstance(
                id=instance.instance_id,
                isc=notes.get(names.INSTANCE_ISC_NAME, ""),
                config_key=notes.get(names.INSTANCE_CONFIG_KEY, ""),
                gpus=list(instance.gpu_uuids or []),
                port=_port(instance),
                status=instance.status,
                ready=instance.ready,
            )
        )
    return launcher_inventory.LauncherInventory(revision=snapshot.revision, instances=entries)


def inventory_json(snapshot: Snapshot) -> str:
    """The compact JSON of the ``instances`` annotation (pure)."""
    return inventory(snapshot).format()


def pod_annotations(snapshot: Snapshot) -> dict[str, str]:
    """Both annotations the publisher writes on the launcher Pod (pure)."""
    return {
        keys.VLLM_INSTANCE_SIGNATURE_ANNOTATION: signature(snapshot.instances),
        keys.INSTANCES_ANNOTATION: inventory_json(snapshot),
    }
