"""Errors of ``kubectl fma``: each one is a message for the operator and an exit status.

    FmactlError                 exit 1, message printed to stderr
    ├── ClusterUnreachable      no kubeconfig, or the apiserver did not answer
    ├── CrdsMissing             the FMA CustomResourceDefinitions are not installed
    ├── PodNotFound             ``explain`` was given a Pod that does not exist
    └── NotFmaPod               ``explain`` was given a Pod that is not an FMA requester

The CLI catches ``FmactlError`` only; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["ClusterUnreachable", "CrdsMissing", "FmactlError", "NotFmaPod", "PodNotFound"]


class FmactlError(Exception):
    """A problem the operator can act on; the message says what and where."""

    exit_code = 1


class ClusterUnreachable(FmactlError):
    """No usable kubeconfig, or the apiserver could not be reached."""


class CrdsMissing(FmactlError):
    """The FMA custom resources are not served by this cluster."""


class PodNotFound(FmactlError):
    """The named Pod does not exist in the namespace."""


class NotFmaPod(FmactlError):
    """The named Pod is not a server-requesting Pod of FMA."""
