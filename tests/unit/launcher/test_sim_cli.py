"""Parsing vLLM ``serve`` options for the engine simulator."""

from __future__ import annotations

import pydantic
import pytest

from launcher import sim_cli


def test_known_options_and_unknown_ones() -> None:
    sim, unknown = sim_cli.parse(
        ["--model", "m", "--port", "8005", "--enable-sleep-mode", "--dtype", "half", "--served-model-name", "a", "b"]
    )
    assert (sim.model, sim.port, sim.enable_sleep_mode, sim.served_model_name) == ("m", 8005, True, ["a", "b"])
    assert unknown == ["--dtype", "half"]


def test_leading_model_like_vllm_serve_and_model_flag_wins() -> None:
    assert sim_cli.parse(["pos-model", "--port", "1"])[0].model == "pos-model"
    assert sim_cli.parse(["pos-model", "--model", "flag-model"])[0].model == "flag-model"


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_SIM_STARTUP_SECONDS", "7")
    monkeypatch.setenv("FMA_SIM_MODEL_GIB", "3")
    sim, _ = sim_cli.parse(["--sim-startup-seconds", "1"])
    assert sim.startup_seconds == 1
    assert sim.model_gib == 3


def test_sim_gpu_uuids_from_flag_or_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sim_cli.parse(["--sim-gpu-uuids", "GPU-1,GPU-2"])[0].gpu_uuids == ["GPU-1", "GPU-2"]
    monkeypatch.setenv("FMA_SIM_GPU_UUIDS", '["GPU-9"]')
    assert sim_cli.parse([])[0].gpu_uuids == ["GPU-9"]


def test_dev_mode_comes_from_vllm_server_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_SERVER_DEV_MODE", "1")
    assert sim_cli.parse([])[0].dev_mode is True


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="--port"):
        sim_cli.parse(["--port", "eighty"])
    with pytest.raises(pydantic.ValidationError, match="gpu_memory_utilization"):
        sim_cli.parse(["--gpu-memory-utilization", "1.5"])
