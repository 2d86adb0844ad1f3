"""``fma-dev up`` and ``fma-dev down`` as a user runs them, in separate processes."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
import sys

import pytest

from devcluster import control_plane, processes

pytestmark = pytest.mark.cluster


def _fma_dev(state_dir: pathlib.Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devcluster.cli", "--state-dir", str(state_dir), *argv],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _listening_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_up_then_down_leaves_no_process_and_no_port(tmp_path: pathlib.Path) -> None:
    state_dir = tmp_path / "cluster"
    # Occupy a port and ask for it: ``up`` must pick another one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        result = _fma_dev(state_dir, "up", "--apiserver-port", str(taken), "--nodes", "1", "--gpus-per-node", "2")
        assert result.returncode == 0, result.stderr
        state = control_plane.load(state_dir)
        assert state is not None
        simnode_record = processes.ProcessRecord(**json.loads((state_dir / "simnode.json").read_text()))
        try:
            assert state.ports["apiserver"] != taken
            assert f"export KUBECONFIG={state.kubeconfig}" in result.stdout
            assert all(state.alive().values())
            assert processes.is_alive(simnode_record)
            assert "nodes Ready" in result.stderr

            again = _fma_dev(state_dir, "up")
            assert again.returncode != 0
            assert "already runs" in again.stderr
            reused = _fma_dev(state_dir, "up", "--reuse")
            assert reused.returncode == 0, reused.stderr
            assert "reusing" in reused.stderr

            status = _fma_dev(state_dir, "status")
            assert status.returncode == 0
            assert "kube-apiserver" in status.stdout
        finally:
            down = _fma_dev(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not state_dir.exists()
    assert not any(processes.is_alive(record) for record in [*state.processes, simnode_record])
    assert not (set(state.ports.values()) & _listening_ports())


def test_commands_on_a_missing_cluster_say_so(tmp_path: pathlib.Path) -> None:
    result = _fma_dev(tmp_path / "none", "kubeconfig")
    assert result.returncode == 1
    assert "no development cluster" in result.stderr
    assert "fma-dev up" in result.stderr
