"""Settings of ``fma-extender``: one ``BaseSettings``, built once in ``main()``.

Flags win over ``FMA_EXTENDER_*`` environment variables, which win over the
defaults.  HTTPS is on when both ``tls_cert_file`` and ``tls_key_file`` are set
(e.g. files written by ``fma-certs``, reloaded when they change); otherwise the extender serves plain
HTTP, which is right for its usual place beside the FMA scheduler in one Pod,
listening on loopback.  Nothing here runs at import time.
"""

from __future__ import annotations

import pathlib
from typing import Literal

import pydantic
import pydantic_settings

__all__ = ["LogLevel", "Settings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(pydantic_settings.BaseSettings):
    """``fma-extender``: the kube-scheduler extender (docs/extender.md, "Settings")."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="FMA_EXTENDER_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = pydantic.Field(default=8890, ge=1, le=65535)
    log_level: LogLevel = "info"
    kubeconfig: str | None = None
    """Path of a kubeconfig; None means ``$KUBECONFIG``, ``~/.kube/config`` or in-cluster credentials."""
    namespace: str | None = None
    """Namespace of the ISCs and LauncherConfigs (the controllers' namespace); None watches all."""
    gpu_map_namespace: str | None = None
    """Namespace of the ``gpu-map`` ConfigMap; None means ``namespace``; without either, GPU UUIDs are unknown."""
    tls_cert_file: pathlib.Path | None = None
    tls_key_file: pathlib.Path | None = None
    cert_check_seconds: float = pydantic.Field(default=30.0, gt=0)
    """How often the serving certificate files are re-read for a renewed pair."""
    sleeper_limit: int = pydantic.Field(default=2, ge=0)
    """The controller's direct-mode sleeper limit, for the eviction penalty."""
    gpu_allocation: Literal["lowest-index", "unknown"] = "lowest-index"
    """How the device plugin picks GPUs (``crds.sleeper_scoring.Allocation``): ``lowest-index`` for simnode and
    the NVIDIA device plugin's default, ``unknown`` for anything else."""
    max_body_bytes: int = pydantic.Field(default=64 * 1024 * 1024, ge=1024)
    sync_timeout_seconds: float = pydantic.Field(default=60.0, gt=0)

    @pydantic.model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self

    @property
    def effective_gpu_map_namespace(self) -> str | None:
        """Where ``gpu-map`` is read from."""
        return self.gpu_map_namespace or self.namespace

    @property
    def tls(self) -> bool:
        """Whether to serve HTTPS."""
        return self.tls_cert_file is not None
