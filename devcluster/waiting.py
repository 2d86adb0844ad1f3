"""Waiting on conditions instead of sleeping.

Tests and the devcluster wait for *something to become true* with a timeout,
never for a fixed time.  ``wait_for`` polls a predicate and, on timeout,
raises with the caller's description and the last value seen, so a failing
test says what it was waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold within the timeout."""


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Exceptions listed in ``ignore`` count as "not yet".  Raises
    ``WaitTimeout`` naming ``what`` and the last result or error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
