"""The launcher inventory annotation ``dual-pods.llm-d.ai/instances`` (docs/protocol.md, "Annotations").

A launcher publishes its instances on its own Pod so that the controller and the
extender learn about creations, crashes and deletions from their Pod watch,
without polling every launcher.  The launcher writes it; everybody else only
reads it.  Sleep state is deliberately *not* published: it follows from the
binding (see ``asleep``), and publishing it would race with the controller.
Readiness is: ``ready`` turns true once, when the engine first answers, so
the controller learns it from its Pod watch instead of polling the engine.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Final, Literal

import pydantic

from crds import errors, keys, validation_paths

__all__ = ["INVENTORY_VERSION", "InventoryInstance", "LauncherInventory", "asleep", "parse"]

INVENTORY_VERSION: Final = 1
"""The ``v`` this module writes and understands."""


class InventoryInstance(pydantic.BaseModel):
    """One instance as the launcher sees it."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    id: str = pydantic.Field(min_length=1)
    """The instance ID (``I…i`` when our controller created it)."""
    isc: str = ""
    """The ISC name from the instance's ``isc-name`` create annotation ("" when absent)."""
    config_key: str = pydantic.Field(default="", alias="configKey")
    """The config key from the ``config-key`` create annotation ("" when absent, e.g. upstream's DPC)."""
    gpus: list[str] = pydantic.Field(default_factory=list)
    """GPU UUIDs in the order they were given at creation."""
    port: int | None = pydantic.Field(default=None, ge=1, le=65535)
    """The ``inference-port`` create annotation; absent when it was missing or unparsable."""
    status: Literal["running", "stopped"]
    """Whether the instance's process is alive."""
    ready: bool | None = None
    """True once the engine answered its health check (absent before, and for launchers that do not check)."""


class LauncherInventory(pydantic.BaseModel):
    """Everything one launcher hosts, at one launcher revision."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = INVENTORY_VERSION
    """Format version."""
    revision: int = pydantic.Field(ge=0)
    """The launcher's event revision this snapshot reflects (the ``revision`` of its instance list)."""
    instances: list[InventoryInstance] = pydantic.Field(default_factory=list)
    """Instances in creation order, stopped ones included until deleted."""

    def format(self) -> str:
        """Return the compact JSON annotation value."""
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def find(self, instance_id: str) -> InventoryInstance | None:
        """Return the instance with ``instance_id``, or ``None``."""
        return next((item for item in self.instances if item.id == instance_id), None)


def parse(value: str | None) -> LauncherInventory | None:
    """Return the inventory in ``value``, or ``None`` when the launcher has not published one yet.

    Raises ``errors.InvalidAnnotation`` when the value is not the contracted JSON.
    """
    if value is None:
        return None
    try:
        return LauncherInventory.model_validate_json(value)
    except pydantic.ValidationError as exc:
        raise errors.InvalidAnnotation(keys.INSTANCES_ANNOTATION, value, validation_paths.summary(exc)) from exc


def asleep(inventory: LauncherInventory, bound_instance_id: str | None, sleeping_label: str | None) -> list[str]:
    """Return the IDs of the running instances that are asleep, in inventory order.

    Every running instance sleeps except the bound one (``instance-id``
    annotation) while the launcher's ``sleeping`` label is ``"false"``.
    """
    awake = bound_instance_id if sleeping_label == keys.SLEEPING_FALSE else None
    return [item.id for item in inventory.instances if item.status == "running" and item.id != awake]
