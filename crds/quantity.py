"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``) as exact numbers.

LauncherPopulationPolicy ranges compare node allocatable amounts against
``min``/``max`` bounds (docs/api.md, "LauncherPopulationPolicy"), and the model checks
``min <= max``.  Quantities are compared as exact fractions so that ``1Gi`` and
``1073741824`` are equal and ``100m`` and ``0.1`` are too; floats would make such
comparisons depend on rounding.

Pure; no I/O.
"""

from __future__ import annotations

import fractions
import re

__all__ = ["PATTERN", "parse"]

PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
"""The accepted syntax; the generated CRD schema uses the same pattern for string quantities."""

_SYNTAX = re.compile(PATTERN)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse(value: int | str) -> fractions.Fraction:
    """Return the exact value of a quantity; raise ``ValueError`` naming ``value`` if it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"quantity {value!r} must be an integer or a string")
    if isinstance(value, int):
        return fractions.Fraction(value)
    match = _SYNTAX.match(value)
    if match is None:
        raise ValueError(f"quantity {value!r} does not match {PATTERN!r}")
    suffix = match.group(3) or ""
    number = value[: len(value) - len(suffix)]
    amount = fractions.Fraction(number)
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix in _DECIMAL:
        return amount * fractions.Fraction(10) ** _DECIMAL[suffix]
    if suffix:
        return amount * fractions.Fraction(10) ** int(suffix[1:])
    return amount
