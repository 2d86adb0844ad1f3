"""Expectations: what the populator just wrote and is waiting to see in its cache.

See docs/populator.md, "How it works", step 1.

After creating or deleting launchers for a pair, the populator's cache lags
the apiserver for a moment.  Planning again from that cache would create the
same launchers twice.  So the pair remembers the exact UIDs it created and
deleted; its next plan waits until the cache shows all of them (created UIDs
present, deleted UIDs absent or terminating), for at most the expectation
timeout (``--expectation-timeout``, 5 s), after which the populator lists the
pair's Pods directly instead of trusting the cache.

The store is the one piece of in-memory state of the populator; losing it
(restart) is safe because a fresh process starts with synced caches.
Thread-safe; the clock is injected.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Expectations", "Pending", "seen"]

P = TypeVar("P", bound=Hashable)


@dataclasses.dataclass(frozen=True)
class Pending:
    """UIDs one pair waits to see, and until when it waits."""

    created: frozenset[str]
    deleted: frozenset[str]
    deadline: float


def seen(pending: Pending, pods: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``pods`` (UID → Pod, from the cache) reflect every write in ``pending`` (pure)."""
    if any(uid not in pods for uid in pending.created):
        return False
    return all(uid not in pods or (pods[uid].get("metadata") or {}).get("deletionTimestamp") for uid in pending.deleted)


class Expectations(Generic[P]):
    """Per-pair pending writes.  Thread-safe."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[P, Pending] = {}

    def expect(self, pair: P, *, created: set[str], deleted: set[str]) -> None:
        """Record writes for ``pair``; the deadline restarts at now + timeout."""
        if not created and not deleted:
            return
        with self._lock:
            old = self._pending.get(pair)
            self._pending[pair] = Pending(
                created=frozenset(created) | (old.created if old else frozenset()),
                deleted=frozenset(deleted) | (old.deleted if old else frozenset()),
                deadline=self._clock() + self._timeout,
            )

    def get(self, pair: P) -> Pending | None:
        """The pending writes of ``pair``, or None."""
        with self._lock:
            return self._pending.get(pair)

    def remaining(self, pending: Pending) -> float:
        """Seconds until ``pending`` times out (<= 0 once it has)."""
        return pending.deadline - self._clock()

    def clear(self, pair: P) -> None:
        """Forget ``pair``'s pending writes (satisfied, or timed out and listed directly)."""
        with self._lock:
            self._pending.pop(pair, None)
