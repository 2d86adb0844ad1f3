"""The controllers' work queue: level-triggered keys, serialized per group.

Items are keys (for example a requester's UID), never events: a reconcile
reads the caches to learn what to do.  Each item belongs to a *group*, and
no two items of one group are handed out at the same time — the dual-pods
controller groups by node, so launcher selection and the sleeper budget of a
node are decided one item at a time (docs/controllers.md, "Per-node serialization"), while different
nodes proceed in parallel.  With one group per item this is the classic
"never two workers on one key" queue.

Semantics (after client-go's rate-limited delaying queue):

* ``add`` makes an item ready now.  An item already waiting — ready or in
  back-off — is not duplicated; one in back-off is pulled forward to now.
* An item added while it is being processed is handed out again after
  ``done``.
* ``add_rate_limited`` re-adds after a per-item exponential back-off
  (``base`` doubling up to ``cap``, 20 s by contract); ``forget`` resets it.
* ``add_after`` schedules an item later (earlier schedules win).
* Within a group the oldest ready item goes first; across groups, the group
  that has waited longest goes first.
* ``shut_down`` wakes every waiting ``get``, which then returns None.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["BackoffPolicy", "GroupedQueue", "QueueObserver"]

G = TypeVar("G")
K = TypeVar("K")


@dataclasses.dataclass(frozen=True)
class BackoffPolicy:
    """Per-item exponential back-off: ``base * 2**failures``, at most ``cap`` seconds."""

    base: float = 0.25
    cap: float = 20.0

    def delay(self, failures: int) -> float:
        """The delay before retry number ``failures`` (0 for the first retry) (pure)."""
        return float(min(self.cap, self.base * (2 ** min(failures, 32))))


class QueueObserver(Protocol):
    """Receives queue measurements (the controllers feed Prometheus with them)."""

    def added(self, group: str) -> None:
        """A new item became pending."""

    def depth(self, group: str, pending: int) -> None:
        """The number of pending items of ``group`` changed."""

    def waited(self, group: str, seconds: float) -> None:
        """An item was handed out after waiting ``seconds``."""

    def worked(self, group: str, seconds: float) -> None:
        """An item was processed for ``seconds``."""

    def retried(self, group: str) -> None:
        """An item was re-added with back-off."""


class _NoObserver:
    def added(self, group: str) -> None:
        return

    def depth(self, group: str, pending: int) -> None:
        return

    def waited(self, group: str, seconds: float) -> None:
        return

    def worked(self, group: str, seconds: float) -> None:
        return

    def retried(self, group: str) -> None:
        return


class GroupedQueue(Generic[G, K]):
    """A delaying, rate-limited work queue that serializes items per group.  Thread-safe."""

    def __init__(
        self,
        *,
        backoff: BackoffPolicy | None = None,
        observer: QueueObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = backoff or BackoffPolicy()
        self._observer: QueueObserver = observer or _NoObserver()
        self._clock = clock
        self._cond = threading.Condition()
        # group -> item -> the time it became pending (insertion order = age)
        self._ready: dict[G, collections.OrderedDict[K, float]] = {}
        # groups with ready items and no item in processing, oldest first
        self._order: collections.OrderedDict[G, None] = collections.OrderedDict()
        self._processing: dict[G, K] = {}
        self._started: dict[tuple[G, K], float] = {}
        self._delayed: list[tuple[float, int, G, K]] = []
        self._due: dict[tuple[G, K], float] = {}
        self._seq = itertools.count()
        self._failures: dict[tuple[G, K], int] = {}
        self._shutting_down = False

    # --- adding ----------------------------------------------------------------------

    def add(self, group: G, item: K) -> None:
        """Make ``item`` ready now (no-op if it is already ready)."""
        with self._cond:
            if self._shutting_down:
                return
            self._due.pop((group, item), None)  # pulled forward; the heap entry goes stale
            self._make_ready(group, item)
            self._cond.notify_all()

    def add_after(self, group: G, item: K, delay: float) -> None:
        """Make ``item`` ready after ``delay`` seconds (an earlier schedule wins)."""
        if delay <= 0:
            self.add(group, item)
            return
        with self._cond:
            if self._shutting_down:
                return
            if item in self._ready.get(group, {}):
                return
            due = self._clock() + delay
            current = self._due.get((group, item))
            if current is not None and current <= due:
                return
            self._due[(group, item)] = due
            heapq.heappush(self._delayed, (due, next(self._seq), group, item))
            self._cond.notify_all()

    def add_rate_limited(self, group: G, item: K) -> float:
        """Re-add ``item`` after its back-off; returns the delay used."""
        with self._cond:
            failures = self._failures.get((group, item), 0)
            self._failures[(group, item)] = failures + 1
        delay = self._backoff.delay(failures)
        self._observer.retried(str(group))
        self.add_after(group, item, delay)
        return delay

    def forget(self, group: G, item: K) -> None:
        """Reset ``item``'s back-off after a success."""
        with self._cond:
            self._failures.pop((group, item), None)

    def failures(self, group: G, item: K) -> int:
        """How many back-offs ``item`` has had since its last ``forget``."""
        with self._cond:
            return self._failures.get((group, item), 0)

    # --- taking ----------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> tuple[G, K] | None:
        """Block until an item of a group that is not being processed is ready.

        Returns None on shutdown or when ``timeout`` passes.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due()
                for group in self._order:
                    if group in self._processing:
                        continue
                    items = self._ready[group]
                    item, since = items.popitem(last=False)
                    del self._order[group]
                    if not items:
                        del self._ready[group]
                    self._processing[group] = item
                    now = self._clock()
                    self._started[(group, item)] = now
                    self._observer.waited(str(group), now - since)
                    self._observer.depth(str(group), len(self._ready.get(group, {})))
                    return group, item
                wait = self._next_wait(deadline)
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)

    def done(self, group: G, item: K) -> None:
        """Mark ``item`` processed, letting the next item of its group go."""
        with self._cond:
            if self._processing.get(group) == item:
                del self._processing[group]
            started = self._started.pop((group, item), None)
            if self._ready.get(group):
                self._order[group] = None
            self._cond.notify_all()
        if started is not None:
            self._observer.worked(str(group), self._clock() - started)

    def shut_down(self) -> None:
        """Stop handing out items; waiting ``get`` calls return None."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        """Whether ``shut_down`` was called."""
        return self._shutting_down

    def pending(self) -> int:
        """Items ready or scheduled (not counting those in processing)."""
        with self._cond:
            return sum(len(v) for v in self._ready.values()) + len(self._due)

    # --- internals (call with the lock held) ----------------------------------------

    def _make_ready(self, group: G, item: K) -> None:
        items = self._ready.setdefault(group, collections.OrderedDict())
        if item in items:
            return
        items[item] = self._clock()
        if group not in self._processing:
            self._order.setdefault(group, None)
        self._observer.added(str(group))
        self._observer.depth(str(group), len(items))

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, group, item = heapq.heappop(self._delayed)
            if self._due.get((group, item)) != due:
                continue  # superseded by an earlier schedule or an add()
            del self._due[(group, item)]
            self._make_ready(group, item)

    def _next_wait(self, deadline: float | None) -> float | None:
        now = self._clock()
        candidates = []
        if self._delayed:
            candidates.append(max(0.0, self._delayed[0][0] - now) + 0.001)
        if deadline is not None:
            candidates.append(deadline - now)
        return min(candidates) if candidates else None
