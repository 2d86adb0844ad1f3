"""Background processes that outlive the command that started them.

The control plane is started by ``fma-dev up`` and stopped by a later
``fma-dev down``, so each component runs in its own session (its PID is its
process-group ID) and is recorded with its start time: ``down`` then stops
exactly what ``up`` started, even if the PID was reused meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import time

__all__ = [
    "ProcessRecord",
    "free_port",
    "is_alive",
    "port_is_free",
    "process_start_time",
    "spawn",
    "stop",
]


@dataclasses.dataclass(frozen=True)
class ProcessRecord:
    """A process we started: its name, PID, kernel start time and log file."""

    name: str
    pid: int
    start_time: int
    log: str


def process_start_time(pid: int) -> int | None:
    """Return the process's start time in clock ticks since boot, or None if gone."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (same PID *and* same start time)."""
    return process_start_time(record.pid) == record.start_time


def spawn(name: str, argv: list[str], log_path: pathlib.Path, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # posix_spawn rather than subprocess.Popen: the child is meant to outlive
    # any Popen object, and it gets its own session (PID == process group).
    pid = os.posix_spawnp(
        argv[0],
        argv,
        env if env is not None else dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    started = process_start_time(pid)
    # The child may already have exited (bad flag); record 0 so it reads as dead.
    return ProcessRecord(name=name, pid=pid, start_time=started if started is not None else 0, log=str(log_path))


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, grace_seconds: float = 10.0) -> None:
    """SIGTERM the record's process group, wait up to ``grace_seconds``, then SIGKILL it."""
    if not is_alive(record):
        _reap(record.pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_alive(record):
            break
        time.sleep(0.05)
    # Children of the component (none expected) go with the group either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGKILL)
    for _ in range(100):
        _reap(record.pid)
        if not is_alive(record):
            return
        time.sleep(0.02)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` and we could bind it.

    SO_REUSEADDR, as every server here sets it: connections of a stopped cluster left in TIME-WAIT
    do not make the port look taken, while a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """Return ``preferred`` if it is free, otherwise a port the kernel picks.

    ``avoid`` lists ports already handed out for this cluster but not yet
    bound by their component.
    """
    taken = avoid or set()
    if preferred is not None and preferred not in taken and port_is_free(preferred, host):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise OSError(f"no free TCP port on {host!r}")
