"""InferenceServerConfig (ISC): what model server a requester wants, and in which launchers.

A launcher-mode requester names an ISC (docs/api.md, "InferenceServerConfig").  Its
``modelServerConfig`` is everything that defines an engine instance; the
instance ID and the config key are hashes of exactly that object
(``hashes``), which is why routing labels and annotations sit inside it:
changing them makes existing instances obsolete.  ``launcherConfigName`` is not
hashed; it only says which LauncherConfig hosts the instances.

The routing keys must be usable on a Pod.  The CRD schema does not enforce
that (upstream's does not either, and the controller must be able to report it
in the ISC status), so the model does: decoding an ISC with a bad routing key
fails with the field path, which the controller turns into status.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from crds import go_yaml, kinds, routing_metadata, schema_base, status

__all__ = ["InferenceServerConfig", "InferenceServerConfigSpec", "InferenceServerConfigStatus", "ModelServerConfig"]


class ModelServerConfig(schema_base.SchemaModel):
    """How to run one vLLM instance; the hashed identity of its instances."""

    port: int = pydantic.Field(ge=1, le=65535, json_schema_extra={"format": "int32"})
    """The vLLM listen port inside the launcher Pod, also used for sleep and wake."""
    options: str | None = None
    """vLLM serve options without ``--port`` (the controller appends it)."""
    env_vars: dict[str, str] | None = None
    """Environment variables of the instance. The JSON name is snake_case, as upstream's."""
    labels: dict[str, str] | None = None
    """Routing labels put on the launcher while this instance is bound and awake (e.g. InferencePool selectors)."""
    annotations: dict[str, str] | None = None
    """Routing annotations put on the launcher while this instance is bound and awake."""

    @pydantic.field_validator("labels")
    @classmethod
    def _usable_labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        found = routing_metadata.problems(labels, None)
        if found:
            raise ValueError("; ".join(found))
        return labels

    @pydantic.field_validator("annotations")
    @classmethod
    def _usable_annotations(cls, annotations: dict[str, str] | None) -> dict[str, str] | None:
        found = routing_metadata.problems(None, annotations)
        if found:
            raise ValueError("; ".join(found))
        return annotations

    @pydantic.model_validator(mode="after")
    def _hashable(self) -> ModelServerConfig:
        # Upstream cannot marshal some control characters (and NEL in keys); refusing them here keeps
        # every decoded ISC hashable into an instance ID.
        go_yaml.marshal(self.go_document())
        return self

    def go_document(self) -> dict[str, go_yaml.Value]:
        """Return the config as upstream's Go struct marshals it: ``port`` always, empty fields omitted."""
        document: dict[str, go_yaml.Value] = {"port": self.port}
        if self.options:
            document["options"] = self.options
        for name, mapping in (("env_vars", self.env_vars), ("labels", self.labels), ("annotations", self.annotations)):
            if mapping:
                document[name] = dict(mapping)
        return document

    def routing(self) -> routing_metadata.RoutingMetadata:
        """Return the routing labels and annotations to commit at bind time."""
        return routing_metadata.RoutingMetadata(labels=self.labels or {}, annotations=self.annotations or {})


class InferenceServerConfigSpec(schema_base.SchemaModel):
    """The desired model server and where it runs."""

    model_server_config: ModelServerConfig = pydantic.Field(alias="modelServerConfig")
    """The instance definition; it feeds the instance ID."""
    launcher_config_name: str = pydantic.Field(min_length=1, alias="launcherConfigName")
    """The LauncherConfig, in the same namespace, whose launchers host the instances."""


class InferenceServerConfigStatus(status.ResourceStatus):
    """Written by the dual-pods controller: routing-key problems and unresolved LauncherConfigs."""


class InferenceServerConfig(schema_base.SchemaModel):
    """A model server configuration that launcher-mode requesters refer to by name."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = pydantic.Field(default=kinds.API_VERSION, alias="apiVersion")
    """Always ``fma.llm-d.ai/v1alpha1``."""
    kind: Literal["InferenceServerConfig"] = "InferenceServerConfig"
    """Always ``InferenceServerConfig``."""
    metadata: schema_base.ObjectMeta = pydantic.Field(default_factory=schema_base.ObjectMeta)
    """Standard object metadata."""
    spec: InferenceServerConfigSpec
    """The desired state."""
    status: InferenceServerConfigStatus | None = None
    """The observed state."""
