"""The in-process publisher: the launcher's instances, written onto its own Pod (docs/protocol.md).

Upstream runs a sidecar that polls the launcher every 2 s and patches the
``vllm-instance-signature``; controllers learn of crashed instances only
through the Pod event that patch causes.  We react to our own instance
events instead and write both that signature and the ``instances``
inventory, so a change reaches the Pod object in well under the contracted
1 s, with no extra container and no polling.  The Pod is found by
``pod_identity``, so a launcher whose template sets no ``POD_NAME`` and
``NAMESPACE`` (one written for upstream's controller) publishes too.  Under
upstream's controller the sidecar still runs: it is ``pod_notifier``, the
polling twin of this module, and both write the same content.

Decide, then do:

- ``Schedule`` decides, purely and with the time passed in: patch now, look
  again at a given time, or wait for the next change.  It patches only when
  the wanted annotations differ from what was last written successfully, at
  most once per ``min_interval`` (200 ms: a burst of events becomes one
  patch carrying the latest state), and after a failure backs off
  exponentially up to ``max_backoff``.
- ``PodPublisher`` does: it is the process table's ``InventoryObserver``,
  whose ``inventory_changed`` only records the wanted annotations and wakes
  one asyncio task (it never blocks the event loop or an HTTP handler); the
  task sends JSON merge patches through ``apiserver.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from launcher import apiserver, errors, inventory, pod_identity
from launcher import settings as settings_mod

__all__ = [
    "Action",
    "Idle",
    "Patch",
    "Patcher",
    "PodPublisher",
    "Schedule",
    "WaitUntil",
    "from_settings",
]

logger = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Patch:
    """Write these annotations now."""

    annotations: dict[str, str]


@dataclasses.dataclass(frozen=True)
class WaitUntil:
    """Something is to be written, but not before ``at`` (the schedule's clock)."""

    at: float


@dataclasses.dataclass(frozen=True)
class Idle:
    """What is wanted is already written: wait for the next change."""


Action = Patch | WaitUntil | Idle


class Schedule:
    """When to patch: only on change, at most once per ``min_interval``, backing off after failures (pure)."""

    def __init__(self, min_interval: float = MIN_INTERVAL_SECONDS, max_backoff: float = MAX_BACKOFF_SECONDS) -> None:
        self._min_interval = min_interval
        self._max_backoff = max_backoff
        self._wanted: dict[str, str] | None = None
        self._written: dict[str, str] | None = None
        self._last_attempt: float | None = None
        self.failures = 0
        """Consecutive failed attempts (0 after a success)."""

    def want(self, annotations: dict[str, str]) -> None:
        """The annotations the Pod should carry now; replaces anything wanted before."""
        self._wanted = dict(annotations)

    @property
    def settled(self) -> bool:
        """Whether everything wanted has been written."""
        return self._wanted is None or self._wanted == self._written

    def _interval(self) -> float:
        if self.failures == 0:
            return self._min_interval
        return min(self._max_backoff, self._min_interval * 2.0 ** min(self.failures, 32))  # capped: no overflow

    def decide(self, now: float) -> Action:
        """What to do at time ``now``."""
        if self._wanted is None or self.settled:
            return Idle()
        if self._last_attempt is not None and now < self._last_attempt + self._interval():
            return WaitUntil(self._last_attempt + self._interval())
        return Patch(dict(self._wanted))

    def succeeded(self, annotations: dict[str, str], started_at: float) -> None:
        """A patch of ``annotations`` that started at ``started_at`` was applied."""
        self._written = dict(annotations)
        self._last_attempt = started_at
        self.failures = 0

    def failed(self, started_at: float) -> None:
        """A patch that started at ``started_at`` failed; the next waits longer."""
        self._last_attempt = started_at
        self.failures += 1


class Patcher(Protocol):
    """Applies annotations to an API object (``apiserver.AsyncClient`` in production, a fake in tests)."""

    async def patch_annotations(self, path: str, annotations: dict[str, str]) -> None:
        """Merge-patch the annotations; raises ``errors.ApiServerError``."""
        ...


class PodPublisher:
    """The ``InventoryObserver`` that keeps the launcher Pod's two annotations up to date.

    ``start()`` and ``close()`` run on the event loop; ``inventory_changed``
    is called there too (by the process table) and returns at once.
    """

    def __init__(
        self,
        patcher: Patcher,
        pod_path: str,
        schedule: Schedule | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        warm_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._patcher = patcher
        self._pod_path = pod_path
        self._schedule = schedule or Schedule()
        self._on_close = on_close
        self._warm_up = warm_up
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.patches = 0
        """Successful patches so far."""

    def inventory_changed(self, snapshot: inventory.Snapshot) -> None:
        """Record what the Pod should carry and wake the publishing task; never blocks."""
        self._schedule.want(inventory.pod_annotations(snapshot))
        if not self._schedule.settled:
            self._settled.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the publishing task (on the running loop); it first warms its connection up, if it can."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pod-publisher")
            self._task.add_done_callback(_report_end)

    async def close(self, flush_timeout: float = 2.0) -> None:
        """Give pending changes up to ``flush_timeout`` seconds to be written, then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), flush_timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._on_close is not None:
            await self._on_close()

    async def _attempt(self, annotations: dict[str, str], now: float) -> None:
        try:
            await self._patcher.patch_annotations(self._pod_path, annotations)
        except errors.ApiServerError as exc:
            self._schedule.failed(now)
            logger.warning(
                "publishing the inventory on the Pod failed; retrying with back-off",
                extra={"pod": self._pod_path, "error": str(exc), "failures": self._schedule.failures},
            )
            return
        except Exception:  # supervising code: a bug must not end publishing for good
            self._schedule.failed(now)
            logger.exception("publishing the inventory on the Pod failed unexpectedly", extra={"pod": self._pod_path})
            return
        recovered = self._schedule.failures > 0
        self._schedule.succeeded(annotations, now)
        self.patches += 1
        if recovered or self.patches == 1:
            logger.info("inventory published on the Pod", extra={"pod": self._pod_path})

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self._warm_up is not None:
            await self._warm_up()
        while True:
            now = loop.time()
            action = self._schedule.decide(now)
            if isinstance(action, Patch):
                await self._attempt(action.annotations, now)
                continue
            self._wake.clear()
            if isinstance(action, Idle):
                self._settled.set()
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, action.at - now))


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the Pod publisher stopped; the inventory is no longer published", exc_info=task.exception())


def from_settings(settings: settings_mod.LauncherSettings) -> PodPublisher | None:
    """The publisher for this launcher's own Pod, or None when it does not run in one.

    Enabled when the Pod's identity is known (``POD_NAME`` and ``NAMESPACE``,
    or else the service-account token's claims, the namespace file and the
    host name: ``pod_identity``) and the in-cluster credentials exist (reads
    the file system; opens no connection).  An unusable CA file is logged as
    an error and disables publishing: the launcher's API keeps working
    without it.
    """
    credentials = apiserver.in_cluster(settings)
    if credentials is None:
        logger.info("not publishing the inventory: no in-cluster credentials")
        return None
    identity = pod_identity.discover(settings)
    if identity is None:
        logger.warning("not publishing the inventory: this Pod's namespace or name cannot be found")
        return None
    try:
        client = apiserver.AsyncClient(credentials)
    except errors.ApiServerError:
        logger.exception("not publishing the inventory: the in-cluster credentials are unusable")
        return None
    return PodPublisher(
        client, apiserver.pod_path(identity.namespace, identity.name), on_close=client.aclose, warm_up=client.warm_up
    )
