"""Errors of the API package: objects and Pod metadata values that do not parse.

    CrdsError
    ├── InvalidObject        a custom resource (a raw dict from the apiserver or a file)
    │                        fails its model; ``problems`` names each bad field path
    ├── InvalidAnnotation    a structured Pod annotation or label value (binding record,
    │                        status JSON, routing metadata, accelerators, inventory, ports)
    │                        cannot be parsed; ``key`` and ``value`` say which
    └── MalformedJson        a request body is not strict JSON (``strict_json``): bad syntax,
                             NaN or Infinity, a lone surrogate, nesting too deep

All three also derive from ``ValueError``, because they are statements about input,
never about the environment: retrying the same input gives the same answer, so
callers report them (status, Events) instead of backing off and retrying.
Messages show the offending value with ``!r``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CrdsError", "InvalidAnnotation", "InvalidObject", "MalformedJson", "Problem"]


class CrdsError(Exception):
    """Root of the errors this package raises."""


Problem = tuple[str, str]
"""One validation problem: (field path such as ``spec.countForLauncher[1]``, message)."""


class InvalidObject(CrdsError, ValueError):
    """A custom resource does not satisfy its model.

    ``kind`` and ``ref`` (``namespace/name``, or ``""`` when unknown) identify the
    object; ``problems`` lists ``(path, message)`` pairs, paths in JSON names.
    """

    def __init__(self, kind: str, ref: str, problems: Sequence[Problem]) -> None:
        self.kind = kind
        self.ref = ref
        self.problems: tuple[Problem, ...] = tuple(problems)
        where = f"{kind} {ref}" if ref else kind
        details = "; ".join(f"{path}: {message}" if path else message for path, message in self.problems)
        super().__init__(f"invalid {where}: {details}")


class InvalidAnnotation(CrdsError, ValueError):
    """A Pod annotation (or label) value does not have the contracted format."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"invalid value {value!r} for {key!r}: {reason}")


class MalformedJson(CrdsError, ValueError):
    """A body that is not strict JSON; the message says what is wrong and where."""
