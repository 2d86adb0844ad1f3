"""The launcher's revisioned event log: the revision counter, the replay buffer and live subscribers.

One counter for the whole launcher (docs/protocol.md, "Launcher API"): it starts at 0 and
rises by one per event; the last ``capacity`` events are kept as the
snapshots taken at event time.  A watch either replays from a revision in
the buffer or is answered 410, including for a cursor from the future (an
improvement over upstream).  A subscriber that falls ``capacity`` events
behind is cut off, and its stream simply ends; clients resynchronise.

Everything runs on the event loop; there are no locks because there are no
awaits between reading and changing the state.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

from launcher import errors, schemas

__all__ = ["EventLog", "Subscription"]


class Subscription:
    """One watcher's queue of live events; iterate it to receive them until it is closed."""

    def __init__(self, capacity: int) -> None:
        self._queue: collections.deque[schemas.WatchEvent] = collections.deque()
        self._capacity = capacity
        self._wakeup = asyncio.Event()
        self.closed = False

    def _offer(self, event: schemas.WatchEvent) -> None:
        if self.closed:
            return
        if len(self._queue) >= self._capacity:
            self.close()
            return
        self._queue.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """End the stream after nothing more (used on overflow and at shutdown)."""
        self.closed = True
        self._queue.clear()
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[schemas.WatchEvent]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            if self.closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


class EventLog:
    """Revision counter plus the last ``capacity`` events and the live subscribers."""

    def __init__(self, capacity: int = 1000) -> None:
        self.revision = 0
        self._capacity = capacity
        self._buffer: collections.deque[schemas.WatchEvent] = collections.deque(maxlen=capacity)
        self._subscribers: set[Subscription] = set()

    def next_revision(self) -> int:
        """Take the next revision number; the caller must ``append`` an event carrying it."""
        self.revision += 1
        return self.revision

    def append(self, event: schemas.WatchEvent) -> None:
        """Record ``event`` (whose object carries the latest revision) and fan it out."""
        if event.object.revision != self.revision:
            raise ValueError(f"event revision {event.object.revision!r} is not the current {self.revision!r}")
        self._buffer.append(event)
        for subscriber in list(self._subscribers):
            subscriber._offer(event)
            if subscriber.closed:
                self._subscribers.discard(subscriber)

    @property
    def oldest_available(self) -> int:
        """The exclusive lower bound of replayable revisions."""
        return self.revision - len(self._buffer)

    def replay_since(self, since: int) -> list[schemas.WatchEvent]:
        """The buffered events after ``since``; raises ``RevisionGone`` outside the buffer."""
        if since > self.revision:
            raise errors.RevisionGone(
                f"Requested revision {since} is newer than the current revision {self.revision}; resynchronise."
            )
        if since < self.oldest_available:
            raise errors.RevisionGone(
                f"Requested revision {since} is no longer available. Oldest available: {self.oldest_available}."
            )
        return [event for event in self._buffer if event.object.revision > since]

    def subscribe(self) -> Subscription:
        """A new live subscription; events appended from now on are delivered to it."""
        subscription = Subscription(self._capacity)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (its stream ended or its client went away)."""
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every live stream, e.g. when the launcher shuts down."""
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()
