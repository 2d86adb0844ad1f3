"""Container processes: own process group, exit codes as Kubernetes reports them, SIGTERM then SIGKILL."""

from __future__ import annotations

import pathlib
import signal
import sys

from devcluster import processes, waiting
from devcluster.simnode import container_process


def _start(tmp_path: pathlib.Path, code: str) -> container_process.Handle:
    return container_process.start(
        [sys.executable, "-c", code],
        mounts=[],
        env={"PATH": "/usr/bin:/bin"},
        cwd=str(tmp_path),
        log_path=tmp_path / "log",
    )


def test_exit_code_and_log(tmp_path: pathlib.Path) -> None:
    handle = _start(tmp_path, "print('hello'); raise SystemExit(3)")
    result = waiting.wait_for(handle.poll, timeout=10, what="the process to exit")
    assert result == container_process.Exit(exit_code=3)
    assert (tmp_path / "log").read_text() == "hello\n"


def test_stop_sends_sigterm_to_the_group_then_sigkill(tmp_path: pathlib.Path) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    handle = _start(tmp_path, code)
    waiting.wait_for(lambda: (tmp_path / "log").read_text() == "up\n", timeout=10, what="the process to start")
    assert processes.process_start_time(handle.pid) is not None
    result = handle.stop(0.3)
    assert result == container_process.Exit(exit_code=128 + signal.SIGKILL, signal=signal.SIGKILL)


def test_adopted_process_exit_is_unknown(tmp_path: pathlib.Path) -> None:
    own = _start(tmp_path, "import time; time.sleep(60)")  # noqa: sleep-ok - the child's idle command
    adopted = container_process.Handle.adopt(own.pid, own.start_time)
    assert adopted.poll() is None
    own.stop(5.0)
    assert adopted.poll() == container_process.Exit(exit_code=None)
