"""Errors of the development cluster.

    DevClusterError
    ├── BinariesMissing      a binary is not built (and cannot be built here)
    ├── AlreadyRunning       ``up`` found a cluster of this state directory running
    ├── NotRunning           an operation needs a cluster and none runs
    ├── ComponentFailed      a component exited or did not become ready in time
    └── HelmFailed           a helm command exited non-zero (its output attached)

Every message says what happened and what to do about it.
"""

from __future__ import annotations

__all__ = ["AlreadyRunning", "BinariesMissing", "ComponentFailed", "DevClusterError", "HelmFailed", "NotRunning"]


class DevClusterError(Exception):
    """Base of every development-cluster error."""


class BinariesMissing(DevClusterError):
    """A control-plane binary is missing."""


class AlreadyRunning(DevClusterError):
    """A cluster already runs from this state directory."""


class NotRunning(DevClusterError):
    """No cluster runs from this state directory."""


class ComponentFailed(DevClusterError):
    """A component exited early or did not become ready in time."""


class HelmFailed(DevClusterError):
    """A helm command failed; the message holds its output."""
