"""Entry points of ``fma-launcher``, ``fma-requester`` and ``fma-engine-sim``.

Each parses its command line, builds its one ``Settings`` (flags win over the
environment), configures logging and runs.  Only given flags are passed to
the settings, so environment variables fill in the rest.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import pydantic

from crds import log_output, validation_paths
from launcher import engine_sim, launcher_server, requester_server, sim_cli, tensor_engine, token_handoff
from launcher import settings as settings_mod

__all__ = ["engine_sim_main", "launcher_main", "requester_main"]

logger = logging.getLogger(__name__)

_LEVELS = ["critical", "error", "warning", "info", "debug"]


def _given(namespace: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(namespace).items() if v is not None}


def _launcher_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fma-launcher", description="Multi-instance engine launcher (FMA).")
    p.add_argument("--host", help="listen address (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default 8001)")
    p.add_argument("--log-level", choices=_LEVELS)
    p.add_argument("--engine", choices=["vllm", "sim"], help="what instances run (default vllm)")
    p.add_argument("--log-dir", help="directory of instance logs (default /tmp)")
    p.add_argument("--stop-grace-seconds", type=float, help="SIGTERM grace before SIGKILL of the group (default 10)")
    p.add_argument("--gpu-map-file", help="JSON object GPU UUID -> CUDA index, used when NVML has no GPUs")
    p.add_argument("--gpu-map-namespace", help="namespace of the gpu-map ConfigMap (default: $NAMESPACE)")
    p.add_argument("--mock-gpus", action="store_true", default=None, help="GPU-0..GPU-<n-1> map to 0..n-1")
    p.add_argument("--mock-gpu-count", type=int, help="n for --mock-gpus (default 8)")
    p.add_argument("--no-nvml", dest="use_nvml", action="store_false", default=None, help="do not ask NVML for GPUs")
    p.add_argument("--auth-token-file", help="require 'Authorization: Bearer <file content>' (except /health)")
    p.add_argument("--max-body-bytes", type=int, help="largest accepted request body (default 1 MiB)")
    p.add_argument(
        "--max-instances",
        type=int,
        help=f"instances held at most, running or stopped (default {settings_mod.DEFAULT_MAX_INSTANCES})",
    )
    p.add_argument(
        "--allow-env",
        dest="allow_env",
        action="append",
        help="let callers set this code-loading variable (LD_PRELOAD, PYTHONPATH ...) on instances; repeatable",
    )
    p.add_argument("--watch-buffer", type=int, help="events kept for watch replay (default 1000)")
    p.add_argument(
        "--preload-module", dest="preload_modules", action="append", help="also import this module before forking"
    )
    return p


def _requester_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fma-requester", description="Requester agent: the SPI and probes of FMA.")
    p.add_argument("--host", help="listen address (default 0.0.0.0)")
    p.add_argument("--probes-port", type=int, help="port of GET /ready (default $PROBES_PORT or 8080)")
    p.add_argument("--spi-port", type=int, help="port of the SPI (default $SPI_PORT or 8081)")
    p.add_argument("--log-level", choices=_LEVELS)
    p.add_argument("--sim-usage-dir", help="where engine simulators publish their GPU memory")
    return p


def _fail(prog: str, exc: Exception) -> int:
    message = validation_paths.summary(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
    print(f"{prog}: invalid configuration: {message}", file=sys.stderr)
    return 2


def launcher_main(argv: list[str] | None = None) -> int:
    """Run the launcher service.

    From the command line (``argv`` None), a token in the environment first
    makes the process re-execute itself without it (``token_handoff``).
    """
    args = _launcher_parser().parse_args(argv)
    if argv is None:
        token_handoff.reexec_without_token(os.environ, sys.orig_argv)
    token_fd = token_handoff.take_fd(os.environ)
    try:
        settings = settings_mod.LauncherSettings(**_given(args))  # type: ignore[arg-type]  # keys checked by the model
    except pydantic.ValidationError as exc:
        return _fail("fma-launcher", exc)
    return launcher_server.run(settings, token_fd=token_fd)


def requester_main(argv: list[str] | None = None) -> int:
    """Run the requester agent."""
    args = _requester_parser().parse_args(argv)
    try:
        settings = settings_mod.RequesterSettings(**_given(args))  # type: ignore[arg-type]  # keys checked by the model
    except pydantic.ValidationError as exc:
        return _fail("fma-requester", exc)
    return requester_server.run(settings)


def engine_sim_main(argv: list[str] | None = None) -> int:
    """Run the engine simulator: ``fma-engine-sim serve [MODEL] [vLLM options]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        print("usage: fma-engine-sim serve [MODEL] [--model M] [--port P] [vLLM and --sim-* options]", file=sys.stderr)
        return 2
    try:
        sim, unknown = sim_cli.parse(args[1:])
    except (ValueError, pydantic.ValidationError) as exc:
        return _fail("fma-engine-sim", exc)
    log_output.configure(sim.log_level)
    if unknown:
        logger.warning("ignoring engine options the simulator does not model", extra={"options": unknown})
    return tensor_engine.serve(sim) if sim.device != "sim" else engine_sim.serve(sim)


if __name__ == "__main__":
    raise SystemExit(launcher_main())
