"""Errors of the certificates package.

    CertsError
    ├── InvalidMaterial      stored PEM data does not parse, or a key does not
    │                        match its certificate (``name`` says which item)
    ├── InvalidPolicy        rotation settings contradict each other
    ├── StorageError         the store (directory or Secret) could not be read
    │   │                    or written
    │   └── ConcurrentUpdate the Secret changed under us (retry from a fresh read)
    └── InjectionFailed      a caBundle could not be written into a target object

``InvalidMaterial`` and ``InvalidPolicy`` are statements about input and are
never retried.  ``ConcurrentUpdate`` and ``InjectionFailed`` are worth a retry
from fresh state: rotation is level-triggered, so running it again converges.
"""

from __future__ import annotations

__all__ = [
    "CertsError",
    "ConcurrentUpdate",
    "InjectionFailed",
    "InvalidMaterial",
    "InvalidPolicy",
    "StorageError",
]


class CertsError(Exception):
    """Root of the errors this package raises."""


class InvalidMaterial(CertsError, ValueError):
    """Stored certificate or key data is unusable."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name!r}: {reason}")


class InvalidPolicy(CertsError, ValueError):
    """The rotation policy is inconsistent (for example a fraction outside 0..1)."""


class StorageError(CertsError):
    """Reading or writing the certificate store failed."""


class ConcurrentUpdate(StorageError):
    """The Secret store was changed by someone else between our read and our write."""


class InjectionFailed(CertsError):
    """A caBundle could not be written into a target object."""
