"""Errors of the node agents (launcher, requester agent, engine simulator).

    LauncherError
    ├── InvalidRequest        the caller's input is wrong (HTTP 400); nothing changed
    │   ├── InvalidInstanceId     an instance ID that is not a valid label value
    │   ├── UnknownGpu            a GPU UUID the node does not have
    │   └── BadRange              a malformed ``Range`` header
    ├── EnvNotAllowed         an instance environment variable that changes how code is loaded,
    │                         not allowed by the launcher's settings (HTTP 422)
    ├── InstanceExists        a create with an ID already in use (HTTP 409)
    ├── InstanceLimit         the launcher already holds its maximum of instances (HTTP 429)
    ├── InstanceNotFound      no instance has this ID (HTTP 404)
    ├── RangeNotSatisfiable   a log range that starts at or after the end (HTTP 416)
    ├── RevisionGone          a watch cursor outside the event buffer (HTTP 410)
    ├── SpawnFailed           the preloaded parent could not start a child (HTTP 500)
    │   └── EngineUnavailable     the preloaded parent is gone; no instance can start (HTTP 503)
    ├── NvmlUnavailable       NVML (nvidia-ml-py or the driver) cannot be used
    ├── ApiServerError        a call to the apiserver from inside the Pod failed (refused, unreachable, malformed)
    │   └── NotInPod              no in-cluster credentials: not running in a Pod
    ├── GpuDiscoveryFailed    no source could tell which GPUs this Pod has
    ├── InsufficientDeviceMemory  a wake or load finds too little free GPU memory (HTTP 507); nothing moved
    ├── InsufficientHostMemory    a sleep cannot get host memory for the weights (HTTP 507); still awake
    └── WeightsCorrupted      restored weights do not match their checksum (HTTP 500); still asleep

The HTTP layer maps each class to one status code (``http_status``), so the
status follows from the error's meaning and handlers never pick codes ad hoc.
Messages show the offending value with ``!r``.
"""

from __future__ import annotations

__all__ = [
    "ApiServerError",
    "BadRange",
    "EngineUnavailable",
    "EnvNotAllowed",
    "GpuDiscoveryFailed",
    "InstanceExists",
    "InstanceLimit",
    "InstanceNotFound",
    "InsufficientDeviceMemory",
    "InsufficientHostMemory",
    "InvalidInstanceId",
    "InvalidRequest",
    "LauncherError",
    "NotInPod",
    "NvmlUnavailable",
    "RangeNotSatisfiable",
    "RevisionGone",
    "SpawnFailed",
    "UnknownGpu",
    "WeightsCorrupted",
]


class LauncherError(Exception):
    """Base of every node-agent error; ``http_status`` is what an API answers."""

    http_status = 500


class InvalidRequest(LauncherError):
    """The request is malformed; nothing was changed."""

    http_status = 400


class InvalidInstanceId(InvalidRequest):
    """The instance ID is not a valid Kubernetes label value."""


class UnknownGpu(InvalidRequest):
    """A GPU UUID that is not in the node's UUID → index table."""


class BadRange(InvalidRequest):
    """A ``Range`` header that is not ``bytes=START-`` or ``bytes=START-END``."""


class EnvNotAllowed(LauncherError):
    """An ``env_vars`` name that changes how the instance loads code (``LD_PRELOAD`` …), not allowed here."""

    http_status = 422


class InstanceLimit(LauncherError):
    """The launcher already holds as many instances as it may (``--max-instances``)."""

    http_status = 429


class InstanceExists(LauncherError):
    """An instance with this ID already exists."""

    http_status = 409


class InstanceNotFound(LauncherError):
    """No instance has this ID."""

    http_status = 404


class RangeNotSatisfiable(LauncherError):
    """The range starts at or beyond the end of the log; ``total`` is its size."""

    http_status = 416

    def __init__(self, total: int) -> None:
        super().__init__(f"range not satisfiable; the log has {total} bytes")
        self.total = total


class RevisionGone(LauncherError):
    """The requested watch revision is no longer (or not yet) available."""

    http_status = 410


class SpawnFailed(LauncherError):
    """The preloaded parent failed to start an instance process."""


class EngineUnavailable(SpawnFailed):
    """The preloaded parent has exited (or never became ready): nothing can start until a restart."""

    http_status = 503


class NvmlUnavailable(LauncherError):
    """NVML cannot be used here (no nvidia-ml-py, no driver, or no GPU)."""


class ApiServerError(LauncherError):
    """A request to the apiserver failed; ``status`` is its HTTP status when it got one.

    Callers treat it as temporary: the gpu-map read falls through to the next
    source, the Pod publisher retries with back-off.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotInPod(ApiServerError):
    """No in-cluster credentials (``KUBERNETES_SERVICE_HOST``, token and CA): not running in a Pod."""


class GpuDiscoveryFailed(LauncherError):
    """No discovery source produced this Pod's GPU UUIDs."""


class InsufficientDeviceMemory(LauncherError):
    """The devices lack the free memory for the weights; they stay where they were (asleep, intact)."""

    http_status = 507


class InsufficientHostMemory(LauncherError):
    """Host memory for the weights' copy could not be allocated; the engine stays awake."""

    http_status = 507


class WeightsCorrupted(LauncherError):
    """Weights brought back to the devices do not match the checksum taken when they were loaded."""
