"""Errors of the Kubernetes adapter, independent of the client library.

    KubeError
    ├── ConfigError              no usable kubeconfig or in-cluster credentials
    ├── TransportError           the apiserver could not be reached (retryable)
    └── APIError                 the apiserver answered with a failure Status
        ├── BadRequest           400
        ├── Unauthorized         401
        ├── Forbidden            403
        ├── NotFound             404
        ├── Conflict             409 (resourceVersion or precondition mismatch)
        │   └── AlreadyExists    409 with reason AlreadyExists
        ├── Gone                 410 (a watch's resourceVersion is too old)
        ├── Invalid              422 (validation or admission denial)
        ├── TooManyRequests      429 (retryable)
        └── ServerError          5xx (retryable)

Callers decide retries from the class: ``TransportError``,
``TooManyRequests``, ``ServerError`` and ``Conflict`` (after a fresh read) are
worth retrying; the others are not.  Each ``APIError`` keeps the Status
``reason`` and ``message`` so that the message can be shown to users.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "APIError",
    "AlreadyExists",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "from_status",
]


class KubeError(Exception):
    """Base of every error the adapter raises."""


class ConfigError(KubeError):
    """No usable client configuration."""


class TransportError(KubeError):
    """The apiserver could not be reached or the connection broke."""


class APIError(KubeError):
    """The apiserver answered with a failure."""

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}


class BadRequest(APIError):
    """400."""


class Unauthorized(APIError):
    """401."""


class Forbidden(APIError):
    """403."""


class NotFound(APIError):
    """404."""


class Conflict(APIError):
    """409: the object changed (resourceVersion/precondition) or already exists."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists."""


class Gone(APIError):
    """410: the requested resourceVersion is no longer available."""


class Invalid(APIError):
    """422: the object is invalid or an admission policy denied it."""


class TooManyRequests(APIError):
    """429."""


class ServerError(APIError):
    """5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def from_status(status: int, body: bytes | str | dict[str, Any] | None) -> APIError:
    """Build the matching ``APIError`` from an HTTP status and a Status body (pure)."""
    parsed: dict[str, Any] = {}
    if isinstance(body, dict):
        parsed = body
    elif body:
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            parsed = loaded
        else:
            text = body.decode(errors="replace") if isinstance(body, bytes) else body
            parsed = {"message": text.strip()[:500]}
    reason = str(parsed.get("reason") or "")
    message = str(parsed.get("message") or "")
    code = int(parsed.get("code") or status)
    details = parsed.get("details") if isinstance(parsed.get("details"), dict) else None
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(code, reason, message, details)
    cls = _BY_STATUS.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else APIError
    return cls(code, reason or "Unknown", message, details)
