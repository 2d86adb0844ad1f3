"""When an instance's engine is ready: learnt on the node, published on the launcher Pod.

The controller must not poll every starting engine from afar to find the
moment it answers.  The launcher is next to the engine, so it checks the
engine's ``GET /health`` itself, cheaply and often (every 10 ms growing to
25 ms, over loopback or the Pod's own address), from the moment the
process starts until the engine answers 200, the instance exits or it is
deleted.  The answer is one fact per instance life, ``ready``, which the
process table adds to the instance's state and the inventory publisher
writes onto the launcher's Pod (``crds.launcher_inventory``): the
controller's Pod watch brings it as an event.

``target`` (pure) reads where the engine listens from its argv; ``HealthCheck``
waits.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

__all__ = ["DEFAULT_ENGINE_PORT", "HealthCheck", "target"]

logger = logging.getLogger(__name__)

DEFAULT_ENGINE_PORT = 8000
"""vLLM's (and the simulator's) port when the options name none."""
_FIRST_INTERVAL = 0.01
_MAX_INTERVAL = 0.025
"""A check is one loopback request (a refused connection, or the engine's 503 while it loads); every 25 ms
keeps the moment the engine answers within ~25 ms of being known (docs/performance.md, actuation)."""


def _value(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def target(argv: list[str]) -> tuple[str, int] | None:
    """The address to check an engine started with ``argv`` at, or None when its port is unreadable (pure).

    A wildcard or absent ``--host`` is checked on loopback.
    """
    port_text = _value(argv, "--port")
    if port_text is None:
        port = DEFAULT_ENGINE_PORT
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        return None
    host = (_value(argv, "--host") or "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - compared against, never bound
        host = "127.0.0.1"
    return host, port


class HealthCheck:
    """Waits for an engine's ``GET /health`` to answer 200."""

    def __init__(self, client: httpx.AsyncClient, *, request_timeout: float = 2.0) -> None:
        self._client = client
        self._timeout = request_timeout

    async def _healthy(self, url: str) -> bool:
        try:
            response = await self._client.get(url, timeout=self._timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def wait(self, host: str, port: int, gone: asyncio.Event) -> bool:
        """True once the engine answers; False when ``gone`` is set first (the instance exited or is deleted)."""
        url = f"http://{host}:{port}/health"
        interval = _FIRST_INTERVAL
        while not gone.is_set():
            if await self._healthy(url):
                return True
            try:
                await asyncio.wait_for(gone.wait(), interval)
            except TimeoutError:
                interval = min(interval * 1.5, _MAX_INTERVAL)
        return False
