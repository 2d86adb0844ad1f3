"""The launcher's side of the preloaded parent (``zygote``): start instances, hear of their exits.

It turns the line protocol into awaitables: ``spawn()`` resolves to the new
PID, and every ``exited`` line calls the ``on_exit`` callback on the event
loop.  Nothing here polls; the reader task waits on the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable

from launcher import errors, zygote

__all__ = ["Spawner"]

logger = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 20


class Spawner:
    """Talks to one zygote; create with the values ``zygote.fork`` returned."""

    def __init__(self, zygote_pid: int, sock: socket.socket) -> None:
        self.zygote_pid = zygote_pid
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._seq = 0
        self._ready: asyncio.Future[None] | None = None
        self._on_exit: Callable[[int, int], None] = lambda _pid, _code: None
        self.broken = False
        self.preload_facts: dict[str, object] = {}
        self.preloaded = False

    async def start(self, on_exit: Callable[[int, int], None]) -> None:
        """Attach to the zygote and wait until it has preloaded the engine; raises ``SpawnFailed``."""
        self._on_exit = on_exit
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=_LINE_LIMIT)
        self._reader_task = asyncio.create_task(self._read(reader))
        await self._ready

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._dispatch(reader)
        except (ConnectionError, ValueError, KeyError, TypeError) as exc:
            # A reset socket or a line we cannot read: the parent is as good as gone.
            logger.error("lost the preloaded parent's reports", extra={"error": repr(exc)})
        self._fail_everything()

    async def _dispatch(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            message = json.loads(line)
            op = message.get("op")
            if op == "ready" and self._ready is not None and not self._ready.done():
                self.preload_facts = {k: v for k, v in message.items() if k != "op"}
                self.preloaded = True
                self._ready.set_result(None)
            elif op == "failed" and self._ready is not None and not self._ready.done():
                self._ready.set_exception(errors.SpawnFailed(f"the engine could not be preloaded: {message['error']}"))
            elif op == "spawned":
                future = self._pending.pop(int(message["seq"]), None)
                if future is not None and not future.done():
                    future.set_result(int(message["pid"]))
            elif op == "spawn_failed":
                future = self._pending.pop(int(message["seq"]), None)
                if future is not None and not future.done():
                    future.set_exception(errors.SpawnFailed(str(message["error"])))
            elif op == "exited":
                self._on_exit(int(message["pid"]), int(message["code"]))

    def _fail_everything(self) -> None:
        """The parent is gone: fail the start-up wait and every pending spawn, and refuse new ones."""
        self.broken = True
        failure = errors.EngineUnavailable("the preloaded parent exited; the launcher must be restarted")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(failure)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()

    async def spawn(self, argv: list[str], env: dict[str, str], log_path: str) -> int:
        """Start one instance and return its PID (also its process-group ID).

        Raises ``EngineUnavailable`` when the preloaded parent is gone and
        ``SpawnFailed`` when it could not start the child.  The request line is
        built before anything is registered, so a request that cannot be
        encoded leaves no pending future behind; a failed write fails and
        forgets its future.
        """
        if self._writer is None or self.broken:
            raise errors.EngineUnavailable("the preloaded parent is not running; the launcher must be restarted")
        seq = self._seq + 1
        try:
            line = zygote.SpawnRequest(seq=seq, argv=argv, env=env, log_path=log_path).model_dump_json().encode()
        except (ValueError, UnicodeError) as exc:
            raise errors.SpawnFailed(f"the spawn request cannot be encoded: {exc}") from None
        self._seq = seq
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            self._writer.write(line + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(seq, None)
            raise errors.EngineUnavailable(f"the preloaded parent cannot be reached: {exc}") from None
        return await future

    async def close(self) -> None:
        """Close the socket; the zygote then SIGKILLs what is left and exits, and is reaped here."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        await asyncio.to_thread(self._reap_zygote)

    def _reap_zygote(self) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.zygote_pid, 0)
