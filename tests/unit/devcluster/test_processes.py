"""Background processes are stopped exactly, and ports are picked free."""

from __future__ import annotations

import os
import pathlib
import socket
import sys

from devcluster import processes


def test_spawn_then_stop_kills_the_whole_group(tmp_path: pathlib.Path) -> None:
    record = processes.spawn(
        "sleeper",
        [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"],
        tmp_path / "sleeper.log",
    )
    assert processes.is_alive(record)
    processes.stop(record, grace_seconds=0.3)
    assert not processes.is_alive(record)


def test_a_reused_pid_is_not_taken_for_ours() -> None:
    me = processes.process_start_time(os.getpid())
    assert me is not None
    impostor = processes.ProcessRecord(name="x", pid=os.getpid(), start_time=me + 1, log="")
    assert not processes.is_alive(impostor)


def test_free_port_prefers_the_asked_port_unless_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not processes.port_is_free(taken)
        other = processes.free_port(taken)
        assert other != taken
    assert processes.free_port(other) == other
    assert processes.free_port(other, avoid={other}) != other
