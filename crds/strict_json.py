"""Strict JSON for request bodies: the one parser every FMA HTTP surface uses.

Python's ``json`` module accepts more than JSON: ``NaN``, ``Infinity`` and
``-Infinity`` literals, lone UTF-16 surrogates (``"\\udc80"``, which no UTF-8
encoder can write back), and nesting until the interpreter's recursion limit
breaks (``RecursionError``).  Each of those once turned a hostile body into a
500 somewhere far from the parser (issue 15).  This module refuses them all
where the bytes are read, with a message that says what is wrong and where,
so that every app answers a 4xx naming the problem and nothing downstream
ever holds a value it cannot encode.

It lives in ``crds`` because the webhook, the extender and the node agents
must not import each other, and ``crds`` is the package they all share.

Pure; no I/O.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pydantic_core

from crds import errors

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 201
"""Deepest accepted nesting of arrays and objects (the limit of pydantic-core's parser); real bodies stay far below."""

# A number literal that overflows a double has an exponent of three or more digits, or an
# integer part of more than 200 digits (a two-digit exponent adds at most 99).  The body is
# mapped (in C) to digits "0", exponent markers "e", signs "+" and blanks, and only a body
# holding such a shape (in a string too: that costs a walk, never a wrong answer) is walked.
_SHAPE = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("e") if b in b"eE" else ord("+") if b in b"+-" else ord(" ")
    for b in range(256)
)
_HUGE_SHAPES = (b"0e000", b"0e+000", b"0" * 200)
_POSITION = re.compile(r"line (\d+) column (\d+)")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _hint(text: str, message: str) -> str:
    """What the parser's ``message`` means, when the input at its position is a known non-JSON literal."""
    if "recursion limit" in message:
        return f"nested deeper than {MAX_DEPTH} levels"
    if "surrogate" in message or ("hex escape" in message and _SURROGATE_ESCAPE.search(text)):
        return "a string holds a lone UTF-16 surrogate, which cannot be encoded"
    found = _POSITION.search(message)
    if found is None:
        return ""
    lines = text.splitlines()
    line, column = int(found.group(1)), int(found.group(2))
    if not 1 <= line <= len(lines):
        return ""
    rest = lines[line - 1][max(column - 2, 0) :]
    if re.match(r"-?(NaN|Infinity)|.(NaN|Infinity)", rest):
        return "NaN and Infinity are not JSON numbers"
    return ""


def _has_infinity(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(data: bytes | str) -> Any:
    """Parse ``data`` as strict JSON; raise ``MalformedJson`` naming the problem and its position.

    Refused: invalid syntax or UTF-8, ``NaN``/``Infinity`` literals and numbers
    too large for a double, lone surrogates (escaped or raw), nesting deeper
    than ``MAX_DEPTH``.  Duplicate keys keep the last value, as everywhere.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        text = raw.decode("utf-8", "replace")
        hint = _hint(text, str(exc))
        raise errors.MalformedJson(f"malformed JSON: {exc}" + (f" ({hint})" if hint else "")) from None
    shape = raw.translate(_SHAPE)
    if any(h in shape for h in _HUGE_SHAPES) and _has_infinity(value):
        raise errors.MalformedJson("malformed JSON: a number is too large for a double (it would be Infinity)")
    return value
