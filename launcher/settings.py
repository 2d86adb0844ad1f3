"""Settings of the three node-agent processes, one ``BaseSettings`` class each.

Each process builds exactly one of these in its ``main()`` (flags win over
environment variables, which win over defaults) and passes it down
explicitly; nothing reads the environment anywhere else, and nothing here
runs at import time.
"""

from __future__ import annotations

import pathlib
from typing import Literal

import pydantic
import pydantic_settings

__all__ = ["EngineSimSettings", "LauncherSettings", "LogLevel", "NotifierSettings", "RequesterSettings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug"]

DEFAULT_MAX_INSTANCES = 32
"""Instances a launcher holds at most unless told otherwise (the controllers pass the LC's ``maxInstances``)."""

DEFAULT_SIM_USAGE_DIR = pathlib.Path("/tmp/fma-sim-gpu-usage")  # noqa: S108 - a well-known rendezvous path on the node


class LauncherSettings(pydantic_settings.BaseSettings):
    """``fma-launcher``: the multi-instance launcher service (docs/protocol.md, "Launcher API")."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="FMA_LAUNCHER_", extra="forbid", populate_by_name=True
    )

    host: str = "0.0.0.0"  # noqa: S104 - the launcher serves the Pod network by contract
    port: int = pydantic.Field(default=8001, ge=1, le=65535)
    log_level: LogLevel = "info"
    engine: Literal["vllm", "sim"] = "vllm"
    log_dir: pathlib.Path = pathlib.Path("/tmp")  # noqa: S108 - contract default for instance logs
    stop_grace_seconds: float = pydantic.Field(default=10.0, ge=0.0, le=600.0)
    gpu_map_file: pathlib.Path | None = None
    mock_gpus: bool = False
    mock_gpu_count: int = pydantic.Field(default=8, ge=0, le=1024)
    use_nvml: bool = True
    auth_token_file: pathlib.Path | None = None
    token: pydantic.SecretStr | None = None
    max_body_bytes: int = pydantic.Field(default=1024 * 1024, ge=1024)
    watch_buffer: int = pydantic.Field(default=1000, ge=1)
    preload_modules: list[str] = pydantic.Field(default_factory=list)
    max_instances: int = pydantic.Field(default=DEFAULT_MAX_INSTANCES, ge=1, le=4096)
    allow_env: list[str] = pydantic.Field(default_factory=list)
    node_name: str | None = pydantic.Field(
        default=None, validation_alias=pydantic.AliasChoices("node_name", "NODE_NAME")
    )
    namespace: str | None = pydantic.Field(
        default=None, validation_alias=pydantic.AliasChoices("namespace", "NAMESPACE")
    )
    pod_name: str | None = pydantic.Field(default=None, validation_alias=pydantic.AliasChoices("pod_name", "POD_NAME"))
    hostname: str | None = pydantic.Field(default=None, validation_alias=pydantic.AliasChoices("hostname", "HOSTNAME"))
    gpu_map_namespace: str | None = None
    kubernetes_service_host: str | None = pydantic.Field(
        default=None, validation_alias=pydantic.AliasChoices("kubernetes_service_host", "KUBERNETES_SERVICE_HOST")
    )
    kubernetes_service_port: int = pydantic.Field(
        default=443, validation_alias=pydantic.AliasChoices("kubernetes_service_port", "KUBERNETES_SERVICE_PORT")
    )
    service_account_dir: pathlib.Path = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")


class NotifierSettings(LauncherSettings):
    """``launcher_pod_notifier.py``: upstream's sidecar command, run as our publisher in sidecar mode.

    It shares the launcher's Pod facts (identity, in-cluster credentials,
    bearer token) and adds where the launcher is and how often to look
    (upstream's sidecar: every 2 s, 5 s timeout, 5 s back-off after an error).
    """

    launcher_base_url: str = pydantic.Field(
        default="http://127.0.0.1:8001",
        validation_alias=pydantic.AliasChoices("launcher_base_url", "LAUNCHER_BASE_URL"),
    )
    poll_seconds: float = pydantic.Field(default=2.0, gt=0.0, le=3600.0)
    timeout_seconds: float = pydantic.Field(default=5.0, gt=0.0, le=600.0)
    backoff_seconds: float = pydantic.Field(default=5.0, gt=0.0, le=3600.0)


class RequesterSettings(pydantic_settings.BaseSettings):
    """``fma-requester``: the requester agent (docs/protocol.md, "Requester SPI")."""

    model_config = pydantic_settings.SettingsConfigDict(extra="forbid", populate_by_name=True)

    host: str = pydantic.Field(default="0.0.0.0", validation_alias=pydantic.AliasChoices("host", "FMA_REQUESTER_HOST"))  # noqa: S104
    probes_port: int = pydantic.Field(
        default=8080, ge=1, le=65535, validation_alias=pydantic.AliasChoices("probes_port", "PROBES_PORT")
    )
    spi_port: int = pydantic.Field(
        default=8081, ge=1, le=65535, validation_alias=pydantic.AliasChoices("spi_port", "SPI_PORT")
    )
    log_level: LogLevel = pydantic.Field(
        default="info", validation_alias=pydantic.AliasChoices("log_level", "FMA_REQUESTER_LOG_LEVEL")
    )
    nvidia_visible_devices: str | None = pydantic.Field(
        default=None, validation_alias=pydantic.AliasChoices("nvidia_visible_devices", "NVIDIA_VISIBLE_DEVICES")
    )
    sim_usage_dir: pathlib.Path = pydantic.Field(
        default=DEFAULT_SIM_USAGE_DIR, validation_alias=pydantic.AliasChoices("sim_usage_dir", "FMA_SIM_USAGE_DIR")
    )
    proxy_port: int = pydantic.Field(
        default=8082, ge=1, le=65535, validation_alias=pydantic.AliasChoices("proxy_port", "FMA_REQUESTER_PROXY_PORT")
    )
    shutdown_grace_seconds: float = 60.0


class EngineSimSettings(pydantic_settings.BaseSettings):
    """``fma-engine-sim serve``: the vLLM options FMA uses plus the simulator's timing model.

    The vLLM-named fields come from the command line only; the ``FMA_SIM_*``
    knobs may also come from the environment, so a launcher instance can be
    tuned through its ``env_vars`` without touching the vLLM options.
    """

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="FMA_SIM_", extra="forbid", populate_by_name=True)

    model: str = "facebook/opt-125m"
    served_model_name: list[str] = pydantic.Field(default_factory=list)
    host: str = "0.0.0.0"  # noqa: S104 - vLLM's default is every interface
    port: int = pydantic.Field(default=8000, ge=1, le=65535)
    enable_sleep_mode: bool = False
    gpu_memory_utilization: float = pydantic.Field(default=0.9, gt=0.0, le=1.0)
    max_model_len: int = pydantic.Field(default=4096, ge=1)
    tensor_parallel_size: int = pydantic.Field(default=1, ge=1)
    log_level: LogLevel = "info"

    startup_seconds: float = pydantic.Field(default=2.0, ge=0.0)
    model_gib: float = pydantic.Field(default=16.0, ge=0.0)
    h2d_gib_per_s: float = pydantic.Field(default=21.0, gt=0.0)
    d2h_gib_per_s: float = pydantic.Field(default=21.0, gt=0.0)
    reload_seconds: float = pydantic.Field(default=10.0, ge=0.0)
    gpu_memory_gib: float = pydantic.Field(default=80.0, gt=0.0)
    sleep_residual_mib: int = pydantic.Field(default=1024, ge=0)
    gpu_uuids: list[str] = pydantic.Field(default_factory=list)
    usage_dir: pathlib.Path = DEFAULT_SIM_USAGE_DIR
    workers: int = pydantic.Field(default=0, ge=0, le=64)
    ignore_sigterm: bool = False
    device: Literal["sim", "cpu", "cuda"] = "sim"
    keep_pinned: bool = False
    device_memory_mib: int | None = pydantic.Field(default=None, ge=1)
    dev_mode: bool = pydantic.Field(
        default=False, validation_alias=pydantic.AliasChoices("dev_mode", "VLLM_SERVER_DEV_MODE")
    )
