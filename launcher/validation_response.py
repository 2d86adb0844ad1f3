"""The 422 answer to a body that fails validation, safe for any input.

FastAPI's own handler echoes each error's ``input`` through
``jsonable_encoder`` and then encodes the answer as UTF-8 JSON without NaN.
Three kinds of input break that and turn a 422 into a 500: ``bytes`` that are
not UTF-8 (a non-JSON body, found by the fuzz tests), strings holding a lone
surrogate, and non-finite floats (issue 15).  ``crds.strict_json`` keeps the
last two out of request bodies, but a validation error can also come from a
path or query value, so this handler makes every echoed value encodable:
bytes decoded leniently, surrogates written as ``\\udc80`` escapes, NaN and
Infinity as strings.  If the answer still cannot be encoded, the echoed
inputs are dropped rather than the answer.
"""

from __future__ import annotations

import json
import math
from typing import Any

import fastapi
from fastapi import encoders, exceptions, responses

__all__ = ["install", "printable"]


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def printable(value: Any) -> Any:
    """``value`` made encodable as strict UTF-8 JSON (pure).

    Bytes are decoded as UTF-8 with undecodable bytes replaced, lone
    surrogates become backslash escapes, non-finite floats become strings.
    """
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


async def _invalid_request(_: fastapi.Request, exc: Exception) -> responses.Response:
    assert isinstance(exc, exceptions.RequestValidationError)  # registered for this class only
    detail = printable(encoders.jsonable_encoder(printable(exc.errors())))
    try:
        body = json.dumps({"detail": detail}, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        stripped = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in detail]
        body = json.dumps({"detail": printable(stripped)}, allow_nan=False).encode()
    return responses.Response(body, status_code=422, media_type="application/json")


def install(app: fastapi.FastAPI) -> None:
    """Answer request validation errors on ``app`` with the encodable 422."""
    app.add_exception_handler(exceptions.RequestValidationError, _invalid_request)
