"""Errors of the webhook.

    WebhookError
    ├── Denial            the Pod must not be admitted; ``message`` is shown to the
    │                     user verbatim by the apiserver
    └── MalformedReview   the request body is not an AdmissionReview v1 we can read
                          (too large, not JSON, wrong shape); still answered with an
                          AdmissionReview that echoes the uid when one can be found

Both are statements about input: they become ``allowed: false`` answers and
are never retried by us.  Anything else raised while handling a request is a
bug; the request handler answers it with ``allowed: false`` and logs it.
"""

from __future__ import annotations

__all__ = ["Denial", "MalformedReview", "WebhookError"]


class WebhookError(Exception):
    """Root of the errors this package raises."""


class Denial(WebhookError):
    """The admitted object is invalid for FMA; the message says what to fix."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class MalformedReview(WebhookError):
    """The request body could not be read as an AdmissionReview v1."""
