"""ASGI guards in front of the node agents' APIs: a body cap with strict JSON, and optional bearer auth.

They sit outside FastAPI so that they cover every route (``/metrics`` and
the OpenAPI pages included) and so that an oversized or malformed body is
refused before any handler or model sees it.  ``BodyGuard`` is the one body
reader of the launcher, the requester agent and the engine simulator: it
caps the size (413) and, for a body FastAPI would read as JSON, parses it
with ``crds.strict_json`` (422 naming the problem: NaN or Infinity, a lone
surrogate, nesting too deep, bad syntax).  ``/health`` and ``/readyz`` stay
open under ``BearerAuth``: they are the liveness and readiness probes.
"""

from __future__ import annotations

import email.message
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from crds import errors as crds_errors
from crds import strict_json

__all__ = ["OPEN_PATHS", "BearerAuth", "BodyGuard", "reads_as_json"]

OPEN_PATHS = frozenset({"/health", "/readyz"})
"""Paths answered without a token: the probes, which say nothing about instances."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _reply(send: Send, status: int, detail: object, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()  # ASCII only: any message can be encoded
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def reads_as_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body with this ``Content-Type`` as JSON: none given, or JSON (pure)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class BodyGuard:
    """Answer 413 to a body over ``limit`` bytes and 422 to a JSON body that is not strict JSON.

    Otherwise the buffered body is handed on unchanged.  Usable as a FastAPI
    middleware (``app.add_middleware(BodyGuard, limit=...)``) or as a wrapper.
    """

    def __init__(self, app: App, limit: int, raw_paths: frozenset[str] = frozenset()) -> None:
        """``raw_paths``: routes that read their body as bytes (size-capped, never parsed here)."""
        self._app = app
        self._limit = limit
        self._raw_paths = raw_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        too_big = f"request body exceeds the limit of {self._limit} bytes"
        content_type: str | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self._limit:
                await _reply(send, 413, too_big)
                return
            if name == b"content-type":
                content_type = value.decode("latin-1")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                await _reply(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and reads_as_json(content_type) and scope.get("path") not in self._raw_paths:
            try:
                strict_json.loads(body)
            except crds_errors.MalformedJson as exc:
                await _reply(send, 422, [{"type": "json_invalid", "loc": ["body"], "msg": str(exc)}])
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


class BearerAuth:
    """Require ``Authorization: Bearer <token>`` everywhere except the probes (``OPEN_PATHS``).

    See docs/launcher.md, "Auth and the token".
    """

    def __init__(self, app: App, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
        if not hmac.compare_digest(given, self._expected):
            await _reply(send, 401, "missing or invalid bearer token", [(b"www-authenticate", b"Bearer")])
            return
        await self._app(scope, receive, send)
