"""The engine simulator's timing and memory model, pure."""

from __future__ import annotations

import pytest

from launcher import settings as settings_mod
from launcher import sim_model


def _sim(**values: object) -> settings_mod.EngineSimSettings:
    return settings_mod.EngineSimSettings(**values)  # type: ignore[arg-type]


def test_the_reference_wake_a_64_gib_model_at_21_gib_per_s_takes_about_3_s() -> None:
    sim = _sim(model_gib=64, h2d_gib_per_s=21)
    assert sim_model.wake_seconds(sim, sim_model.ALL_TAGS, level=1) == pytest.approx(3.05, abs=0.01)


def test_levels_and_tags() -> None:
    sim = _sim(model_gib=10, h2d_gib_per_s=5, d2h_gib_per_s=2, reload_seconds=30, startup_seconds=4)
    assert sim_model.start_seconds(sim) == pytest.approx(4 + 2)
    assert sim_model.sleep_seconds(sim, 1) == pytest.approx(5)
    assert sim_model.sleep_seconds(sim, 2) == 0
    assert sim_model.wake_seconds(sim, frozenset({"weights"}), level=2) == 30
    assert sim_model.wake_seconds(sim, frozenset({"kv_cache"}), level=1) == 0


def test_memory_awake_asleep_and_partly_awake() -> None:
    sim = _sim(gpu_memory_gib=80, gpu_memory_utilization=0.5, model_gib=16, sleep_residual_mib=1024)
    serving = sim_model.Phase.SERVING
    assert sim_model.memory_mib(sim, sim_model.Phase.STARTING, frozenset()) == 1024
    assert sim_model.memory_mib(sim, serving, frozenset()) == 40 * 1024
    assert sim_model.memory_mib(sim, serving, sim_model.ALL_TAGS) == 1024
    assert sim_model.memory_mib(sim, serving, frozenset({"kv_cache"})) == 1024 + 16 * 1024


def test_tensor_parallel_splits_the_weights() -> None:
    sim = _sim(gpu_memory_gib=80, gpu_memory_utilization=0.5, model_gib=16, tensor_parallel_size=2)
    assert sim_model.memory_mib(sim, sim_model.Phase.SERVING, frozenset({"kv_cache"})) == 1024 + 8 * 1024
