"""The requester agent's two HTTP faces: the SPI the controller calls and the kubelet's probe.

The readiness flag is the only state; it starts false (docs/protocol.md, "Requester SPI") and
is flipped by the controller's relay.  Both apps are served by one uvicorn
server on two sockets; ``PortRouter`` sends each request to the app of the
port it arrived on, so ``/ready`` is not reachable on the SPI port and the
SPI not on the probe port.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Annotated, Protocol

import fastapi
from fastapi import responses

from launcher import errors, request_guard, validation_response

__all__ = ["MAX_BODY_BYTES", "MemoryProbe", "PortRouter", "Readiness", "create_probes_app", "create_spi_app"]

logger = logging.getLogger(__name__)


class Readiness:
    """Whether the real server behind this requester is ready; starts false."""

    def __init__(self) -> None:
        self.ready = False


class MemoryProbe(Protocol):
    """Measures accelerator memory in use, in MiB per UUID."""

    def __call__(self, uuids: list[str]) -> dict[str, int]:
        """Measure now; raise ``LauncherError`` with a message when it cannot."""
        ...


def _ok() -> responses.PlainTextResponse:
    return responses.PlainTextResponse("OK\n")


MAX_BODY_BYTES = 1024 * 1024
"""Largest accepted request body (a ``/v1/set-log`` chunk included)."""


def _duplicate(uuids: list[str]) -> str | None:
    seen: set[str] = set()
    for uuid in uuids:
        if uuid in seen:
            return uuid
        seen.add(uuid)
    return None


def create_spi_app(
    readiness: Readiness,
    uuids: list[str],
    memory: MemoryProbe,
    log_sink: Callable[[bytes], None] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> fastapi.FastAPI:
    """The SPI (``SPI_PORT``): GPU UUIDs, memory usage, readiness relay, log chunks.

    Bodies go through ``request_guard.BodyGuard`` (413 over ``max_body_bytes``).
    A discovered GPU list that names a GPU twice is not reported as a list:
    the accelerators endpoint answers 500 saying so, since an instance given
    the same GPU twice would see ``CUDA_VISIBLE_DEVICES=1,1``.
    """
    app = fastapi.FastAPI(title="FMA requester SPI")
    app.add_middleware(
        request_guard.BodyGuard, limit=max_body_bytes, raw_paths=frozenset({"/v1/set-log", "/v1/proxy/config"})
    )
    validation_response.install(app)
    twice = _duplicate(uuids)
    accepted = 0
    sink = log_sink or _stdout_sink

    @app.get("/v1/dual-pods/accelerators", response_model=None)
    async def accelerators() -> responses.JSONResponse | responses.PlainTextResponse:
        if not uuids:
            return responses.PlainTextResponse("no GPUs found\n", status_code=500)
        if twice is not None:
            return responses.PlainTextResponse(f"GPU {twice!r} was discovered twice\n", status_code=500)
        return responses.JSONResponse(uuids)

    @app.get("/v1/dual-pods/accelerator-memory-usage", response_model=None)
    async def accelerator_memory_usage() -> responses.JSONResponse | responses.PlainTextResponse:
        try:
            return responses.JSONResponse(memory(uuids))
        except errors.LauncherError as exc:
            return responses.PlainTextResponse(f"{exc}\n", status_code=500)

    @app.post("/v1/become-ready")
    async def become_ready() -> responses.PlainTextResponse:
        readiness.ready = True
        logger.info("became ready")
        return _ok()

    @app.post("/v1/become-unready")
    async def become_unready() -> responses.PlainTextResponse:
        readiness.ready = False
        logger.info("became unready")
        return _ok()

    @app.post("/v1/set-log")
    async def set_log(
        request: fastapi.Request, start_pos: Annotated[str | None, fastapi.Query(alias="startPos")] = None
    ) -> responses.PlainTextResponse:
        nonlocal accepted
        if start_pos is None or not start_pos.isdigit():
            return responses.PlainTextResponse(f"startPos must be a non-negative integer, got {start_pos!r}\n", 400)
        start = int(start_pos)
        if start > accepted:
            return responses.PlainTextResponse(
                f"startPos {start} is beyond the {accepted} bytes accepted so far\n", 400
            )
        chunk = await request.body()
        new = chunk[accepted - start :]
        if new:
            try:
                sink(new)
            except OSError as exc:
                return responses.PlainTextResponse(f"writing the log failed: {exc}\n", 500)
            accepted += len(new)
        return responses.PlainTextResponse(f"accepted {len(new)} new bytes; {accepted} in total\n")

    return app


def _stdout_sink(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def create_probes_app(readiness: Readiness) -> fastapi.FastAPI:
    """The probe port (``PROBES_PORT``): ``GET /ready``."""
    app = fastapi.FastAPI(title="FMA requester probes")
    validation_response.install(app)

    @app.get("/ready")
    async def ready() -> responses.PlainTextResponse:
        if readiness.ready:
            return _ok()
        return responses.PlainTextResponse("Service Unavailable\n", status_code=503)

    return app


class PortRouter:
    """An ASGI app that picks the app by the local port of the connection."""

    def __init__(self, by_port: dict[int, request_guard.App]) -> None:
        self._by_port = by_port

    async def __call__(
        self, scope: request_guard.Scope, receive: request_guard.Receive, send: request_guard.Send
    ) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        server = scope.get("server")
        app = self._by_port.get(int(server[1])) if server else None
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Not Found\n"})
            return
        await app(scope, receive, send)
