"""Errors of simnode, the simulated kubelet.

    SimnodeError
    ├── PodConfigError           a Pod cannot start as configured (missing ConfigMap
    │                            key, unsupported feature, ...); it stays Pending and
    │                            the message goes into its status and an Event
    │   └── InsufficientGpus     the node has fewer free GPUs than a container asks for
    └── VolumeNotReady           a volume's source is not there yet; retried later

A ``PodConfigError`` is the Pod's problem, never simnode's: the Pod runner
reports it and keeps going.  Failed API calls raise ``kube.errors`` (simnode
talks to the apiserver through ``kube.Client``, like every other process).
"""

from __future__ import annotations

__all__ = [
    "InsufficientGpus",
    "PodConfigError",
    "SimnodeError",
    "VolumeNotReady",
]


class SimnodeError(Exception):
    """Base of every simnode error."""


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
