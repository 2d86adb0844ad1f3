"""Decimal port numbers carried in Pod annotations (``admin-port``, ``server-port``).

Both values are pasted verbatim into URLs (docs/protocol.md, "Annotations" and
"Requester SPI"), so only plain decimal numbers in 1..65535 are accepted; a
named port or ``+80`` is an error.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from crds import errors, keys, names

__all__ = ["admin_port", "format_port", "parse_port"]

_MAX_PORT = 65535


def parse_port(key: str, value: str) -> int:
    """Return the port in ``value``; raise ``errors.InvalidAnnotation`` naming ``key`` otherwise."""
    if not value.isascii() or not value.isdigit():
        raise errors.InvalidAnnotation(key, value, "a port must be a decimal number")
    port = int(value)
    if not 1 <= port <= _MAX_PORT:
        raise errors.InvalidAnnotation(key, value, "a port must be in 1..65535")
    return port


def format_port(port: int) -> str:
    """Return ``port`` as the decimal annotation value; raise ``ValueError`` outside 1..65535."""
    if not 1 <= port <= _MAX_PORT:
        raise ValueError(f"port {port!r} is outside 1..65535")
    return str(port)


def admin_port(annotations: Mapping[str, str] | None) -> int:
    """Return a requester's SPI port: its ``admin-port`` annotation, or 8081 when absent."""
    value = (annotations or {}).get(keys.ADMIN_PORT_ANNOTATION)
    if value is None:
        return names.ADMIN_PORT_DEFAULT
    return parse_port(keys.ADMIN_PORT_ANNOTATION, value)
