"""The preloaded parent: a process that has imported the engine and forks one child per instance.

Why a separate process instead of forking the launcher itself: the launcher
runs an event loop (uvloop) and may run threads, and ``fork()`` of such a
process copies locks held by threads that do not exist in the child.  The
zygote is forked from the launcher in ``main()`` before any loop or thread
exists, imports the engine once (``Engine.preload``), and then only waits on
two file descriptors, so each of its children starts from a clean,
single-threaded, preloaded image.

Protocol over a Unix socket pair, one JSON object per line:

- launcher → zygote: ``{"op": "spawn", "seq", "argv", "env", "log_path"}``;
- zygote → launcher: ``{"op": "ready"}`` once preloaded, or ``{"op": "failed", "error"}``;
  ``{"op": "spawned", "seq", "pid"}`` or ``{"op": "spawn_failed", "seq", "error"}``;
  ``{"op": "exited", "pid", "code"}`` when an instance's main process exits.

Exits are learned from SIGCHLD (through ``signal.set_wakeup_fd``) and
``waitpid``: no polling.  The zygote is a child subreaper, so the orphaned
workers of an instance are reaped here too, and when the launcher goes away
(end of file on the socket) it SIGKILLs every instance's process group.

Each child: its own session and process group, stdin from /dev/null, stdout
and stderr to the instance log (opened by the zygote so that a bad log
directory is a spawn failure, not a silent crash), every other inherited
descriptor closed, the environment replaced by the one the launcher sent.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import pydantic

from launcher import engine as engine_mod

__all__ = ["SpawnRequest", "fork"]

logger = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_DEAF_TO = {signal.SIGINT, signal.SIGTERM}


class SpawnRequest(pydantic.BaseModel):
    """Start one instance: its argv for the engine, full environment and log path."""

    model_config = pydantic.ConfigDict(extra="forbid")

    op: str = "spawn"
    seq: int
    argv: list[str]
    env: dict[str, str]
    log_path: str


def fork(
    engine: engine_mod.Engine, preload_modules: list[str], close_fds: Sequence[int] = ()
) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its PID and the launcher's end of the socket.

    Call before any event loop or thread exists in this process.  The zygote
    first closes ``close_fds`` (descriptors that must never reach an instance,
    such as the token pipe).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        ours.close()
        code = 70
        try:
            code = _Zygote(theirs, engine).run(preload_modules)
        except BaseException:  # noqa: BLE001 - the supervisor of everything below must report and exit
            traceback.print_exc()
        finally:
            os._exit(code)
    theirs.close()
    return pid, ours


def _seq_of(line: bytes) -> int | None:
    """The ``seq`` of a spawn request line that failed validation, when it can still be read."""
    with contextlib.suppress(ValueError, AttributeError):
        seq = json.loads(line).get("seq")
        if isinstance(seq, int):
            return seq
    return None


_CUDA_IN_PARENT = (
    "a preload initialised CUDA in the preloaded parent; its forked children could not use the GPU "
    "(preload modules may import torch but must not touch a device)"
)


def _cuda_facts() -> dict[str, bool]:
    """Whether torch is imported here and whether it has initialised CUDA (never imports torch itself)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    initialized = bool(cuda.is_initialized()) if cuda is not None else False
    return {"torch_imported": torch is not None, "cuda_initialized": initialized}


class _Zygote:
    def __init__(self, sock: socket.socket, engine: engine_mod.Engine) -> None:
        self._sock = sock
        self._engine = engine
        self._children: set[int] = set()

    def _send(self, message: dict[str, object]) -> None:
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def run(self, preload_modules: list[str]) -> int:
        # Blocked, not ignored: a child inherits the mask, and a SIGTERM sent to it before it
        # unblocks stays pending instead of being lost (a delete right after a create).
        signal.pthread_sigmask(signal.SIG_BLOCK, _DEAF_TO)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)
        try:
            self._engine.preload()
            for name in preload_modules:
                importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - any preload failure is reported to the launcher
            self._send({"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
            return 1
        facts = _cuda_facts()
        if facts["cuda_initialized"]:
            self._send({"op": "failed", "error": _CUDA_IN_PARENT})
            return 1
        self._send({"op": "ready", **facts})
        buffer = b""
        while True:
            readable, _, _ = select.select([self._sock.fileno(), wake_r], [], [])
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                self._reap()
            if self._sock.fileno() in readable:
                data = self._sock.recv(1 << 16)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._handle(line)
        self._kill_all()
        return 0

    def _handle(self, line: bytes) -> None:
        try:
            request = SpawnRequest.model_validate_json(line)
        except pydantic.ValidationError as exc:
            # Never die on one bad line: every other instance depends on this process.
            seq = _seq_of(line)
            if seq is not None:
                self._send({"op": "spawn_failed", "seq": seq, "error": f"malformed spawn request: {exc}"[:2000]})
            return
        try:
            log_fd = os.open(request.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self._send({"op": "spawn_failed", "seq": request.seq, "error": f"cannot open log: {exc}"})
            return
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except OSError as exc:
            os.close(log_fd)
            self._send({"op": "spawn_failed", "seq": request.seq, "error": f"fork failed: {exc}"})
            return
        if pid == 0:  # pragma: no cover - runs in the instance process
            self._become_instance(request, log_fd)
        os.close(log_fd)
        self._children.add(pid)
        self._send({"op": "spawned", "seq": request.seq, "pid": pid})

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._children:
                self._children.discard(pid)
                self._send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def _kill_all(self) -> None:
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def _become_instance(self, request: SpawnRequest, log_fd: int) -> NoReturn:  # pragma: no cover - child
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, 1 << 16)
            os.environ.clear()
            os.environ.update(request.env)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEAF_TO)
            code = self._engine.run(request.argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - the instance's last words go to its log
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
