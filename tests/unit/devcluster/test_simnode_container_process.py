"""Container processes: own process group, exit codes as Kubernetes reports them, SIGTERM then SIGKILL."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys

from devcluster import processes, waiting
from devcluster.simnode import container_process, image_rootfs


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


def test_setup_stages_are_told_from_the_containers_command() -> None:
    command = ["fma-requester", "--port", "8081"]
    mounts = [container_process.Mount(source="/tmp/vol", target="/data")]
    launched = container_process.launch_argv(command, mounts, "/usr/bin/unshare")
    assert container_process.is_setup_argv(launched), "unshare"
    script_stage = launched[launched.index("--") + 1 :]
    assert script_stage[0] == "/bin/sh"
    assert container_process.is_setup_argv(script_stage), "the mount script"
    enter_stage = [sys.executable, "-I", "-S", "-c", image_rootfs.enter_code(), "/root", "0", "0", "", "/", *command]
    assert container_process.is_setup_argv(enter_stage), "entering the image's root"
    assert not container_process.is_setup_argv(command)
    assert not container_process.is_setup_argv([sys.executable, "-I", "-S", "-c", "print()"])
    assert not container_process.is_setup_argv(["/bin/sh", "-c", "sleep 1"])
    assert not container_process.is_setup_argv([])
    # Without mounts or an image the command runs as it is: no setup stage at all.
    assert container_process.launch_argv(command, [], "/usr/bin/unshare") == command


def test_in_setup_reads_the_live_process() -> None:
    setup = subprocess.Popen(["/bin/sh", "-c", "sleep 30; exit 0", "simnode-container"])
    command = subprocess.Popen(["sleep", "30"])
    try:
        assert waiting.wait_for(lambda: container_process.in_setup(setup.pid), timeout=10, what="the script seen")
        assert not container_process.in_setup(command.pid)
    finally:
        for process in (setup, command):
            process.kill()
            process.wait(10)
    assert not container_process.in_setup(setup.pid), "a process that is gone is not in setup"
