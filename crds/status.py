"""Status of the FMA custom resources: ``observedGeneration``, ``errors`` and standard conditions.

Upstream's populator writes ``{observedGeneration, errors}`` (docs/api.md, "Status");
``errors`` stays authoritative for upstream tools.  We add ``conditions`` shaped
exactly like ``metav1.Condition``, keyed by ``type``, with the condition types
and reasons fixed here so that the controllers that write them and the tools
that read them agree.  Upstream's CRD prunes ``conditions``, so every field here
is optional and a missing or ``null`` list reads as empty.

The exact upstream error messages are produced here too, because upstream tools
compare them verbatim.

Pure; no I/O.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic

from crds import names, schema_base

__all__ = [
    "ACCEPTED",
    "REASON_INVALID_SELECTOR",
    "REASON_INVALID_SPEC",
    "REASON_LAUNCHER_CONFIG_MALFORMED",
    "REASON_LAUNCHER_CONFIG_NOT_FOUND",
    "REASON_REFS_RESOLVED",
    "REASON_VALID",
    "RESOLVED_REFS",
    "Condition",
    "ResourceStatus",
    "lc_missing_container_message",
    "lpp_malformed_lc_message",
    "lpp_missing_lc_message",
    "set_condition",
]

ACCEPTED = "Accepted"
"""Condition type: the spec is valid on its own."""
RESOLVED_REFS = "ResolvedRefs"
"""Condition type (ISC and LPP): the referenced LauncherConfigs exist and are well-formed."""

REASON_VALID = "Valid"
"""``Accepted=True``."""
REASON_INVALID_SPEC = "InvalidSpec"
"""``Accepted=False``: a field is invalid (e.g. a routing key, a template without ``inference-server``)."""
REASON_INVALID_SELECTOR = "InvalidSelector"
"""``Accepted=False`` (LPP): the label selector cannot be parsed."""
REASON_REFS_RESOLVED = "RefsResolved"
"""``ResolvedRefs=True``."""
REASON_LAUNCHER_CONFIG_NOT_FOUND = "LauncherConfigNotFound"
"""``ResolvedRefs=False``: a referenced LauncherConfig does not exist."""
REASON_LAUNCHER_CONFIG_MALFORMED = "LauncherConfigMalformed"
"""``ResolvedRefs=False``: a referenced LauncherConfig is malformed."""

_CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


class Condition(schema_base.SchemaModel):
    """One aspect of the object's state, shaped like ``metav1.Condition``."""

    type: str = pydantic.Field(max_length=316, pattern=_CONDITION_TYPE)
    """The condition type in CamelCase, e.g. ``Accepted``."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    observed_generation: int | None = pydantic.Field(default=None, ge=0, alias="observedGeneration")
    """The ``metadata.generation`` the condition was computed from."""
    last_transition_time: pydantic.AwareDatetime = pydantic.Field(alias="lastTransitionTime")
    """When the status last changed."""
    reason: str = pydantic.Field(min_length=1, max_length=1024, pattern=_CONDITION_REASON)
    """A CamelCase machine-readable reason."""
    message: str = pydantic.Field(max_length=32768)
    """A human-readable explanation."""


class ResourceStatus(schema_base.SchemaModel):
    """The status shared by the three kinds."""

    observed_generation: int | None = pydantic.Field(
        default=None, ge=0, alias="observedGeneration", json_schema_extra={"format": "int64"}
    )
    """The ``metadata.generation`` this status describes."""
    errors: Annotated[list[str], pydantic.BeforeValidator(_none_as_empty)] = pydantic.Field(default_factory=list)
    """Problems found with the spec, in upstream's wording; empty when there are none."""
    conditions: Annotated[list[Condition], pydantic.BeforeValidator(_none_as_empty)] = pydantic.Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Standard conditions (``Accepted``, ``ResolvedRefs``), one per type."""

    @pydantic.field_validator("conditions")
    @classmethod
    def _unique_types(cls, conditions: list[Condition]) -> list[Condition]:
        seen: set[str] = set()
        for condition in conditions:
            if condition.type in seen:
                raise ValueError(f"condition type {condition.type!r} appears more than once")
            seen.add(condition.type)
        return conditions

    def condition(self, condition_type: str) -> Condition | None:
        """Return the condition of ``condition_type``, or ``None``."""
        return next((item for item in self.conditions if item.type == condition_type), None)


def set_condition(
    conditions: list[Condition],
    *,
    condition_type: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """Return ``conditions`` with ``condition_type`` set, like apimachinery's ``SetStatusCondition``.

    ``lastTransitionTime`` moves to ``now`` only when the status changes, so that
    rewriting an unchanged condition does not look like a transition.  The
    order of the other conditions is kept and a new type is appended.  Pure.
    """
    updated: list[Condition] = []
    found = False
    for existing in conditions:
        if existing.type != condition_type:
            updated.append(existing)
            continue
        found = True
        since = existing.last_transition_time if existing.status == status else now
        updated.append(
            existing.model_copy(
                update={
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "observed_generation": observed_generation,
                    "last_transition_time": since,
                }
            )
        )
    if not found:
        updated.append(
            Condition(
                type=condition_type,
                status=status,
                reason=reason,
                message=message,
                observed_generation=observed_generation,
                last_transition_time=now,
            )
        )
    return updated


def lc_missing_container_message() -> str:
    """Upstream's LauncherConfig status error for a template without the ``inference-server`` container."""
    return f'container "{names.INFERENCE_SERVER_CONTAINER}" not found'


def lpp_missing_lc_message(lc_name: str) -> str:
    """Upstream's LPP status error for a ``countForLauncher`` entry naming a missing LauncherConfig."""
    return f'LauncherConfig "{lc_name}" referenced in CountForLauncher does not exist'


def lpp_malformed_lc_message(lc_name: str, error: str) -> str:
    """Upstream's LPP status error for a ``countForLauncher`` entry naming a malformed LauncherConfig."""
    return f'LauncherConfig "{lc_name}" referenced in CountForLauncher is malformed: {error}'
