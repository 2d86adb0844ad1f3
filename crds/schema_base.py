"""Base classes of the custom-resource models: our schemas and the foreign ObjectMeta.

Our own schemas (spec and status of the three kinds) refuse unknown fields
(``extra="forbid"``), so a typo in a manifest is an error rather than a silently
ignored setting, and they carry JSON names as aliases while Python code uses
snake_case.  Field docstrings become descriptions, which the CRD generator
copies into the OpenAPI schema, so the docs users see in ``kubectl explain``
come from the same place as the code.  ``ObjectMeta`` belongs to Kubernetes: we
read a few fields and keep every other one untouched (``extra="allow"``).

Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

import pydantic

__all__ = ["ObjectMeta", "SchemaModel"]


class SchemaModel(pydantic.BaseModel):
    """Base of every spec and status model: strict about fields, JSON names as aliases."""

    model_config = pydantic.ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
    )

    def to_raw(self) -> dict[str, Any]:
        """Return the JSON-ready dict with JSON names and unset optional fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(pydantic.BaseModel):
    """The standard Kubernetes object metadata; only the fields FMA reads are typed."""

    model_config = pydantic.ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    name: str | None = None
    """The object's name."""
    generate_name: str | None = pydantic.Field(default=None, alias="generateName")
    """The name prefix for server-generated names."""
    namespace: str | None = None
    """The object's namespace."""
    uid: str | None = None
    """The object's UID."""
    resource_version: str | None = pydantic.Field(default=None, alias="resourceVersion")
    """The version for optimistic concurrency."""
    generation: int | None = None
    """The spec generation, compared with ``status.observedGeneration``."""
    labels: dict[str, str] | None = None
    """Labels."""
    annotations: dict[str, str] | None = None
    """Annotations."""

    def ref(self) -> str:
        """Return ``namespace/name`` (or just the name) for messages."""
        name = self.name or self.generate_name or ""
        return f"{self.namespace}/{name}" if self.namespace else name
