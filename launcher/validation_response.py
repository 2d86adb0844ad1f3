"""The 422 answer to a body that fails validation, safe for any input bytes.

FastAPI's own handler echoes each error's ``input`` through
``jsonable_encoder``, which decodes ``bytes`` as UTF-8: a non-JSON body
(say ``Content-Type: text/plain``) that is not valid UTF-8 then turns a 422
into a 500 (found by the property-based fuzz tests).  This handler answers
the same ``{"detail": [...]}`` shape, with such inputs decoded leniently.
"""

from __future__ import annotations

from typing import Any

import fastapi
from fastapi import encoders, exceptions, responses

__all__ = ["install", "printable"]


def printable(value: Any) -> Any:
    """``value`` with every ``bytes`` inside decoded as UTF-8, undecodable bytes replaced (pure)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


async def _invalid_request(_: fastapi.Request, exc: Exception) -> responses.JSONResponse:
    assert isinstance(exc, exceptions.RequestValidationError)  # registered for this class only
    return responses.JSONResponse({"detail": encoders.jsonable_encoder(printable(exc.errors()))}, status_code=422)


def install(app: fastapi.FastAPI) -> None:
    """Answer request validation errors on ``app`` with the lenient 422."""
    app.add_exception_handler(exceptions.RequestValidationError, _invalid_request)
