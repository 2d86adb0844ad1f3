"""Kubernetes resource quantities ("500m", "2Gi", "1e3") as exact decimals.

Needed where simnode reads resources itself: GPU limits and the downward
API's ``resourceFieldRef``.  Pure; no I/O.
"""

from __future__ import annotations

import decimal
import math
import re

__all__ = ["parse", "to_downward_value"]

_SUFFIXES: dict[str, decimal.Decimal] = {
    "": decimal.Decimal(1),
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
    "k": decimal.Decimal("1e3"),
    "M": decimal.Decimal("1e6"),
    "G": decimal.Decimal("1e9"),
    "T": decimal.Decimal("1e12"),
    "P": decimal.Decimal("1e15"),
    "E": decimal.Decimal("1e18"),
    "Ki": decimal.Decimal(2**10),
    "Mi": decimal.Decimal(2**20),
    "Gi": decimal.Decimal(2**30),
    "Ti": decimal.Decimal(2**40),
    "Pi": decimal.Decimal(2**50),
    "Ei": decimal.Decimal(2**60),
}
_PATTERN = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")


def parse(text: str | int | float) -> decimal.Decimal:
    """Parse a quantity; raises ``ValueError`` naming the bad text."""
    if isinstance(text, int | float):
        return decimal.Decimal(str(text))
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"invalid quantity {text!r}")
    number, exponent, suffix = match.groups()
    value = decimal.Decimal(number)
    if exponent:
        return value * decimal.Decimal(10) ** int(exponent[1:])
    return value * _SUFFIXES[suffix or ""]


def to_downward_value(resource: str, value: decimal.Decimal, divisor: decimal.Decimal) -> str:
    """The string the downward API exposes for ``resource`` (e.g. ``limits.cpu``).

    Like the kubelet, CPU is rounded up in units of ``divisor`` (at least
    milli-precision) and every other resource is rounded up too.
    """
    if divisor <= 0:
        raise ValueError(f"divisor must be positive, got {divisor!r}")
    if resource.endswith("cpu"):
        milli = math.ceil(value * 1000)
        div_milli = math.ceil(divisor * 1000)
        return str(math.ceil(decimal.Decimal(milli) / decimal.Decimal(div_milli)))
    return str(math.ceil(value / divisor))
