"""The torch-backed engine on CPU (``fma-engine-sim serve --device cpu``), over HTTP, as real processes.

The same code that moves weights between a GPU and pinned host memory runs
here on CPU tensors, with a simulated GPU of ``--sim-device-memory-mib``
shared through the published usage of the engines on one GPU UUID.  torch
lives in the vLLM environment, so the engines (and the launcher that
preloads torch) run with its interpreter (``tests/fixtures/vllm_env.py``).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = [pytest.mark.component, pytest.mark.vllm]

MODEL_GIB = "0.03"  # about 30 MiB of bf16 weights: 354 tensors, quick to fill on a busy CPU
START_TIMEOUT = 120.0


def _fixture_module(name: str) -> types.ModuleType:
    path = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fma_fixtures_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vllm_env = _fixture_module("vllm_env")


class Engine:
    """One running engine: its client, log and published usage."""

    def __init__(self, client: httpx.Client, log: pathlib.Path, usage_dir: pathlib.Path, uuid: str) -> None:
        self.client = client
        self.log = log
        self.usage_dir = usage_dir
        self.uuid = uuid

    def records(self, msg: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("msg") == msg:
                out.append(record)
        return out

    def usage_mib(self) -> int:
        total = 0
        for path in self.usage_dir.glob("engine-*.json"):
            total += json.loads(path.read_text())["usage_mib"].get(self.uuid, 0)
        return total

    def complete(self, prompt: str = "hello there") -> httpx.Response:
        return self.client.post("/v1/completions", json={"prompt": prompt, "max_tokens": 6})

    def sleeping(self) -> bool:
        value: bool = self.client.get("/is_sleeping").json()["is_sleeping"]
        return value


@pytest.fixture
def start_engine(agent_factory: Callable[..., Any], tmp_path: pathlib.Path) -> Iterator[Callable[..., Engine]]:
    python = vllm_env.require()
    usage_dir = tmp_path / "usage"
    clients: list[httpx.Client] = []

    def start(*extra: str, uuid: str = "GPU-cpu-0", wait: bool = True) -> Engine:
        port = processes.free_port()
        argv = [str(python), "-c", "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"]
        argv += ["serve", "tiny", "--host", "127.0.0.1", "--port", str(port), "--enable-sleep-mode"]
        argv += ["--device", "cpu", "--sim-model-gib", MODEL_GIB, "--sim-gpu-uuids", uuid]
        argv += ["--sim-usage-dir", str(usage_dir), *extra]
        known = set(tmp_path.glob("engine-*/agent.log"))
        agent_factory(argv, env={"VLLM_SERVER_DEV_MODE": "1"}, name="engine")
        (log,) = set(tmp_path.glob("engine-*/agent.log")) - known
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        clients.append(client)
        engine = Engine(client, log, usage_dir, uuid)
        if wait:
            waiting.wait_for(
                lambda: client.get("/health").status_code == 200,
                timeout=START_TIMEOUT,
                what="the tensor engine to load its weights",
                ignore=(httpx.TransportError,),
            )
        return engine

    yield start
    for client in clients:
        client.close()


def test_serves_completions_computed_from_its_weights(start_engine: Callable[..., Engine]) -> None:
    engine = start_engine()
    (ready,) = engine.records("tensor engine ready")
    assert ready["device"] == "cpu"
    assert ready["tensors"] > 100
    assert 0.9 * 0.03 * (1 << 30) <= ready["bytes"] <= 0.03 * (1 << 30)
    assert engine.usage_mib() == -(-ready["bytes"] // (1 << 20))
    assert [m["id"] for m in engine.client.get("/v1/models").json()["data"]] == ["tiny"]
    first = engine.complete()
    assert first.status_code == 200, first.text
    words = first.json()["choices"][0]["text"].split()
    assert len(words) == 6
    assert all(w.startswith("tok") for w in words)
    assert engine.complete().json()["choices"][0]["text"] == " ".join(words)
    assert engine.complete("another prompt").json()["choices"][0]["text"] != " ".join(words)
    assert 'vllm:engine_sleep_state{model_name="tiny",sleep_state="awake"} 1.0' in engine.client.get("/metrics").text


def test_level_one_sleep_frees_and_wake_restores_the_same_weights(start_engine: Callable[..., Engine]) -> None:
    engine = start_engine()
    before = engine.complete().json()["choices"][0]["text"]
    held = engine.usage_mib()
    assert held > 0
    assert engine.client.post("/sleep", params={"level": 1}).status_code == 200
    assert engine.sleeping()
    assert engine.usage_mib() == 0
    assert engine.complete().status_code == 503
    (asleep,) = engine.records("tensor engine asleep")
    assert asleep["host_bytes"] >= held * (1 << 20) - (1 << 20)
    # Sleeping again is a no-op: answered 200, nothing moved a second time.
    assert engine.client.post("/sleep", params={"level": 1}).status_code == 200
    assert len(engine.records("tensor engine asleep")) == 1
    assert engine.sleeping()
    assert engine.client.post("/wake_up").status_code == 200
    assert not engine.sleeping()
    assert engine.usage_mib() == held
    (woke,) = engine.records("tensor engine woke")
    assert woke["checksum_verified"] is True
    assert engine.complete().json()["choices"][0]["text"] == before
    # The host copy is released after the wake was answered (unpinning is not on the wake's clock).
    released = waiting.wait_for(
        lambda: engine.records("tensor engine released its host copy"), timeout=30, what="the host copy's release"
    )
    assert [r["host_bytes"] for r in released] == [0]
    assert 'sleep_state="awake"} 1.0' in engine.client.get("/metrics").text


def test_level_two_discards_and_wake_reloads(start_engine: Callable[..., Engine]) -> None:
    engine = start_engine()
    before = engine.complete().json()["choices"][0]["text"]
    assert engine.client.post("/sleep", params={"level": 2}).status_code == 200
    (asleep,) = engine.records("tensor engine asleep")
    assert asleep["level"] == 2
    assert asleep["host_bytes"] == 0
    assert 'sleep_state="discard_all"} 1.0' in engine.client.get("/metrics").text
    assert engine.client.post("/wake_up").status_code == 200
    (woke,) = engine.records("tensor engine woke")
    assert "reload_seconds" in woke
    assert engine.complete().json()["choices"][0]["text"] == before


def test_kept_host_buffer_is_reused_across_sleeps(start_engine: Callable[..., Engine]) -> None:
    engine = start_engine("--keep-pinned-buffers")
    for _ in range(2):
        assert engine.client.post("/sleep", params={"level": 1}).status_code == 200
        assert engine.client.post("/wake_up").status_code == 200
    allocations = [r["host_allocations"] for r in engine.records("tensor engine asleep")]
    assert allocations == [1, 1]
    assert engine.records("tensor engine released its host copy") == []


def test_wake_without_free_memory_is_refused_and_leaves_the_engine_asleep_and_intact(
    start_engine: Callable[..., Engine],
) -> None:
    cap = ("--sim-device-memory-mib", "48")  # room for one 30 MiB model, not two
    a = start_engine(*cap, uuid="GPU-shared")
    before = a.complete().json()["choices"][0]["text"]
    assert a.client.post("/sleep", params={"level": 1}).status_code == 200
    b = start_engine(*cap, uuid="GPU-shared")  # takes the simulated GPU while A sleeps
    refused = a.client.post("/wake_up")
    assert refused.status_code == 507, refused.text
    body = refused.json()
    assert body["type"] == "InsufficientDeviceMemory"
    assert "waking needs" in body["message"]
    assert "is free" in body["message"]
    assert a.sleeping()
    assert a.complete().status_code == 503
    assert a.records("tensor engine woke") == []
    assert b.complete().status_code == 200
    # The other engine sleeps: now A fits, and its weights are the ones it slept with.
    assert b.client.post("/sleep", params={"level": 1}).status_code == 200
    assert a.client.post("/wake_up").status_code == 200
    assert not a.sleeping()
    assert a.complete().json()["choices"][0]["text"] == before


def test_an_engine_that_does_not_fit_exits_with_the_reason(start_engine: Callable[..., Engine]) -> None:
    engine = start_engine("--sim-device-memory-mib", "8", wait=False)
    waiting.wait_for(
        lambda: engine.records("the tensor engine could not load its weights"),
        timeout=START_TIMEOUT,
        what="the engine to report that its weights do not fit",
    )
    (record,) = engine.records("the tensor engine could not load its weights")
    assert "needs" in json.dumps(record)


@pytest.fixture
def torch_launcher(
    agent_factory: Callable[..., Any], tmp_path: pathlib.Path, harness: Any
) -> Iterator[tuple[httpx.Client, pathlib.Path]]:
    python = vllm_env.require()
    port = processes.free_port()
    logs = tmp_path / "instance-logs"
    logs.mkdir()
    argv = [str(python), "-m", "launcher", "--engine", "sim", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-dir", str(logs), "--mock-gpus", "--mock-gpu-count", "2", "--no-nvml"]
    argv += ["--preload-module", "torch", "--preload-module", "launcher.tensor_engine", "--stop-grace-seconds", "5"]
    agent_factory(argv, name="launcher")
    (log,) = tmp_path.glob("launcher-*/agent.log")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    harness.wait_http(client, "/health", "the launcher (preloading torch) to answer", timeout=START_TIMEOUT)
    yield client, log
    client.close()


def test_launcher_preloads_torch_without_cuda_and_runs_cpu_instances(
    torch_launcher: tuple[httpx.Client, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    client, log = torch_launcher
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (preloaded,) = [r for r in records if r.get("msg") == "engine preloaded"]
    assert preloaded["torch_imported"] is True
    assert preloaded["cuda_initialized"] is False
    port = processes.free_port()
    options = f"--model tiny --host 127.0.0.1 --port {port} --enable-sleep-mode --device cpu"
    options += f" --sim-model-gib {MODEL_GIB} --sim-usage-dir {tmp_path / 'usage'}"
    body = {"options": options, "gpu_uuids": ["GPU-1"], "env_vars": {"VLLM_SERVER_DEV_MODE": "1"}}
    created = client.put("/v2/vllm/instances/cpu-1", json=body)
    assert created.status_code == 201, created.text
    engine = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    waiting.wait_for(
        lambda: engine.get("/health").status_code == 200,
        timeout=START_TIMEOUT,
        what="the instance to load its weights",
        ignore=(httpx.TransportError,),
    )
    text = engine.post("/v1/completions", json={"prompt": "p", "max_tokens": 3}).json()["choices"][0]["text"]
    assert text.startswith("tok")
    assert engine.post("/sleep", params={"level": 1}).status_code == 200
    assert engine.post("/wake_up").status_code == 200
    assert engine.post("/v1/completions", json={"prompt": "p", "max_tokens": 3}).json()["choices"][0]["text"] == text
    engine.close()
    assert client.delete("/v2/vllm/instances/cpu-1").status_code == 200
