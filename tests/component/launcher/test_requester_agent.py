"""The requester agent (``fma-requester``) over real HTTP: the SPI and its probe port.

See docs/protocol.md, "Requester SPI".
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting
from launcher import sim_usage

pytestmark = pytest.mark.component

_ENTRY = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"


@pytest.fixture
def start_requester(
    agent_factory: Callable[..., Any], harness: Any, tmp_path: pathlib.Path
) -> Iterator[Callable[..., tuple[Any, httpx.Client, httpx.Client]]]:
    clients: list[httpx.Client] = []

    def start(env: dict[str, str], *flags: str) -> tuple[Any, httpx.Client, httpx.Client]:
        probes, spi = processes.free_port(), processes.free_port()
        argv = [sys.executable, "-c", _ENTRY, "--host", "127.0.0.1", "--probes-port", str(probes)]
        argv += ["--spi-port", str(spi), "--sim-usage-dir", str(tmp_path / "usage"), *flags]
        proc = agent_factory(argv, env=env, name="requester")
        probe_client = httpx.Client(base_url=f"http://127.0.0.1:{probes}", timeout=10)
        spi_client = httpx.Client(base_url=f"http://127.0.0.1:{spi}", timeout=10)
        clients.extend([probe_client, spi_client])
        waiting.wait_for(
            lambda: probe_client.get("/ready").status_code in (200, 503),
            timeout=20,
            what="the requester agent to answer",
            ignore=(httpx.TransportError,),
        )
        return proc, probe_client, spi_client

    yield start
    for client in clients:
        client.close()


def test_reports_uuids_from_nvidia_visible_devices(start_requester: Callable[..., Any]) -> None:
    _, _, spi = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-1111,GPU-2222"})
    response = spi.get("/v1/dual-pods/accelerators", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ["GPU-1111", "GPU-2222"]


@pytest.mark.parametrize("value", ["void", "none", "all", ""])
def test_non_uuid_lists_fall_back_and_then_fail_with_500(start_requester: Callable[..., Any], value: str) -> None:
    # No NVML and no nvidia-smi on this machine: the fallbacks find nothing.
    _, _, spi = start_requester({"NVIDIA_VISIBLE_DEVICES": value, "PATH": "/nonexistent"})
    response = spi.get("/v1/dual-pods/accelerators")
    assert response.status_code == 500
    assert response.text == "no GPUs found\n"


def test_ready_follows_the_relay(start_requester: Callable[..., Any]) -> None:
    _, probes, spi = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-1"})
    first = probes.get("/ready")
    assert (first.status_code, first.text) == (503, "Service Unavailable\n")
    ready = spi.post("/v1/become-ready")
    assert (ready.status_code, ready.text) == (200, "OK\n")
    assert (probes.get("/ready").status_code, probes.get("/ready").text) == (200, "OK\n")
    assert spi.post("/v1/become-unready").text == "OK\n"
    assert probes.get("/ready").status_code == 503
    assert spi.get("/v1/become-ready").status_code == 405
    assert probes.post("/ready").status_code == 405
    assert spi.get("/ready").status_code == 404  # the probe lives on the probe port only
    assert probes.post("/v1/become-ready").status_code == 404


def test_flags_win_over_environment_ports(start_requester: Callable[..., Any]) -> None:
    env_port = processes.free_port()
    _, probes, _ = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-1", "PROBES_PORT": str(env_port)})
    assert probes.get("/ready").status_code == 503
    with httpx.Client(timeout=2) as other, pytest.raises(httpx.ConnectError):
        other.get(f"http://127.0.0.1:{env_port}/ready")


def test_memory_usage_from_published_engine_usage(start_requester: Callable[..., Any], tmp_path: pathlib.Path) -> None:
    _, _, spi = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-a,GPU-b"})
    assert spi.get("/v1/dual-pods/accelerator-memory-usage").json() == {"GPU-a": 0, "GPU-b": 0}
    usage = sim_usage.EngineUsage(pid=os.getpid(), usage_mib={"GPU-a": 1234, "GPU-other": 99})
    sim_usage.publish(tmp_path / "usage", usage)
    response = spi.get("/v1/dual-pods/accelerator-memory-usage")
    assert response.status_code == 200
    assert response.json() == {"GPU-a": 1234, "GPU-b": 0}


def test_set_log_appends_only_new_bytes(start_requester: Callable[..., Any], tmp_path: pathlib.Path) -> None:
    _, _, spi = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-1"})
    assert spi.post("/v1/set-log").status_code == 400
    assert spi.post("/v1/set-log", params={"startPos": "-1"}).status_code == 400
    assert spi.post("/v1/set-log", params={"startPos": "x"}).status_code == 400
    assert spi.post("/v1/set-log", params={"startPos": "0"}, content=b"hello").status_code == 200
    again = spi.post("/v1/set-log", params={"startPos": "3"}, content=b"lo world")
    assert again.status_code == 200
    assert "6 new bytes" in again.text
    assert spi.post("/v1/set-log", params={"startPos": "0"}, content=b"hel").status_code == 200  # nothing new
    assert spi.post("/v1/set-log", params={"startPos": "100"}, content=b"x").status_code == 400
    out = next(tmp_path.glob("requester-*/agent.log"))
    waiting.wait_for(lambda: b"hello world" in out.read_bytes(), timeout=5, what="the log chunk on stdout")
    assert out.read_bytes().count(b"hello") == 1


def test_sigterm_shuts_down_gracefully(start_requester: Callable[..., Any]) -> None:
    proc, _, _ = start_requester({"NVIDIA_VISIBLE_DEVICES": "GPU-1"})
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
