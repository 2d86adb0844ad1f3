"""Fixtures that run the node agents as real processes on loopback ports.

Each fixture starts the real entry point (``python -m launcher`` and friends)
in its own session, waits until it answers, and on teardown sends SIGTERM,
waits for the exit and, for the launcher, checks that no instance process
survived it.  Tests talk to them with httpx.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import types
from collections.abc import Callable, Iterator

import httpx
import pytest

from devcluster import processes, waiting

GPU_MAP = {"GPU-aaaa": 3, "GPU-bbbb": 0, "GPU-cccc": 1, "GPU-dddd": 2}


@dataclasses.dataclass
class Agent:
    """A running agent process and what tests need to reach it."""

    proc: subprocess.Popen[bytes]
    base_url: str
    client: httpx.Client
    workdir: pathlib.Path
    port: int


def start_process(argv: list[str], workdir: pathlib.Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with (workdir / "agent.log").open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM the agent and wait; SIGKILL its group if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def alive(pid: int) -> bool:
    """Whether a process with this PID exists and is not a zombie."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_http(client: httpx.Client, path: str, what: str, timeout: float = 30) -> None:
    waiting.wait_for(
        lambda: client.get(path).status_code == 200, timeout=timeout, what=what, ignore=(httpx.TransportError,)
    )


def instance_pids(agent: Agent) -> list[int]:
    """PIDs (main and simulated workers) that instances of this launcher logged."""
    pids: list[int] = []
    for log in (agent.workdir / "logs").glob("*.log"):
        pids += log_pids(log.read_bytes())
    return pids


def log_pids(log: bytes) -> list[int]:
    """The main and worker PIDs an engine simulator wrote to its log."""
    pids = []
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            for key in ("pid", "worker_pid"):
                if isinstance(record, dict) and isinstance(record.get(key), int):
                    pids.append(record[key])
    return pids


def sim_options(port: int, *extra: str) -> str:
    """vLLM-style options for a fast engine simulator on ``port``."""
    base = f"--model sim-model --host 127.0.0.1 --port {port} --enable-sleep-mode"
    base += " --sim-startup-seconds 0 --sim-model-gib 0"
    return " ".join([base, *extra])


@pytest.fixture
def launcher_factory(tmp_path: pathlib.Path) -> Iterator[Callable[..., Agent]]:
    """Start ``fma-launcher --engine sim`` with a GPU map file; extra flags per call, ``host`` to bind elsewhere."""
    started: list[Agent] = []

    def start(*extra: str, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Agent:
        workdir = tmp_path / f"launcher-{len(started)}"
        (workdir / "logs").mkdir(parents=True)
        gpu_map = workdir / "gpu-map.json"
        gpu_map.write_text(json.dumps(GPU_MAP))
        port = processes.free_port(host=host)
        argv = [sys.executable, "-m", "launcher", "--engine", "sim", "--host", host, "--port", str(port)]
        argv += ["--log-dir", str(workdir / "logs"), "--gpu-map-file", str(gpu_map), "--no-nvml"]
        argv += ["--stop-grace-seconds", "2", *extra]
        proc = start_process(argv, workdir, env)
        headers = {}
        if env and "FMA_LAUNCHER_TOKEN" in env:
            headers["Authorization"] = f"Bearer {env['FMA_LAUNCHER_TOKEN']}"
        client = httpx.Client(base_url=f"http://{host}:{port}", timeout=30, headers=headers)
        agent = Agent(proc, f"http://{host}:{port}", client, workdir, port)
        started.append(agent)
        wait_http(client, "/health", "the launcher to answer /health")
        return agent

    yield start
    for agent in started:
        pids = instance_pids(agent)
        agent.client.close()
        assert stop(agent.proc) == 0, (agent.workdir / "agent.log").read_text()[-3000:]
        waiting.wait_for(
            lambda pids=pids: not any(alive(p) for p in pids),
            timeout=10,
            what="every instance process to be gone after the launcher stopped",
        )


@pytest.fixture
def launcher(launcher_factory: Callable[..., Agent]) -> Agent:
    """One launcher with default flags."""
    return launcher_factory()


@pytest.fixture
def agent_factory(tmp_path: pathlib.Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start any agent command line in its own session; stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str] | None = None, name: str = "agent") -> subprocess.Popen[bytes]:
        workdir = tmp_path / f"{name}-{len(started)}"
        workdir.mkdir()
        proc = start_process(argv, workdir, env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop(proc)


@pytest.fixture
def harness() -> types.SimpleNamespace:
    """The helpers above, for tests (test modules cannot import this conftest)."""
    return types.SimpleNamespace(
        Agent=Agent, alive=alive, log_pids=log_pids, sim_options=sim_options, stop=stop, wait_http=wait_http
    )
