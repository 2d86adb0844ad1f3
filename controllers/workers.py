"""Worker threads that drain a ``GroupedQueue`` into a reconcile function.

This is the supervising code of the controllers: it owns the retry meaning
of every outcome (after controller-runtime's ``reconcileHandler``):

* the reconcile returns None → success: ``forget`` the item's back-off;
* it returns a float → success, check again after that many seconds;
* it raises ``TerminalError`` → no retry (the item waits for a new event);
* it raises anything else → log with traceback, retry with back-off.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from controllers import errors
from controllers import work_queue as wq

__all__ = ["Reconcile", "Workers"]

logger = logging.getLogger(__name__)

G = TypeVar("G")
K = TypeVar("K")

Reconcile = Callable[[G, K], float | None]
"""Reconcile one item; return None when done or a delay to look again."""


class Workers(Generic[G, K]):
    """N threads calling ``reconcile`` for items of ``queue``."""

    def __init__(
        self,
        queue: wq.GroupedQueue[G, K],
        reconcile: Reconcile[G, K],
        *,
        name: str,
        count: int = 2,
    ) -> None:
        self._queue = queue
        self._reconcile = reconcile
        self.name = name
        self._count = count
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads."""
        for index in range(self._count):
            thread = threading.Thread(target=self._loop, name=f"{self.name}-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the queue down and wait for in-flight reconciles to finish."""
        self._queue.shut_down()
        for thread in self._threads:
            thread.join(timeout)

    def process_one(self, group: G, item: K) -> None:
        """Run one reconcile and apply its outcome to the queue."""
        reconcile_id = uuid.uuid4().hex[:8]
        extra = {"controller": self.name, "group": str(group), "item": str(item), "reconcile_id": reconcile_id}
        try:
            result = self._reconcile(group, item)
        except errors.TerminalError as exc:
            self._queue.forget(group, item)
            logger.info("reconcile ended without retry", extra={**extra, "error": str(exc)})
        except Exception as exc:  # supervising code: retry anything else with back-off
            delay = self._queue.add_rate_limited(group, item)
            logger.warning(
                "reconcile failed; retrying",
                extra={**extra, "error": str(exc), "retry_in_s": round(delay, 3)},
                exc_info=not isinstance(exc, errors.RetryableError),
            )
        else:
            self._queue.forget(group, item)
            if result is not None:
                self._queue.add_after(group, item, result)

    def _loop(self) -> None:
        while True:
            got = self._queue.get()
            if got is None:
                return
            group, item = got
            try:
                self.process_one(group, item)
            finally:
                self._queue.done(group, item)
