"""The engine simulator as a standalone server (``fma-engine-sim serve``): the vLLM surface FMA uses."""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.component


@pytest.fixture
def start_sim(agent_factory: Callable[..., Any], harness: Any) -> Callable[..., httpx.Client]:
    clients: list[httpx.Client] = []

    def start(*options: str, dev_mode: bool = True, wait: bool = True) -> httpx.Client:
        port = processes.free_port()
        argv = [sys.executable, "-c", "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"]
        argv += ["serve", *options, "--host", "127.0.0.1", "--port", str(port)]
        agent_factory(argv, env={"VLLM_SERVER_DEV_MODE": "1" if dev_mode else "0"}, name="sim")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        clients.append(client)
        if wait:
            harness.wait_http(client, "/health", "the simulator to become healthy")
        return client

    yield start
    for client in clients:
        client.close()


FAST = ("--sim-startup-seconds", "0", "--sim-model-gib", "0", "--sim-reload-seconds", "0")


def test_health_is_503_while_starting(start_sim: Callable[..., httpx.Client], harness: Any) -> None:
    sim = start_sim("--sim-startup-seconds", "1.5", "--sim-model-gib", "0", wait=False)
    first = waiting.wait_for(
        lambda: sim.get("/health"), timeout=20, what="the simulator to answer", ignore=(httpx.TransportError,)
    )
    assert first.status_code == 503
    assert sim.post("/v1/completions", json={"prompt": "x"}).status_code == 503
    # A controller polling /is_sleeping must not take a loading engine for an awake one.
    assert sim.get("/is_sleeping").status_code == 503
    harness.wait_http(sim, "/health", "the simulated load to finish")
    assert sim.get("/is_sleeping").json() == {"is_sleeping": False}


def test_models_and_completions(start_sim: Callable[..., httpx.Client]) -> None:
    sim = start_sim("serve-model", "--served-model-name", "alias", "--max-model-len", "64", *FAST)
    models = sim.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["alias"]
    assert models["data"][0]["root"] == "serve-model"
    assert models["data"][0]["max_model_len"] == 64

    body = {"model": "alias", "prompt": "one two three", "max_tokens": 5}
    first = sim.post("/v1/completions", json=body).json()
    second = sim.post("/v1/completions", json=body).json()
    assert first["choices"][0]["text"] == second["choices"][0]["text"]
    assert len(first["choices"][0]["text"].split()) == 5
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    other = sim.post("/v1/completions", json={**body, "prompt": "something else"}).json()
    assert other["choices"][0]["text"] != first["choices"][0]["text"]

    chat = sim.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 4}
    )
    assert chat.status_code == 200
    assert chat.json()["choices"][0]["message"]["role"] == "assistant"
    assert chat.json()["usage"]["completion_tokens"] == 4

    unknown = sim.post("/v1/completions", json={**body, "model": "nope"})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["message"]
    too_long = sim.post("/v1/completions", json={**body, "max_tokens": 100})
    assert too_long.status_code == 400
    assert sim.post("/v1/completions", json={"prompt": 5}).status_code == 422


def test_sleep_wake_with_tags_and_metrics(start_sim: Callable[..., httpx.Client]) -> None:
    sim = start_sim("--enable-sleep-mode", *FAST)
    assert sim.post("/sleep", params={"level": 3}).status_code == 400
    assert sim.post("/sleep", params={"level": 2}).status_code == 200
    assert sim.get("/is_sleeping").json() == {"is_sleeping": True}
    assert sim.get("/health").status_code == 200  # a sleeping engine is alive
    assert sim.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}).status_code == 503
    text = sim.get("/metrics").text
    assert 'vllm:engine_sleep_state{model_name="facebook/opt-125m",sleep_state="discard_all"} 1.0' in text

    assert sim.post("/wake_up", params={"tags": "bogus"}).status_code == 400
    assert sim.post("/wake_up", params={"tags": "weights"}).status_code == 200
    assert sim.get("/is_sleeping").json() == {"is_sleeping": True}  # the KV cache is still asleep
    assert sim.post("/wake_up", params={"tags": "kv_cache"}).status_code == 200
    assert sim.get("/is_sleeping").json() == {"is_sleeping": False}
    assert sim.post("/v1/completions", json={"prompt": "x"}).status_code == 200
    text = sim.get("/metrics").text
    assert 'sleep_state="awake"} 1.0' in text
    assert "vllm:generation_tokens_total" in text


def test_sleep_needs_sleep_mode_and_dev_mode(start_sim: Callable[..., httpx.Client]) -> None:
    no_flag = start_sim(*FAST)
    response = no_flag.post("/sleep", params={"level": 1})
    assert response.status_code == 400
    assert "--enable-sleep-mode" in response.json()["message"]
    no_dev = start_sim("--enable-sleep-mode", *FAST, dev_mode=False)
    assert no_dev.post("/sleep").status_code == 404
    assert no_dev.get("/is_sleeping").status_code == 404


def test_wake_time_follows_the_bandwidth(start_sim: Callable[..., httpx.Client]) -> None:
    # 1.2 GiB at 2 GiB/s host-to-device: 0.6 s to wake; device-to-host is fast.
    sim = start_sim(
        "--enable-sleep-mode",
        "--sim-startup-seconds",
        "0",
        "--sim-model-gib",
        "1.2",
        "--sim-h2d-gib-per-s",
        "2",
        "--sim-d2h-gib-per-s",
        "100",
    )
    assert sim.post("/sleep", params={"level": 1}).status_code == 200
    started = time.monotonic()
    assert sim.post("/wake_up").status_code == 200
    elapsed = time.monotonic() - started
    assert 0.55 <= elapsed < 2.0, elapsed


def test_unknown_options_are_tolerated_and_logged(
    start_sim: Callable[..., httpx.Client], tmp_path: pathlib.Path
) -> None:
    sim = start_sim("--dtype", "float16", "--trust-remote-code", *FAST)
    assert sim.get("/health").status_code == 200
    log = next(tmp_path.glob("sim-*/agent.log")).read_text()
    warnings = [json.loads(line) for line in log.splitlines() if "does not model" in line]
    assert warnings
    assert warnings[0]["options"] == ["--dtype", "float16", "--trust-remote-code"]
    assert "--sim-startup-seconds" not in warnings[0]["options"]


def test_publishes_gpu_memory_per_uuid(start_sim: Callable[..., httpx.Client], tmp_path: pathlib.Path) -> None:
    usage_dir = tmp_path / "usage"
    sim = start_sim(
        "--enable-sleep-mode",
        "--sim-gpu-uuids",
        "GPU-x,GPU-y",
        "--sim-usage-dir",
        str(usage_dir),
        "--sim-gpu-memory-gib",
        "10",
        "--gpu-memory-utilization",
        "0.5",
        "--sim-sleep-residual-mib",
        "300",
        *FAST,
    )

    def usage() -> dict[str, int]:
        (path,) = usage_dir.glob("engine-*.json")
        return dict(json.loads(path.read_text())["usage_mib"])

    assert usage() == {"GPU-x": 5120, "GPU-y": 5120}
    assert sim.post("/sleep", params={"level": 1}).status_code == 200
    assert usage() == {"GPU-x": 300, "GPU-y": 300}
