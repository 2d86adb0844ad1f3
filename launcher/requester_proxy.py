"""The requester agent's TCP proxy and its SPI resource ``/v1/proxy/config``, as upstream's requester has them.

Upstream's requester grew a TCP proxy: it listens on the proxy port (8082 by
default) only once someone has told it, through ``PUT /v1/proxy/config`` on
the SPI port, which backend (``{"address": ..., "port": ...}``) to forward
every connection to; the target is set once for the life of the process.
The resource's semantics, as upstream defines them:

- ``GET``: 200 with the target as JSON, or 404 ``proxy not configured``;
- ``PUT``: 400 for a body that is not a JSON object, an empty ``address`` or
  a port outside 1-65535; 200 once the listener is up (the answer means the
  proxy accepts connections); the same target again is 200 (a client that
  lost the first answer may retry), a different one 409; 500 when the
  listener cannot start (for every PUT, not only the first);
- any other method: 405.

Nothing in FMA's controllers calls it today; it is here so that a deployment
built for upstream's requester finds the same API on ours.

``parse_target`` is pure; ``TcpProxy`` owns the listener (asyncio streams,
one task pair per connection); ``install`` adds the routes to the SPI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import fastapi
import pydantic
from fastapi import responses

from crds import errors as crds_errors
from crds import strict_json

__all__ = ["DEFAULT_PORT", "BadTarget", "ProxyTarget", "TcpProxy", "install", "parse_target"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8082
"""Upstream's default proxy port."""
PATH = "/v1/proxy/config"
_MAX_BODY = 64 * 1024
_CHUNK = 64 * 1024


class ProxyTarget(pydantic.BaseModel):
    """Where the proxy forwards every connection."""

    model_config = pydantic.ConfigDict(frozen=True)

    address: str
    port: int

    def authority(self) -> str:
        """``host:port``, with an IPv6 host in brackets."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


class BadTarget(ValueError):
    """The PUT body does not name a usable target; the message says why."""


def parse_target(body: bytes) -> ProxyTarget:
    """The target in a PUT body; raises ``BadTarget`` naming the field (pure).

    Unknown members are ignored, as Go's JSON decoding does upstream; the
    JSON itself must be strict (``crds.strict_json``: no NaN, no lone
    surrogates).  The SPI's body guard leaves this path to us, so a bad body
    is upstream's 400, not the guard's 422.
    """
    try:
        document = strict_json.loads(body)
    except crds_errors.MalformedJson as exc:
        raise BadTarget(f"failed to parse JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadTarget(f"the body must be a JSON object, got {type(document).__name__}")
    address = document.get("address", "")
    port = document.get("port", 0)
    if not isinstance(address, str):
        raise BadTarget(f"address must be a string, got {address!r}")
    if not address:
        raise BadTarget("address is required")
    if isinstance(port, bool) or not isinstance(port, int):
        raise BadTarget(f"port must be an integer, got {port!r}")
    if not 1 <= port <= 65535:
        raise BadTarget(f"invalid port {port!r}: must be 1-65535")
    return ProxyTarget(address=address, port=port)


class TcpProxy:
    """A TCP forwarder that starts listening on ``host:port`` when it is first configured."""

    def __init__(self, host: str, port: int, dial_timeout: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._dial_timeout = dial_timeout
        self._lock = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self.target: ProxyTarget | None = None
        """The configured target, or None."""
        self.start_error: str | None = None
        """Why the listener could not start, once it was tried and failed."""

    async def configure(self, target: ProxyTarget) -> tuple[int, str]:
        """Apply a PUT: returns the HTTP status and message (see the module docstring)."""
        async with self._lock:
            if self.target is not None and self.target != target:
                return 409, "proxy already configured"
            if self.target is None:
                self.target = target
                try:
                    self._server = await asyncio.start_server(self._serve, self._host, self._port)
                except OSError as exc:
                    self.start_error = f"failed to start proxy listener on port {self._port}: {exc}"
                    logger.error("the proxy listener did not start", extra={"port": self._port, "error": str(exc)})
                else:
                    logger.info("proxy listening", extra={"port": self._port, "target": target.authority()})
            if self.start_error is not None:
                return 500, f"proxy failed to start: {self.start_error}"
            return 200, f"configured proxy to: {target.authority()}"

    async def close(self) -> None:
        """Stop listening (connections in flight end with their peers)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        target = self.target
        assert target is not None  # the listener exists only once a target is set
        try:
            backend_reader, backend_writer = await asyncio.wait_for(
                asyncio.open_connection(target.address, target.port), self._dial_timeout
            )
        except (OSError, TimeoutError) as exc:
            logger.warning("proxy could not reach its target", extra={"target": target.authority(), "error": str(exc)})
            client_writer.close()
            return
        try:
            await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))
        finally:
            for writer in (backend_writer, client_writer):
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (a half-close: the other direction goes on)."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, OSError):
        writer.close()  # either peer went away: end the other direction too


async def _body(request: fastapi.Request) -> bytes | None:
    """The body, or None when it is larger than any target needs."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def install(app: fastapi.FastAPI, proxy: TcpProxy) -> None:
    """Add ``GET`` and ``PUT /v1/proxy/config`` to the SPI app (other methods get 405 from the router)."""

    @app.get(PATH, response_model=None)
    async def get_proxy_config() -> responses.JSONResponse | responses.PlainTextResponse:
        if proxy.target is None:
            return responses.PlainTextResponse("proxy not configured\n", status_code=404)
        return responses.JSONResponse(proxy.target.model_dump())

    @app.put(PATH)
    async def put_proxy_config(request: fastapi.Request) -> responses.PlainTextResponse:
        body = await _body(request)
        if body is None:
            return responses.PlainTextResponse(f"the body is larger than {_MAX_BODY} bytes\n", status_code=413)
        try:
            target = parse_target(body)
        except BadTarget as exc:
            return responses.PlainTextResponse(f"{exc}\n", status_code=400)
        status, message = await proxy.configure(target)
        return responses.PlainTextResponse(f"{message}\n", status_code=status)
