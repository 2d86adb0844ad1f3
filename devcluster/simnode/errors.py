"""Errors of simnode, the simulated kubelet.

    SimnodeError
    ├── ApiError                 the apiserver answered with an error status
    │   ├── NotFound             404: the object does not exist (any more)
    │   ├── Conflict             409: already exists, or a stale resourceVersion
    │   ├── Gone                 410: a watch's resourceVersion is too old; re-list
    │   └── Unreachable          no answer at all (connection refused, reset, timeout)
    ├── PodConfigError           a Pod cannot start as configured (missing ConfigMap
    │                            key, unsupported feature, ...); it stays Pending and
    │                            the message goes into its status and an Event
    │   └── InsufficientGpus     the node has fewer free GPUs than a container asks for
    └── VolumeNotReady           a volume's source is not there yet; retried later

A ``PodConfigError`` is the Pod's problem, never simnode's: the Pod runner
reports it and keeps going.  ``ApiError`` wraps the client library's
exception as its cause, so callers do not depend on the library.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "Conflict",
    "Gone",
    "InsufficientGpus",
    "NotFound",
    "PodConfigError",
    "SimnodeError",
    "Unreachable",
    "VolumeNotReady",
]


class SimnodeError(Exception):
    """Base of every simnode error."""


class ApiError(SimnodeError):
    """The apiserver answered a request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class NotFound(ApiError):
    """The object does not exist."""


class Conflict(ApiError):
    """The object already exists, or the update raced with another writer."""


class Gone(ApiError):
    """The watch's resourceVersion expired; the caller must list again."""


class Unreachable(ApiError):
    """The apiserver could not be reached; the request may be retried."""


class PodConfigError(SimnodeError):
    """The Pod cannot be started as configured; the message is shown on the Pod."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class InsufficientGpus(PodConfigError):
    """A container asks for more GPUs than the node has free."""


class VolumeNotReady(SimnodeError):
    """A volume source (ConfigMap, Secret, token) is not available yet."""
