"""The Pod, as simnode reads it from the apiserver.

Parsed once at the boundary (the watch) into pydantic models that keep
unknown fields (``extra="allow"``), so that later code reads typed
attributes and can still notice fields it does not support.  Only the parts
of the Pod API a kubelet acts on are modelled.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import alias_generators

__all__ = [
    "ConfigMapProjection",
    "Container",
    "ContainerPort",
    "DownwardApiFile",
    "DownwardApiProjection",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "FieldRef",
    "HttpGetAction",
    "KeyRef",
    "KeyToPath",
    "ObjectMeta",
    "Pod",
    "PodCondition",
    "PodSpec",
    "PodStatus",
    "Probe",
    "ProjectedSource",
    "ProjectedVolume",
    "ResourceFieldRef",
    "Resources",
    "SecretProjection",
    "ServiceAccountTokenProjection",
    "TcpSocketAction",
    "Volume",
    "VolumeMount",
]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=alias_generators.to_camel, frozen=True
    )


class ObjectMeta(_Model):
    """The metadata fields simnode reads."""

    name: str
    namespace: str = "default"
    uid: str
    resource_version: str | None = None
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] = pydantic.Field(default_factory=list)


class FieldRef(_Model):
    """A downward-API field path such as ``metadata.labels['app']``."""

    field_path: str


class ResourceFieldRef(_Model):
    """A downward-API resource such as ``limits.cpu``, optionally of another container."""

    resource: str
    container_name: str | None = None
    divisor: str | int | None = None


class KeyRef(_Model):
    """A key of a ConfigMap or Secret."""

    name: str = ""
    key: str
    optional: bool | None = None


class EnvVarSource(_Model):
    """Where an env var's value comes from."""

    field_ref: FieldRef | None = None
    resource_field_ref: ResourceFieldRef | None = None
    config_map_key_ref: KeyRef | None = None
    secret_key_ref: KeyRef | None = None


class EnvVar(_Model):
    """One ``env`` entry."""

    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class _NameRef(_Model):
    name: str = ""
    optional: bool | None = None


class EnvFromSource(_Model):
    """One ``envFrom`` entry: every key of a ConfigMap or Secret."""

    prefix: str = ""
    config_map_ref: _NameRef | None = None
    secret_ref: _NameRef | None = None


class HttpHeader(_Model):
    """A header an httpGet probe sends."""

    name: str
    value: str


class HttpGetAction(_Model):
    """An httpGet probe."""

    path: str = "/"
    port: int | str
    host: str | None = None
    scheme: str = "HTTP"
    http_headers: list[HttpHeader] = pydantic.Field(default_factory=list)


class TcpSocketAction(_Model):
    """A tcpSocket probe."""

    port: int | str
    host: str | None = None


class Probe(_Model):
    """A readiness, liveness or startup probe with the API's defaults."""

    http_get: HttpGetAction | None = None
    tcp_socket: TcpSocketAction | None = None
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None


class ContainerPort(_Model):
    """A declared container port (probes may name it)."""

    container_port: int
    name: str | None = None


class Resources(_Model):
    """Requests and limits as quantity strings."""

    limits: dict[str, str | int] = pydantic.Field(default_factory=dict)
    requests: dict[str, str | int] = pydantic.Field(default_factory=dict)


class VolumeMount(_Model):
    """Where a volume appears in a container."""

    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None
    sub_path_expr: str | None = None


class Container(_Model):
    """A container; ``image`` is ignored, ``command`` + ``args`` run as a local process."""

    name: str
    image: str = ""
    command: list[str] = pydantic.Field(default_factory=list)
    args: list[str] = pydantic.Field(default_factory=list)
    working_dir: str | None = None
    env: list[EnvVar] = pydantic.Field(default_factory=list)
    env_from: list[EnvFromSource] = pydantic.Field(default_factory=list)
    ports: list[ContainerPort] = pydantic.Field(default_factory=list)
    resources: Resources = pydantic.Field(default_factory=Resources)
    volume_mounts: list[VolumeMount] = pydantic.Field(default_factory=list)
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    restart_policy: str | None = None


class KeyToPath(_Model):
    """A key projected into a file."""

    key: str
    path: str
    mode: int | None = None


class ConfigMapProjection(_Model):
    """A configMap volume or projection."""

    name: str = ""
    items: list[KeyToPath] = pydantic.Field(default_factory=list)
    optional: bool | None = None
    default_mode: int | None = None


class SecretProjection(_Model):
    """A secret volume (``secretName``) or projection (``name``)."""

    name: str = ""
    secret_name: str = ""
    items: list[KeyToPath] = pydantic.Field(default_factory=list)
    optional: bool | None = None
    default_mode: int | None = None


class DownwardApiFile(_Model):
    """A downward-API file."""

    path: str
    field_ref: FieldRef | None = None
    resource_field_ref: ResourceFieldRef | None = None
    mode: int | None = None


class DownwardApiProjection(_Model):
    """A downwardAPI volume or projection."""

    items: list[DownwardApiFile] = pydantic.Field(default_factory=list)
    default_mode: int | None = None


class ServiceAccountTokenProjection(_Model):
    """A bound service-account token obtained with the TokenRequest API."""

    path: str
    audience: str | None = None
    expiration_seconds: int = 3600


class ProjectedSource(_Model):
    """One source of a projected volume."""

    service_account_token: ServiceAccountTokenProjection | None = None
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardApiProjection | None = pydantic.Field(default=None, alias="downwardAPI")


class ProjectedVolume(_Model):
    """A projected volume."""

    sources: list[ProjectedSource] = pydantic.Field(default_factory=list)
    default_mode: int | None = None


class Volume(_Model):
    """A Pod volume; kinds other than the modelled ones stay in ``model_extra``."""

    name: str
    empty_dir: dict[str, Any] | None = None
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardApiProjection | None = pydantic.Field(default=None, alias="downwardAPI")
    projected: ProjectedVolume | None = None


class ReadinessGate(_Model):
    """A Pod condition that must be True for the Pod to be Ready."""

    condition_type: str


class PodSpec(_Model):
    """The Pod spec fields simnode acts on."""

    node_name: str | None = None
    containers: list[Container]
    init_containers: list[Container] = pydantic.Field(default_factory=list)
    volumes: list[Volume] = pydantic.Field(default_factory=list)
    restart_policy: str = "Always"
    termination_grace_period_seconds: int = 30
    service_account_name: str = "default"
    host_network: bool = False
    host_pid: bool = pydantic.Field(default=False, alias="hostPID")
    host_ipc: bool = pydantic.Field(default=False, alias="hostIPC")
    readiness_gates: list[ReadinessGate] = pydantic.Field(default_factory=list)
    enable_service_links: bool | None = None


class PodCondition(_Model):
    """A Pod condition as reported."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class PodStatus(_Model):
    """The reported status fields simnode reads back (for adoption and conditions)."""

    phase: str | None = None
    pod_ip: str | None = pydantic.Field(default=None, alias="podIP")
    host_ip: str | None = pydantic.Field(default=None, alias="hostIP")
    start_time: str | None = None
    conditions: list[PodCondition] = pydantic.Field(default_factory=list)
    container_statuses: list[dict[str, Any]] = pydantic.Field(default_factory=list)


class Pod(_Model):
    """A Pod."""

    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus = pydantic.Field(default_factory=PodStatus)

    @property
    def key(self) -> str:
        """``namespace/name``, for logs."""
        return f"{self.metadata.namespace}/{self.metadata.name}"
