"""``Spawner`` over a real socket pair with a scripted preloaded parent: every spawn future is resolved."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest

from launcher import errors, spawner


async def _started(peer: socket.socket) -> spawner.Spawner:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.close()
    spawn = spawner.Spawner(0, ours)
    theirs.sendall(b'{"op": "ready"}\n')
    await spawn.start(lambda _pid, _code: None)
    spawn.test_peer = theirs  # type: ignore[attr-defined]  # the scripted zygote's end, for the test
    return spawn


async def _close(spawn: spawner.Spawner) -> None:
    writer = spawn._writer
    assert writer is not None
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    await asyncio.wait_for(spawn._reader_task, 5)  # type: ignore[arg-type]


def _answer_spawns(peer: socket.socket, first_pid: int) -> None:
    """Answer each spawn request line with a made-up PID (runs in a thread)."""
    buffer = b""
    pid = first_pid
    while True:
        data = peer.recv(65536)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            peer.sendall(json.dumps({"op": "spawned", "seq": request["seq"], "pid": pid}).encode() + b"\n")
            pid += 1


def test_unencodable_request_fails_cleanly_and_the_next_spawn_works() -> None:
    async def scenario() -> None:
        spawn = await _started(socket.socket())
        peer = spawn.test_peer  # type: ignore[attr-defined]
        answering = asyncio.get_running_loop().run_in_executor(None, _answer_spawns, peer, 100)
        with pytest.raises(errors.SpawnFailed, match="cannot be encoded"):
            await spawn.spawn(["serve"], {"A": "\udc80"}, "/tmp/x.log")
        assert spawn._pending == {}  # the property under test: nothing left pending
        assert await asyncio.wait_for(spawn.spawn(["serve"], {"A": "ok"}, "/tmp/x.log"), 5) == 100
        await _close(spawn)
        await answering
        peer.close()

    asyncio.run(scenario())


def test_after_the_preloaded_parent_exits_spawns_are_503() -> None:
    async def scenario() -> None:
        spawn = await _started(socket.socket())
        peer = spawn.test_peer  # type: ignore[attr-defined]
        pending = asyncio.ensure_future(spawn.spawn(["serve"], {}, "/tmp/x.log"))
        await asyncio.sleep(0)  # noqa: sleep-ok - let the request be written before the parent goes away
        peer.close()
        with pytest.raises(errors.EngineUnavailable) as first:
            await asyncio.wait_for(pending, 5)
        assert first.value.http_status == 503
        assert spawn.broken
        with pytest.raises(errors.EngineUnavailable, match="not running"):
            await spawn.spawn(["serve"], {}, "/tmp/x.log")
        await _close(spawn)

    asyncio.run(scenario())
