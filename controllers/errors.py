"""Errors of the controllers and what they mean for retries.

    ControllerError
    ├── TerminalError        do not retry; the item waits for a new event
    │   └── UserError        a problem in the user's objects: shown in the
    │                        requester's status annotation and as an Event
    └── RetryableError       retry with the item's exponential back-off
        └── EngineHTTPError  a call to a launcher, engine or requester agent failed

Anything else raised by a reconcile is treated as retryable too, and logged
with its traceback by the worker (supervising code).
"""

from __future__ import annotations

__all__ = ["ControllerError", "EngineHTTPError", "RetryableError", "TerminalError", "UserError"]


class ControllerError(Exception):
    """Base of the controllers' own errors."""


class TerminalError(ControllerError):
    """Retrying cannot help; wait for the next change of the inputs."""


class UserError(TerminalError):
    """The user's objects are wrong; the message is shown to the user verbatim."""


class RetryableError(ControllerError):
    """A transient failure; retry with back-off."""


class EngineHTTPError(RetryableError):
    """An HTTP call to a launcher, an engine or a requester agent failed."""

    def __init__(self, message: str, status_code: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code
