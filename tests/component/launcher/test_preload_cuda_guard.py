"""The preloaded parent must never initialise CUDA: its forked children could not use the GPU.

``zygote`` reports, with ``ready``, whether torch is imported and whether
CUDA is initialised, and refuses to serve when a preload initialised it.
Here (no GPU, no torch in this environment) a preload module stands in for
a torch whose CUDA was initialised; on a GPU machine ``tests/gpu`` does the
same with the real torch.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes

pytestmark = pytest.mark.component

_FAKE_TORCH = """
import sys, types
cuda = types.SimpleNamespace(is_initialized=lambda: True)
sys.modules["torch"] = types.SimpleNamespace(cuda=cuda)
"""


def _argv(tmp_path: pathlib.Path, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "launcher", "--engine", "sim", "--host", "127.0.0.1"]
    return [*argv, "--port", str(processes.free_port()), "--no-nvml", "--log-dir", str(tmp_path), *extra]


def test_a_preload_that_initialised_cuda_stops_the_launcher(
    agent_factory: Callable[..., Any], tmp_path: pathlib.Path
) -> None:
    (tmp_path / "fma_cuda_in_parent.py").write_text(_FAKE_TORCH)
    argv = _argv(tmp_path, "--preload-module", "fma_cuda_in_parent")
    pythonpath = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    proc = agent_factory(argv, env={"PYTHONPATH": pythonpath}, name="guarded")
    assert proc.wait(60) != 0
    (log,) = tmp_path.glob("guarded-*/agent.log")
    text = log.read_text()
    assert "the engine could not be preloaded: a preload initialised CUDA in the preloaded parent" in text


def test_the_launcher_logs_what_its_parent_preloaded(
    agent_factory: Callable[..., Any], tmp_path: pathlib.Path, harness: Any
) -> None:
    argv = _argv(tmp_path)
    port = int(argv[argv.index("--port") + 1])
    agent_factory(argv, name="plain")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        harness.wait_http(client, "/health", "the launcher to answer")
    (log,) = tmp_path.glob("plain-*/agent.log")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (preloaded,) = [r for r in records if r.get("msg") == "engine preloaded"]
    assert preloaded["torch_imported"] is False
    assert preloaded["cuda_initialized"] is False
