"""Settings of ``fma-controllers``: one ``BaseSettings``, built once in ``main()``.

Flags win over ``FMA_*`` environment variables (``FMA_NAMESPACE``,
``FMA_LAUNCHER_TOKEN_FILE``, ...), which win over the defaults.  Each default
and each help text is written once, on its field: the command line is derived
from the fields, so a flag cannot drift from the setting it sets.  The defaults
the dual-pods controller and the populator repeat on their own settings
objects are the ``*_DEFAULT`` constants below.  Nothing here runs at import
time beyond building the parser when asked.
"""

from __future__ import annotations

import argparse
import os
import socket
import types
import typing
from collections.abc import Sequence
from typing import Any, Final, Literal

import pydantic
import pydantic_settings

from crds import validation_paths

__all__ = [
    "DEBUG_ACCELERATOR_MEMORY_DEFAULT",
    "EXPECTATION_TIMEOUT_DEFAULT",
    "NUM_WORKERS_DEFAULT",
    "SLEEPER_LIMIT_DEFAULT",
    "START_DEADLINE_DEFAULT",
    "STUCK_SCHEDULING_THRESHOLD_DEFAULT",
    "STUCK_STARTING_THRESHOLD_DEFAULT",
    "LogFormat",
    "LogLevel",
    "Settings",
    "parse_args",
    "parser",
]

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]

SLEEPER_LIMIT_DEFAULT: Final = 1
"""Sleeping direct providers kept per GPU."""
NUM_WORKERS_DEFAULT: Final = 2
"""Nodes reconciled in parallel."""
DEBUG_ACCELERATOR_MEMORY_DEFAULT: Final = True
"""Whether GPU memory is checked before a wake."""
START_DEADLINE_DEFAULT: Final = 1800.0
"""Seconds before an engine that never answers is reported."""
EXPECTATION_TIMEOUT_DEFAULT: Final = 5.0
"""Seconds the populator waits for its cache to show its own writes (docs/populator.md, "How it works", step 1)."""
STUCK_STARTING_THRESHOLD_DEFAULT: Final = 450.0
"""Seconds (7 m 30 s) a scheduled launcher may stay not Ready before it is stuck (docs/populator.md, "Flags")."""
STUCK_SCHEDULING_THRESHOLD_DEFAULT: Final = 120.0
"""Seconds (2 m) a launcher may stay unscheduled before it is stuck (docs/populator.md, "Flags")."""


def _identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(pydantic_settings.BaseSettings):
    """``fma-controllers``: the dual-pods controller and the launcher populator."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="FMA_", extra="forbid", frozen=True)

    namespace: str = pydantic.Field(min_length=1, description="the namespace to manage (required)")
    kubeconfig: str | None = pydantic.Field(default=None, description="kubeconfig path (default: usual lookup)")
    gpu_map_namespace: str | None = pydantic.Field(
        default=None, description="namespace of the gpu-map ConfigMap (default: --namespace)"
    )
    sleeper_limit: int = pydantic.Field(
        default=SLEEPER_LIMIT_DEFAULT, ge=0, description="sleeping direct providers per GPU"
    )
    num_workers: int = pydantic.Field(
        default=NUM_WORKERS_DEFAULT, ge=1, le=64, description="nodes reconciled in parallel"
    )
    metrics_port: int = pydantic.Field(default=8002, ge=0, le=65535, description="/metrics, /healthz, /readyz port")
    metrics_host: str = pydantic.Field(
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes the Pod IP
        description="address to serve metrics on",
    )
    leader_elect: bool = pydantic.Field(default=True, description="use a Lease so one replica acts")
    lease_duration: float = pydantic.Field(default=15.0, gt=0, description="leader election: lease seconds")
    renew_deadline: float = pydantic.Field(default=10.0, gt=0, description="leader election: renew within seconds")
    retry_period: float = pydantic.Field(default=2.0, gt=0, description="leader election: retry every seconds")
    identity: str = pydantic.Field(
        default_factory=_identity, description="leader-election identity (default: hostname-pid)"
    )
    enable_dual_pods: bool = pydantic.Field(default=True, description="run the dual-pods controller")
    enable_populator: bool = pydantic.Field(default=True, description="run the launcher populator")
    enable_gpu_claims: bool = pydantic.Field(
        default=False, description="create the ResourceClaims of DRA-mode requesters (needs RBAC on resourceclaims)"
    )
    debug_accelerator_memory: bool = pydantic.Field(
        default=DEBUG_ACCELERATOR_MEMORY_DEFAULT, description="check GPU memory before a wake"
    )
    start_deadline: float = pydantic.Field(
        default=START_DEADLINE_DEFAULT, gt=0, description="seconds before a silent engine is reported"
    )
    launcher_token_file: str | None = pydantic.Field(
        default=None,
        description="file holding the launcher bearer token (default: read from --launcher-token-secret)",
    )
    launcher_token_secret: str | None = pydantic.Field(
        default=None,
        description="Secret (key 'token') holding the launcher bearer token; launchers get it as "
        "FMA_LAUNCHER_TOKEN, the controllers read it (and create it with a random token when missing). "
        "Without it launcher auth is off",
    )
    expectation_timeout: float = pydantic.Field(
        default=EXPECTATION_TIMEOUT_DEFAULT, gt=0, description="populator: cache expectations (s)"
    )
    stuck_starting_threshold: float = pydantic.Field(
        default=STUCK_STARTING_THRESHOLD_DEFAULT, gt=0, description="populator: stuck starting after (s)"
    )
    stuck_scheduling_threshold: float = pydantic.Field(
        default=STUCK_SCHEDULING_THRESHOLD_DEFAULT, gt=0, description="populator: stuck scheduling after (s)"
    )
    log_format: LogFormat = pydantic.Field(default="json", description="log output")
    log_level: LogLevel = pydantic.Field(default="info", description="log threshold")

    @pydantic.model_validator(mode="after")
    def _lease_order(self) -> Settings:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "need --retry-period < --renew-deadline < --lease-duration, got "
                f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration}"
            )
        return self


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _flag_options(field: pydantic.fields.FieldInfo) -> dict[str, Any]:
    """The argparse options of one field: its value type, its choices, and its help with the default."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    options: dict[str, Any] = {"help": field.description}
    if typing.get_origin(annotation) is Literal:
        options["choices"] = list(typing.get_args(annotation))
    elif annotation is bool:
        options["type"] = _bool
    elif annotation in (int, float):
        options["type"] = annotation
    if field.default_factory is None and not field.is_required() and field.default is not None:
        options["help"] = f"{field.description} (default {field.default})"
    return options


def parser() -> argparse.ArgumentParser:
    """The ``fma-controllers`` command line: one ``--flag`` per ``Settings`` field, no defaults of its own."""
    built = argparse.ArgumentParser(
        prog="fma-controllers", description="FMA dual-pods controller and launcher populator."
    )
    for name, field in Settings.model_fields.items():
        flags = ["-n", "--namespace"] if name == "namespace" else [f"--{name.replace('_', '-')}"]
        built.add_argument(*flags, dest=name, **_flag_options(field))
    return built


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse ``fma-controllers`` flags (over ``FMA_*`` variables) into settings; exits with usage on bad input."""
    flags = parser()
    given = {name: value for name, value in vars(flags.parse_args(argv)).items() if value is not None}
    try:
        return Settings(**given)
    except pydantic.ValidationError as exc:
        flags.error(
            "; ".join(
                f"--{path.replace('_', '-')}: {message}" if path else message
                for path, message in validation_paths.problems(exc)
            )
        )
        raise  # parser.error exits; this keeps the type checker informed
