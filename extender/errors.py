"""Errors of the scheduler extender.

    ExtenderError
    ├── BadExtenderArgs     the scheduler's request body is not a valid ExtenderArgs
    │                       (HTTP 400 with the message; the scheduler treats it as an
    │                       error for that Pod and, the extender being ignorable, goes on)
    ├── BadSchedulerConfig  the packaged scheduler configuration lacks the extender entry
    │                       or its URL placeholder (a packaging bug, found by the tests)
    └── NotSynced           the watch caches have not loaded their first list in time

``BadExtenderArgs`` is about input and is never retried; the others are about
the environment.  Messages show the offending value with ``!r``.
"""

from __future__ import annotations

__all__ = ["BadExtenderArgs", "BadSchedulerConfig", "ExtenderError", "NotSynced"]


class ExtenderError(Exception):
    """Root of the errors this package raises."""


class BadExtenderArgs(ExtenderError, ValueError):
    """A filter or prioritize body that does not parse; ``str()`` is the message for the 400 answer."""


class BadSchedulerConfig(ExtenderError):
    """The packaged KubeSchedulerConfiguration is not what ``scheduler_config.render`` expects."""


class NotSynced(ExtenderError):
    """The cluster model's caches did not finish their first list within the timeout."""
