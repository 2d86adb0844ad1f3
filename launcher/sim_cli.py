"""Parsing a vLLM ``serve`` command line into the engine simulator's settings.

The simulator must accept whatever options FMA hands to vLLM: the ones it
models are parsed, and any other option is tolerated and reported back so
the caller can log it (a real deployment's options must not crash a test
run).  Only options actually given are returned, so environment variables
and defaults still apply to the rest (flags win).
"""

from __future__ import annotations

import argparse

from launcher import settings as settings_mod

__all__ = ["parse"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # raise instead of exiting the process
        raise ValueError(message)


def _parser() -> _Parser:
    p = _Parser(prog="fma-engine-sim serve", add_help=False, allow_abbrev=False, argument_default=argparse.SUPPRESS)
    p.add_argument("--model")
    p.add_argument("--served-model-name", dest="served_model_name", nargs="+")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--enable-sleep-mode", dest="enable_sleep_mode", action="store_true")
    p.add_argument("--gpu-memory-utilization", dest="gpu_memory_utilization", type=float)
    p.add_argument("--max-model-len", dest="max_model_len", type=int)
    p.add_argument("--tensor-parallel-size", "-tp", dest="tensor_parallel_size", type=int)
    p.add_argument("--uvicorn-log-level", dest="log_level", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--sim-startup-seconds", dest="startup_seconds", type=float)
    p.add_argument("--sim-model-gib", dest="model_gib", type=float)
    p.add_argument("--sim-h2d-gib-per-s", dest="h2d_gib_per_s", type=float)
    p.add_argument("--sim-d2h-gib-per-s", dest="d2h_gib_per_s", type=float)
    p.add_argument("--sim-reload-seconds", dest="reload_seconds", type=float)
    p.add_argument("--sim-gpu-memory-gib", dest="gpu_memory_gib", type=float)
    p.add_argument("--sim-sleep-residual-mib", dest="sleep_residual_mib", type=int)
    p.add_argument("--sim-gpu-uuids", dest="gpu_uuids", type=lambda v: [u for u in v.split(",") if u])
    p.add_argument("--sim-usage-dir", dest="usage_dir")
    p.add_argument("--sim-workers", dest="workers", type=int)
    p.add_argument("--sim-ignore-sigterm", dest="ignore_sigterm", action="store_true")
    p.add_argument("--device", choices=["sim", "cpu", "cuda"])
    p.add_argument("--keep-pinned-buffers", dest="keep_pinned", action="store_true")
    p.add_argument("--sim-device-memory-mib", dest="device_memory_mib", type=int)
    return p


def parse(argv: list[str]) -> tuple[settings_mod.EngineSimSettings, list[str]]:
    """Return the settings and the options that were not understood (pure apart from env defaults).

    A leading bare word is the model, as in ``vllm serve MODEL``; ``--model``
    wins over it.  Raises ``ValueError`` for a malformed value of a known
    option and ``pydantic.ValidationError`` for an out-of-range one.
    """
    given: dict[str, object] = {}
    rest = list(argv)
    if rest and not rest[0].startswith("-"):
        given["model"] = rest.pop(0)
    known, unknown = _parser().parse_known_args(rest)
    given.update(vars(known))
    return settings_mod.EngineSimSettings(**given), unknown  # type: ignore[arg-type]  # keys checked by the model
