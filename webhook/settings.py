"""Settings of ``fma-webhook``: the one ``Settings`` object of the process.

Built once in ``main()`` from flags (which win) and ``FMA_WEBHOOK_*``
environment variables, then passed down; nothing reads the environment
anywhere else, and nothing here runs at import time.
"""

from __future__ import annotations

import pathlib
from typing import Literal

import pydantic
import pydantic_settings

from crds import names

__all__ = ["LogLevel", "Settings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(pydantic_settings.BaseSettings):
    """``fma-webhook``: the mutating admission webhook."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="FMA_WEBHOOK_", extra="forbid")

    host: str = "0.0.0.0"  # noqa: S104 - the apiserver reaches the webhook through the Pod network
    port: int = pydantic.Field(default=8443, ge=1, le=65535)
    tls_cert_file: pathlib.Path = pathlib.Path("/etc/fma-webhook/tls/tls.crt")
    tls_key_file: pathlib.Path = pathlib.Path("/etc/fma-webhook/tls/tls.key")
    cert_check_seconds: float = pydantic.Field(default=10.0, gt=0)
    """How often the certificate files are checked for renewal."""

    requester_image: str = "fma:latest"
    """Image of the requester agent container."""
    requester_command: list[str] = pydantic.Field(default_factory=lambda: ["fma-requester"])
    """Command of the requester agent container (``fma-requester``; flags may follow)."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    requester_cpu: str = "50m"
    """CPU request of the requester agent."""
    requester_memory: str = "128Mi"
    """Memory request and limit of the requester agent."""
    probes_port: int = pydantic.Field(default=names.PROBES_PORT_DEFAULT, ge=1, le=65535)
    spi_port: int = pydantic.Field(default=names.SPI_PORT_DEFAULT, ge=1, le=65535)
    scheduler_name: str = names.SCHEDULER_NAME_DEFAULT
    """Scheduler set on requesters; empty leaves ``schedulerName`` alone."""

    max_body_bytes: int = pydantic.Field(default=7 * 1024 * 1024, ge=4096)
    """Largest AdmissionReview accepted (the apiserver's own limit is about 3 MiB for an object)."""
    lookups: bool = True
    """Read the cluster for warnings (missing ISC) and owner-selector checks."""
    kubeconfig: str | None = None
    """Credentials for lookups (default: $KUBECONFIG, ~/.kube/config or in-cluster)."""
    lookup_timeout_seconds: float = pydantic.Field(default=1.0, gt=0)
    log_level: LogLevel = "info"

    placement: Literal["extender", "hints", "hints+extender"] = "extender"
    """How requesters reach their sleepers: ``extender`` (the FMA scheduler's extender, exact),
    ``hints`` (node-affinity hints written here, no extender) or both (docs/extender.md)."""
    placement_namespace: str | None = None
    """Namespace of the ISCs and LauncherConfigs the hints read (the controllers'); None watches all."""
    gpu_map_namespace: str | None = None
    """Namespace of the ``gpu-map`` ConfigMap; None means ``placement_namespace``."""
    gpu_allocation: Literal["lowest-index", "unknown"] = "lowest-index"
    """How the device plugin picks GPUs (as the extender's ``gpu_allocation``)."""
    sleeper_limit: int = pydantic.Field(default=2, ge=0)
    """The controller's direct-mode sleeper limit (as the extender's)."""
    nominate: Literal["off", "gate", "plugin"] = "off"
    """With hints, for a requester whose best node is certain-hot: ``gate`` holds it by a scheduling gate until
    the controllers have set that node as its ``status.nominatedNodeName`` (the stock kube-scheduler tries it
    first and skips scoring); ``plugin`` only records that node for the NominatedNode plugin of FMA's own
    kube-scheduler build, which restricts the first scheduling attempt to it (docs/extender.md, "Nomination").
    ``true``/``false`` are read as ``gate``/``off``."""
    max_hinted_nodes: int = pydantic.Field(default=16, ge=1, le=1000)
    """At most this many nodes are named in one requester's hints."""
    gpu_claims: Literal["device-plugin", "dra"] = "device-plugin"
    """How requesters get GPUs by default: ``nvidia.com/gpu`` or a ResourceClaim each (DRA); a Pod's
    ``dual-pods.llm-d.ai/gpu-request`` annotation overrides it (docs/install.md, "DRA clusters")."""
    dra_device_class: str = pydantic.Field(default="fma-gpu", min_length=1)
    """The DeviceClass a requester's claim asks for."""
    dra_driver: str = pydantic.Field(default="gpu.nvidia.com", min_length=1)
    """The DRA driver whose ``uuid`` attribute names a sleeper's GPUs."""

    @pydantic.field_validator("nominate", mode="before")
    @classmethod
    def _nominate_from_bool(cls, value: object) -> object:
        """``true``/``false`` (the setting was a switch before ``plugin`` existed) mean ``gate``/``off``."""
        if isinstance(value, bool):
            return "gate" if value else "off"
        return value

    @pydantic.model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.probes_port == self.spi_port:
            raise ValueError(f"probes_port and spi_port must differ, both are {self.probes_port}")
        if not self.requester_command:
            raise ValueError("requester_command must not be empty")
        if self.placement != "extender" and not self.lookups:
            raise ValueError(f"placement {self.placement!r} needs lookups (the hints read the cluster)")
        if self.nominate != "off" and not self.hints:
            raise ValueError(
                f"nominate needs placement 'hints' or 'hints+extender' (the nominated node is the hints' "
                f"certain-hot node), got placement {self.placement!r}"
            )
        return self

    @property
    def dra(self) -> bool:
        """Whether requesters get ResourceClaims by default (the webhook then reads the sleepers)."""
        return self.gpu_claims == "dra"

    @property
    def hints(self) -> bool:
        """Whether the webhook writes placement hints."""
        return self.placement != "extender"
