"""LauncherConfig (LC): the Pod template of launchers and how many instances each may hold.

The template's ``spec`` is a full core/v1 PodSpec.  The model keeps it as a
plain dict (only ``containers`` is checked) rather than modelling all of
PodSpec: FMA copies it into launcher Pods after canonical sorting and must
not lose or reorder fields.  The CRD schema, on the other hand, embeds the
whole PodSpec schema of the apiserver's own OpenAPI (``pod_template_schema``),
so the apiserver prunes and type-checks a template when the LC is written.

A template without an ``inference-server`` container is *malformed*, not
invalid: the object is stored and read, the populator goes hands-off and the
status says why (docs/api.md, "LauncherConfig").  ``malformation`` reports that
condition.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from crds import kinds, names, schema_base, status

__all__ = ["LauncherConfig", "LauncherConfigSpec", "LauncherConfigStatus", "PodTemplate", "PodTemplateMetadata"]


class PodTemplateMetadata(schema_base.SchemaModel):
    """The only metadata a launcher template may set: labels and annotations copied onto launchers."""

    labels: dict[str, str] | None = None
    """Labels copied onto every launcher Pod."""
    annotations: dict[str, str] | None = None
    """Annotations copied onto every launcher Pod."""


class PodTemplate(schema_base.SchemaModel):
    """The launcher Pod template."""

    metadata: PodTemplateMetadata | None = None
    """Labels and annotations for the launcher Pods."""
    spec: dict[str, Any] | None = None
    """A core/v1 PodSpec; it must have ``containers``, one of which should be ``inference-server``."""

    @pydantic.field_validator("spec")
    @classmethod
    def _has_containers(cls, spec: dict[str, Any] | None) -> dict[str, Any] | None:
        if spec is None:
            return None
        containers = spec.get("containers")
        if not isinstance(containers, list):
            raise ValueError("a PodSpec must have a 'containers' list")
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not isinstance(container.get("name"), str):
                raise ValueError(f"containers[{index}] must be an object with a string 'name'")
        return spec

    def container(self, name: str) -> dict[str, Any] | None:
        """Return the container called ``name`` in the template, or ``None``."""
        for container in (self.spec or {}).get("containers", []):
            if container.get("name") == name:
                return dict(container)
        return None


class LauncherConfigSpec(schema_base.SchemaModel):
    """How launchers of this config are built."""

    max_instances: int = pydantic.Field(ge=1, le=2**31 - 1, alias="maxInstances", json_schema_extra={"format": "int32"})
    """The most vLLM instances one launcher may hold (enforced by the dual-pods controller)."""
    pod_template: PodTemplate = pydantic.Field(default_factory=PodTemplate, alias="podTemplate")
    """The Pod template of the launchers."""


class LauncherConfigStatus(status.ResourceStatus):
    """Written by the launcher populator."""


class LauncherConfig(schema_base.SchemaModel):
    """A kind of launcher: its Pod template and instance capacity."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = pydantic.Field(default=kinds.API_VERSION, alias="apiVersion")
    """Always ``fma.llm-d.ai/v1alpha1``."""
    kind: Literal["LauncherConfig"] = "LauncherConfig"
    """Always ``LauncherConfig``."""
    metadata: schema_base.ObjectMeta = pydantic.Field(default_factory=schema_base.ObjectMeta)
    """Standard object metadata."""
    spec: LauncherConfigSpec
    """The desired state."""
    status: LauncherConfigStatus | None = None
    """The observed state."""

    def malformation(self) -> str | None:
        """Return upstream's error message if the template lacks ``inference-server``, else ``None``."""
        if self.spec.pod_template.container(names.INFERENCE_SERVER_CONTAINER) is None:
            return status.lc_missing_container_message()
        return None
