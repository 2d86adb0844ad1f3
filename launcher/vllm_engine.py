"""The ``vllm`` engine: launcher instances that run vLLM's OpenAI-compatible API server.

This module is imported only under ``--engine vllm``.  ``preload`` imports
vLLM's API server module (and with it torch) in the preloaded parent; each
child then parses its options with vLLM's own ``serve`` argument parser and
runs ``run_server``, the same path ``python -m vllm.entrypoints.openai.api_server``
takes.  vLLM moved ``FlexibleArgumentParser`` between releases, so both
homes are tried.  CUDA is not touched before the fork.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any

__all__ = ["ENGINE", "VllmEngine"]

_API_SERVER = "vllm.entrypoints.openai.api_server"
_CLI_ARGS = "vllm.entrypoints.openai.cli_args"
_PARSER_HOMES = ("vllm.utils.argparse_utils", "vllm.utils")


def _parser_class() -> Any:
    for home in _PARSER_HOMES:
        try:
            module = importlib.import_module(home)
        except ImportError:
            continue
        if hasattr(module, "FlexibleArgumentParser"):
            return module.FlexibleArgumentParser
    raise ImportError("vLLM's FlexibleArgumentParser was not found in " + ", ".join(_PARSER_HOMES))


class VllmEngine:
    """``engine.Engine`` running vLLM."""

    name = "vllm"

    def __init__(self) -> None:
        self._api_server: ModuleType | None = None

    def preload(self) -> None:
        self._api_server = importlib.import_module(_API_SERVER)

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        return {}

    def run(self, argv: list[str]) -> int:
        api_server = self._api_server or importlib.import_module(_API_SERVER)
        if hasattr(api_server, "cli_env_setup"):
            api_server.cli_env_setup()  # newer vLLM: worker multiprocessing defaults, as its own __main__ does
        cli_args = importlib.import_module(_CLI_ARGS)
        parser = cli_args.make_arg_parser(_parser_class()(description="vLLM OpenAI-compatible API server"))
        args = parser.parse_args(argv)
        if hasattr(cli_args, "validate_parsed_serve_args"):
            cli_args.validate_parsed_serve_args(args)
        asyncio.run(api_server.run_server(args))
        return 0


ENGINE = VllmEngine()
