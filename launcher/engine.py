"""The engine seam: what the launcher needs from an inference engine, and choosing one by name.

An engine is preloaded once in the launcher's preloaded parent (``zygote``)
and then run in each forked child, so an instance start skips the imports.
Engines live in their own modules and are imported only when chosen: the
``vllm`` engine's imports (torch, CUDA libraries) never happen under ``sim``.
"""

from __future__ import annotations

import importlib
from typing import Literal, Protocol

__all__ = ["Engine", "EngineName", "load"]

EngineName = Literal["vllm", "sim"]

_MODULES: dict[str, str] = {"vllm": "launcher.vllm_engine", "sim": "launcher.sim_engine"}


class Engine(Protocol):
    """One kind of inference server the launcher can run as instances."""

    name: str

    def preload(self) -> None:
        """Import everything an instance will need; runs once in the preloaded parent, before any fork.

        Must not initialise CUDA or start threads: the children are forked from this process.
        """
        ...

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        """Extra environment an instance of this engine needs (beyond the CUDA variables)."""
        ...

    def run(self, argv: list[str]) -> int:
        """Serve with the instance's options; runs in the forked child and returns its exit status."""
        ...


def load(name: EngineName) -> Engine:
    """Import the chosen engine's module (only that one) and return its engine."""
    module = importlib.import_module(_MODULES[name])
    engine: Engine = module.ENGINE
    return engine
