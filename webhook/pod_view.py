"""A read-only view of the parts of a raw Pod that the mutation reads.

The raw dict stays the source of truth (patches are computed against it);
this model only checks the shape of what we read and names the bad field
when a Pod is malformed.  Foreign objects are read with ``extra="allow"``.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

import pydantic

__all__ = ["Container", "Metadata", "OwnerReference", "PodSpec", "PodView", "Resources", "VolumeMount", "parse"]


class _Foreign(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class OwnerReference(_Foreign):
    """``metadata.ownerReferences[]``."""

    api_version: str = pydantic.Field(alias="apiVersion")
    kind: str
    name: str
    controller: bool = False


class Metadata(_Foreign):
    """``metadata``."""

    name: str = ""
    generate_name: str = pydantic.Field(default="", alias="generateName")
    namespace: str = ""
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)
    finalizers: list[str] = pydantic.Field(default_factory=list)
    owner_references: list[OwnerReference] = pydantic.Field(default_factory=list, alias="ownerReferences")

    @pydantic.field_validator("labels", "annotations", mode="before")
    @classmethod
    def _null_map(cls, value: Any) -> Any:
        return {} if value is None else value

    @pydantic.field_validator("finalizers", "owner_references", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value


class Resources(_Foreign):
    """``resources`` of a container; quantities stay as written."""

    limits: dict[str, str | int | float] = pydantic.Field(default_factory=dict)
    requests: dict[str, str | int | float] = pydantic.Field(default_factory=dict)


class VolumeMount(_Foreign):
    """``volumeMounts[]``."""

    name: str


class Container(_Foreign):
    """``spec.containers[]``."""

    name: str
    resources: Resources = pydantic.Field(default_factory=Resources)
    volume_mounts: list[VolumeMount] = pydantic.Field(default_factory=list, alias="volumeMounts")


class PodSpec(_Foreign):
    """``spec``."""

    containers: list[Container]
    scheduler_name: str | None = pydantic.Field(default=None, alias="schedulerName")


class PodView(_Foreign):
    """A Pod as far as the webhook reads it."""

    metadata: Metadata = pydantic.Field(default_factory=Metadata)
    spec: PodSpec


def parse(raw: Any) -> PodView:
    """Validate ``raw``; raise ``pydantic.ValidationError`` naming the bad field."""
    return PodView.model_validate(raw)
