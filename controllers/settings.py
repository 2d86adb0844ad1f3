"""Settings of the ``fma-controllers`` process, from flags (and ``FMA_*`` environment variables)."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence

import pydantic

__all__ = ["ControllersSettings", "parse_args"]


class ControllersSettings(pydantic.BaseModel):
    """Everything ``fma-controllers`` is told at start-up."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    namespace: str = pydantic.Field(min_length=1)
    kubeconfig: str | None = None
    gpu_map_namespace: str | None = None
    sleeper_limit: int = pydantic.Field(default=1, ge=0)
    num_workers: int = pydantic.Field(default=2, ge=1, le=64)
    metrics_port: int = pydantic.Field(default=8002, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes the Pod IP
    leader_elect: bool = True
    lease_duration: float = pydantic.Field(default=15.0, gt=0)
    renew_deadline: float = pydantic.Field(default=10.0, gt=0)
    retry_period: float = pydantic.Field(default=2.0, gt=0)
    identity: str = pydantic.Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    enable_dual_pods: bool = True
    enable_populator: bool = True
    enable_gpu_claims: bool = False
    debug_accelerator_memory: bool = True
    start_deadline: float = pydantic.Field(default=1800.0, gt=0)
    launcher_token_file: str | None = None
    launcher_token_secret: str | None = None
    expectation_timeout: float = pydantic.Field(default=5.0, gt=0)
    stuck_starting_threshold: float = pydantic.Field(default=450.0, gt=0)
    stuck_scheduling_threshold: float = pydantic.Field(default=120.0, gt=0)
    log_format: str = pydantic.Field(default="json", pattern="^(json|text)$")
    log_level: str = "info"

    @pydantic.model_validator(mode="after")
    def _lease_order(self) -> ControllersSettings:
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


def parse_args(argv: Sequence[str] | None = None) -> ControllersSettings:
    """Parse ``fma-controllers`` flags into settings; exits with a usage message on bad input."""
    parser = argparse.ArgumentParser(
        prog="fma-controllers", description="FMA dual-pods controller and launcher populator."
    )
    env = os.environ.get
    parser.add_argument("-n", "--namespace", default=env("FMA_NAMESPACE"), help="the namespace to manage (required)")
    parser.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig path (default: in-cluster)")
    parser.add_argument("--gpu-map-namespace", help="namespace of the gpu-map ConfigMap (default: --namespace)")
    parser.add_argument("--sleeper-limit", type=int, default=1, help="sleeping direct providers per GPU (default 1)")
    parser.add_argument("--num-workers", type=int, default=2, help="nodes reconciled in parallel (default 2)")
    parser.add_argument(
        "--metrics-port", type=int, default=8002, help="/metrics, /healthz, /readyz port (default 8002)"
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address to serve metrics on")  # noqa: S104
    parser.add_argument("--leader-elect", type=_bool, default=True, help="use a Lease so one replica acts")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--identity", help="leader-election identity (default: hostname-pid)")
    parser.add_argument("--enable-dual-pods", type=_bool, default=True, help="run the dual-pods controller")
    parser.add_argument("--enable-populator", type=_bool, default=True, help="run the launcher populator")
    parser.add_argument(
        "--enable-gpu-claims",
        type=_bool,
        default=False,
        help="create the ResourceClaims of DRA-mode requesters (needs RBAC on resourceclaims)",
    )
    parser.add_argument("--debug-accelerator-memory", type=_bool, default=True, help="check GPU memory before a wake")
    parser.add_argument(
        "--start-deadline",
        type=float,
        default=1800.0,
        help="seconds before a silent engine is reported (default 30 min)",
    )
    parser.add_argument(
        "--launcher-token-file",
        default=env("FMA_LAUNCHER_TOKEN_FILE"),
        help="file holding the launcher bearer token (default: read from --launcher-token-secret)",
    )
    parser.add_argument(
        "--launcher-token-secret",
        default=env("FMA_LAUNCHER_TOKEN_SECRET"),
        help="Secret (key 'token') holding the launcher bearer token; launchers get it as FMA_LAUNCHER_TOKEN, "
        "the controllers read it (and create it with a random token when missing). Without it launcher auth is off",
    )
    parser.add_argument("--expectation-timeout", type=float, default=5.0, help="populator: cache expectations (s)")
    parser.add_argument("--stuck-starting-threshold", type=float, default=450.0, help="populator: seconds (7m30s)")
    parser.add_argument("--stuck-scheduling-threshold", type=float, default=120.0, help="populator: seconds (2m)")
    parser.add_argument("--log-format", default="json", choices=["json", "text"])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if not args.namespace:
        parser.error("--namespace is required")
    values = {k: v for k, v in vars(args).items() if v is not None}
    try:
        return ControllersSettings(**values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        parser.error(problems)
        raise  # parser.error exits; this keeps the type checker informed
