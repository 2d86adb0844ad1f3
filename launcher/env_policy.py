"""Which environment variables a caller may set on an instance.

An instance runs whatever its environment tells the dynamic loader and the
Python interpreter to load.  ``env_vars`` comes from whoever can reach the
launcher API, so names that change how a process loads code (the dynamic
loader's ``LD_*``, Python's module search and start-up hooks, glibc and CUDA
plug-in paths) are refused unless the launcher's settings allow them by
name (``--allow-env``).  Everything else (model settings, ``VLLM_*``,
``CUDA_VISIBLE_DEVICES``, ``HF_*`` …) stays the caller's business.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LOADER_ENV_NAMES", "LOADER_ENV_PREFIXES", "first_refused"]

LOADER_ENV_PREFIXES: tuple[str, ...] = ("LD_",)
"""Every name with one of these prefixes is refused: the dynamic loader reads ``LD_PRELOAD``, ``LD_AUDIT`` …"""

LOADER_ENV_NAMES = frozenset(
    {
        # Python: where modules come from and what runs at start-up or on a warning or breakpoint.
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PYTHONUSERBASE",
        "PYTHONPLATLIBDIR",
        "PYTHONEXECUTABLE",
        "PYTHONPYCACHEPREFIX",
        "PYTHONBREAKPOINT",
        "PYTHONWARNINGS",
        # glibc: character-set conversion modules (dlopen'ed) and tunables.
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        # Shells started by the instance read these files first.
        "BASH_ENV",
        "ENV",
        # CUDA and NCCL load these shared libraries into the process.
        "CUDA_INJECTION64_PATH",
        "NCCL_NET_PLUGIN",
        "NCCL_TUNER_PLUGIN",
        "NCCL_PROFILER_PLUGIN",
    }
)
"""Names refused outright (besides the ``LD_`` prefix)."""


def first_refused(names: Iterable[str], allowed: Iterable[str]) -> str | None:
    """The first of ``names`` that loads code and is not in ``allowed``, or None (pure)."""
    permitted = frozenset(allowed)
    for name in names:
        if name in permitted:
            continue
        if name in LOADER_ENV_NAMES or name.startswith(LOADER_ENV_PREFIXES):
            return name
    return None
