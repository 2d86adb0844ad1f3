"""The launcher running real engine-simulator instances: GPUs, health, sleep and wake through the engine API."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.component

BASE = "/v2/vllm/instances"


def _seen_by_child(launcher: Any, instance_id: str) -> dict[str, Any]:
    """What the engine simulator, inside the instance, logged about its environment at start."""

    def find() -> dict[str, Any] | None:
        for line in launcher.client.get(f"{BASE}/{instance_id}/log").content.splitlines():
            record = json.loads(line)
            if record.get("msg") == "engine simulator starting":
                return dict(record)
        return None

    return waiting.wait_for(find, timeout=20, what=f"{instance_id} to log its start")


def test_three_instances_on_different_gpus_serve_sleep_and_wake(launcher: Any, harness: Any) -> None:
    # GPU_MAP in conftest: GPU-aaaa→3, GPU-bbbb→0, GPU-cccc→1, GPU-dddd→2 (not the identity, on purpose)
    plan = {"i-a": ["GPU-aaaa"], "i-b": ["GPU-bbbb", "GPU-dddd"], "i-c": ["GPU-cccc"]}
    expected_cvd = {"i-a": "3", "i-b": "0,2", "i-c": "1"}
    ports = {name: processes.free_port() for name in plan}
    for name, gpus in plan.items():
        body = {
            "options": harness.sim_options(ports[name]),
            "gpu_uuids": gpus,
            "env_vars": {"VLLM_SERVER_DEV_MODE": "1", "CALLER_VAR": name},
            "annotations": {"isc-name": "isc-1", "inference-port": str(ports[name])},
        }
        response = launcher.client.put(f"{BASE}/{name}", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["env_vars"]["CUDA_VISIBLE_DEVICES"] == expected_cvd[name]

    engines = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for name, port in ports.items()}
    try:
        for name, engine in engines.items():
            harness.wait_http(engine, "/health", f"engine {name} to become healthy")
        for name, gpus in plan.items():
            seen = _seen_by_child(launcher, name)
            assert seen["cuda_visible_devices"] == expected_cvd[name]
            assert seen["cuda_device_order"] == "PCI_BUS_ID"
            assert seen["gpu_uuids"] == gpus

        view = launcher.client.get(BASE).json()
        assert view["running_instances"] == 3
        assert [i["instance_id"] for i in view["instances"]] == list(plan)

        engine = engines["i-b"]
        assert engine.get("/is_sleeping").json() == {"is_sleeping": False}
        completion = engine.post("/v1/completions", json={"model": "sim-model", "prompt": "hello", "max_tokens": 3})
        assert completion.status_code == 200
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        assert engine.get("/is_sleeping").json() == {"is_sleeping": True}
        assert engine.post("/v1/completions", json={"prompt": "hello"}).status_code == 503
        assert engines["i-a"].get("/is_sleeping").json() == {"is_sleeping": False}  # the others are untouched
        assert engine.post("/wake_up").status_code == 200
        assert engine.get("/is_sleeping").json() == {"is_sleeping": False}
        again = engine.post("/v1/completions", json={"model": "sim-model", "prompt": "hello", "max_tokens": 3})
        assert again.json()["choices"][0]["text"] == completion.json()["choices"][0]["text"]

        assert launcher.client.get(BASE).json()["running_instances"] == 3
    finally:
        for client in engines.values():
            client.close()


def test_caller_cuda_device_order_is_kept_and_visible_devices_overridden(launcher: Any, harness: Any) -> None:
    body = {
        "options": harness.sim_options(processes.free_port()),
        "gpu_uuids": ["GPU-cccc"],
        "env_vars": {"CUDA_VISIBLE_DEVICES": "7", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"},
    }
    state = launcher.client.put(f"{BASE}/order", json=body).json()
    assert state["env_vars"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert state["env_vars"]["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
    seen = _seen_by_child(launcher, "order")
    assert seen["cuda_visible_devices"] == "1"
    assert seen["cuda_device_order"] == "FASTEST_FIRST"


def test_requester_agent_reports_the_instance_memory(
    launcher: Any, harness: Any, agent_factory: Any, tmp_path: pathlib.Path
) -> None:
    usage_dir = tmp_path / "usage"
    port = processes.free_port()
    body = {
        "options": harness.sim_options(port, "--sim-gpu-memory-gib", "8", "--gpu-memory-utilization", "0.5"),
        "gpu_uuids": ["GPU-bbbb"],
        "env_vars": {"VLLM_SERVER_DEV_MODE": "1", "FMA_SIM_USAGE_DIR": str(usage_dir)},
    }
    assert launcher.client.put(f"{BASE}/mem", json=body).status_code == 201
    spi_port, probes_port = processes.free_port(), processes.free_port()
    entry = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
    argv = [sys.executable, "-c", entry, "--host", "127.0.0.1", "--spi-port", str(spi_port)]
    argv += ["--probes-port", str(probes_port), "--sim-usage-dir", str(usage_dir)]
    agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": "GPU-bbbb"}, name="requester")
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{spi_port}", timeout=10) as spi,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as engine,
    ):
        usage = "/v1/dual-pods/accelerator-memory-usage"
        waiting.wait_for(
            lambda: spi.get(usage).json() == {"GPU-bbbb": 4096},
            timeout=20,
            what="the awake instance's 4 GiB to show",
            ignore=(httpx.TransportError,),
        )
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        assert spi.get(usage).json() == {"GPU-bbbb": 1024}
        assert launcher.client.delete(f"{BASE}/mem").status_code == 200
        assert spi.get(usage).json() == {"GPU-bbbb": 0}


def test_instances_of_launchers_on_different_addresses_share_a_port(launcher_factory: Any, harness: Any) -> None:
    """Each launcher's instance binds the launcher's own address, so the same port serves twice.

    See docs/launcher.md, "How an instance is started: the preloaded parent".
    """
    hosts = ["127.0.50.1", "127.0.50.2"]
    launchers = [launcher_factory(host=host) for host in hosts]
    port = processes.free_port(host="0.0.0.0")  # free on every address
    options = f"--model sim-model --port {port} --sim-startup-seconds 0 --sim-model-gib 0"  # no --host on purpose
    for agent in launchers:
        response = agent.client.put(f"{BASE}/same-port", json={"options": options})
        assert response.status_code == 201, response.text
        assert response.json()["options"] == options  # echoed as sent
    engines = [httpx.Client(base_url=f"http://{host}:{port}", timeout=10) for host in hosts]
    try:
        for host, engine in zip(hosts, engines, strict=True):
            harness.wait_http(engine, "/health", f"the instance at {host}:{port} to become healthy")
        for host, agent in zip(hosts, launchers, strict=True):
            view = agent.client.get(BASE).json()
            assert [(i["instance_id"], i["status"]) for i in view["instances"]] == [("same-port", "running")]
            assert _seen_by_child(agent, "same-port")["host"] == host
    finally:
        for engine in engines:
            engine.close()
