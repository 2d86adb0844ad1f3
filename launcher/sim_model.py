"""The engine simulator's model of a vLLM engine: how long things take, how much GPU memory it holds.

Kept pure (no clock, no I/O) so the numbers can be unit tested and quoted:
with the defaults, a 64 GiB model at 21 GiB/s host-to-device wakes in about
3 s, upstream's figure (docs/launcher.md, "`fma-engine-sim serve`").
"""

from __future__ import annotations

import enum

from launcher import settings as settings_mod

__all__ = ["ALL_TAGS", "Phase", "memory_mib", "sleep_seconds", "start_seconds", "wake_seconds"]

ALL_TAGS = frozenset({"weights", "kv_cache"})
"""vLLM's sleep memory tags; ``/wake_up?tags=`` may name a subset."""


class Phase(enum.Enum):
    """Where the simulated engine is in its life."""

    STARTING = "starting"
    SERVING = "serving"


def start_seconds(sim: settings_mod.EngineSimSettings) -> float:
    """Cold start to healthy: engine initialisation plus loading the weights onto the GPUs."""
    return sim.startup_seconds + sim.model_gib / sim.h2d_gib_per_s


def sleep_seconds(sim: settings_mod.EngineSimSettings, level: int) -> float:
    """Level 1 copies the weights to host memory; level 2 discards them at once."""
    return sim.model_gib / sim.d2h_gib_per_s if level == 1 else 0.0


def wake_seconds(sim: settings_mod.EngineSimSettings, tags: frozenset[str], level: int) -> float:
    """Restoring ``tags``: weights come back from host memory (level 1) or are reloaded (level 2)."""
    if "weights" not in tags:
        return 0.0
    return sim.model_gib / sim.h2d_gib_per_s if level == 1 else sim.reload_seconds


def memory_mib(sim: settings_mod.EngineSimSettings, phase: Phase, asleep: frozenset[str]) -> int:
    """GPU memory held per GPU: the CUDA context always, weights and KV cache unless asleep.

    The total while awake is ``gpu_memory_utilization`` of the GPU, as vLLM
    pre-allocates; a sleeper keeps only ``sleep_residual_mib``.
    """
    residual = sim.sleep_residual_mib
    if phase is Phase.STARTING:
        return residual
    total = int(sim.gpu_memory_gib * 1024 * sim.gpu_memory_utilization)
    weights = int(sim.model_gib * 1024 / sim.tensor_parallel_size)
    kv_cache = max(0, total - weights - residual)
    used = residual
    if "weights" not in asleep:
        used += weights
    if "kv_cache" not in asleep:
        used += kv_cache
    return used
