"""``tensor_weights`` under real torch on CPU: offload, restore, discard, refusals, corruption.

The project's environment has no torch; the cases run in the vLLM
environment's interpreter (``tests/fixtures/tensor_weights_cases.py``, one
process for the module) and each test asserts on its case's facts.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys
import types
from typing import Any

import pytest

pytestmark = [pytest.mark.vllm]

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"


def _fixture_module(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"fma_fixtures_{name}", FIXTURES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vllm_env = _fixture_module("vllm_env")


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    python = vllm_env.require()
    script = str(FIXTURES / "tensor_weights_cases.py")
    done = subprocess.run([str(python), script], check=False, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_load_fills_the_device_and_computes_deterministically(facts: dict[str, Any]) -> None:
    f = facts["load_and_compute"]
    assert f["state"] == "on_device"
    assert f["device_bytes"] == f["total_bytes"] > 0
    assert f["checksum_stable"]
    assert f["deterministic"]
    assert f["tokens"] == 6


def test_level_one_moves_everything_to_host_and_back(facts: dict[str, Any]) -> None:
    f = facts["offload_and_restore"]
    assert f["asleep"]["state"] == "offloaded"
    assert f["asleep"]["device_bytes"] == 0
    assert f["asleep"]["host_bytes"] >= f["total_bytes"]
    assert f["state"] == "on_device"
    assert f["phases"] == ["copy_seconds", "verify_seconds"]
    assert f["same_answer"], "the woken weights answer differently"
    assert f["held_until_dropped"] >= f["total_bytes"], "restore(release_host=False) keeps the host copy"
    assert f["dropped_seconds"] is not None
    assert f["host_bytes_after_wake"] == 0, "without keep_pinned the host copy is released after the wake"
    assert f["host_allocations"] == 1


def test_kept_buffer_is_allocated_once_across_sleeps(facts: dict[str, Any]) -> None:
    f = facts["keep_pinned"]
    assert f["host_allocations"] == 1
    assert f["host_bytes_awake"] >= f["total_bytes"]


def test_wake_without_room_is_refused_and_changes_nothing(facts: dict[str, Any]) -> None:
    f = facts["refused_wake"]
    assert f["refused"] is not None
    assert "waking needs" in f["refused"]
    assert "is free" in f["refused"]
    assert f["after_refusal"]["state"] == "offloaded"
    assert f["after_refusal"]["device_bytes"] == 0
    assert f["after_refusal"]["host_bytes"] > 0
    assert f["state"] == "on_device"
    assert f["same"], "the host copy changed while the wake was refused"


def test_a_corrupted_host_copy_is_caught_and_the_engine_stays_asleep(facts: dict[str, Any]) -> None:
    f = facts["corrupted_copy"]
    assert f["caught"] is not None
    assert "checksum" in f["caught"]
    assert f["state"] == "offloaded"
    assert f["device_bytes"] == 0


def test_level_two_discards_and_a_wake_reloads_the_same_weights(facts: dict[str, Any]) -> None:
    f = facts["discard_and_reload"]
    assert f["discarded"] == {"state": "discarded", "host_bytes": 0, "device_bytes": 0}
    assert f["phases"] == ["reload_seconds"]
    assert f["same"]


def test_refused_load_and_double_offload(facts: dict[str, Any]) -> None:
    f = facts["wrong_moves"]
    assert "loading the weights needs" in f["load_refused"]
    assert f["state_after_refused_load"] == "empty"
    assert f["second_offload"] == "cannot offload weights that are offloaded"
