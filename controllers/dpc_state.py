"""What the dual-pods controller remembers between reconciles.

Everything durable lives in Pod annotations (docs/controllers.md, "How the dual-pods controller works"); this is the
in-memory part that is rebuilt lazily after a restart: per requester its
GPUs and how its binding was satisfied (for the actuation metric), per
launcher instance when it was last used (for LRU reclaim), and per
(node, config key) the back-off after engine start failures.  Work for one
node is serialized by the queue, so a memo is only ever touched by the
worker of its node; the maps themselves are guarded by a lock.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Literal

__all__ = ["DPCState", "RequesterMemo", "StartBackoff"]

Path = Literal["hot", "warm", "cold"]


@dataclasses.dataclass
class RequesterMemo:
    """The controller's memory about one requester (keyed by UID)."""

    gpus: list[str] | None = None
    """GPU UUIDs in SPI order, fetched once."""
    path: Path | None = None
    """How the binding was satisfied; None after a restart until known (then ``hot``)."""
    instances_deleted: int = 0
    """Instances deleted to make room for this binding."""
    instance_known: bool = False
    """The bound instance was seen to exist (a later absence means it vanished)."""
    engine_answered: bool = False
    """The engine answered ``/is_sleeping`` at least once."""
    start_failure_counted: bool = False
    """This binding's failed start is in ``fma_start_failures_total`` (a start fails at most once)."""
    asleep_or_dead: bool = False
    """The bound instance stopped or vanished: unbind must not try to sleep it."""
    relayed_ready: bool = False
    """The first positive readiness relay happened (the metric was observed)."""
    last_relay: Literal["become-ready", "become-unready"] | None = None
    """The last relay call made to the requester agent (not repeated until it shows or its grace passes)."""
    last_relay_at: float | None = None
    """When ``last_relay`` was made (monotonic)."""
    poll_delay: float = 0.25
    """The next delay of the ``/is_sleeping`` poll while the engine loads."""
    spi_poll: float = 0.05
    """The next delay of the GPU query while the requester agent starts."""
    deleting_requester: bool = False
    """We deleted the requester and ignore it until its deletion is observed."""
    node: str | None = None
    provider: str | None = None
    waiting_since: float | None = None
    """When the controller started waiting for the bound engine to answer."""
    deadline_problem: str | None = None
    """Set once the start deadline passed: the problem shown in the status until the engine answers."""
    pending_provider: str | None = None
    """A provider we just bound or created, until the cache shows it bound (no second choice meanwhile)."""
    pending_since: float = 0.0
    spi_failures: int = 0
    """Consecutive failed GPU queries (after a few, the problem goes to the status and back-off applies)."""
    duality: list[dict[str, str]] = dataclasses.field(default_factory=list)
    """Label sets of this pair's ``fma_duality`` series (set to 0 when both Pods are gone)."""


@dataclasses.dataclass
class StartBackoff:
    """Back-off after engine start failures of one config key on one node."""

    failures: int = 0
    not_before: float = 0.0
    isc: str = ""
    """The InferenceServerConfig whose engine failed last (its status reports the failure)."""
    message: str = ""
    """The last failure, as reported to the requester."""


class DPCState:
    """The controller's maps, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requesters: dict[str, RequesterMemo] = {}
        self._last_used: dict[tuple[str, str], float] = {}
        self._start_backoff: dict[tuple[str, str], StartBackoff] = {}

    def requester(self, uid: str) -> RequesterMemo:
        """The memo of requester ``uid``, created on first use."""
        with self._lock:
            return self._requesters.setdefault(uid, RequesterMemo())

    def peek_requester(self, uid: str) -> RequesterMemo | None:
        """The memo of requester ``uid`` if there is one."""
        with self._lock:
            return self._requesters.get(uid)

    def forget_requester(self, uid: str) -> RequesterMemo | None:
        """Drop the memo of requester ``uid``."""
        with self._lock:
            return self._requesters.pop(uid, None)

    def touch(self, launcher: str, instance_id: str, now: float) -> None:
        """Record a use (bind, wake or sleep) of an instance."""
        with self._lock:
            self._last_used[(launcher, instance_id)] = now

    def discover(self, launcher: str, instance_ids: list[str], now: float) -> None:
        """Start the clock of instances seen for the first time; forget vanished ones."""
        with self._lock:
            present = set(instance_ids)
            for key in [k for k in self._last_used if k[0] == launcher and k[1] not in present]:
                del self._last_used[key]
            for instance_id in instance_ids:
                self._last_used.setdefault((launcher, instance_id), now)

    def forget_launcher(self, launcher: str) -> None:
        """Drop everything about a launcher that is gone."""
        with self._lock:
            for key in [k for k in self._last_used if k[0] == launcher]:
                del self._last_used[key]

    def last_used(self) -> dict[tuple[str, str], float]:
        """A snapshot of (launcher, instance) → last use."""
        with self._lock:
            return dict(self._last_used)

    def start_backoff(self, node: str, config_key: str) -> StartBackoff:
        """The start back-off of ``config_key`` on ``node``."""
        with self._lock:
            return self._start_backoff.setdefault((node, config_key), StartBackoff())

    def clear_start_backoff(self, node: str, config_key: str) -> StartBackoff | None:
        """Forget start failures after a successful start; return what was forgotten."""
        with self._lock:
            return self._start_backoff.pop((node, config_key), None)

    def forget_start_failures(self, isc: str) -> None:
        """Drop the start failures recorded for ``isc`` (its spec changed: a new configuration)."""
        with self._lock:
            for key in [k for k, b in self._start_backoff.items() if b.isc == isc]:
                del self._start_backoff[key]

    def start_failures_of(self, isc: str) -> list[tuple[str, StartBackoff]]:
        """(node, back-off) of every failing start of ``isc``'s engines, by node."""
        with self._lock:
            found = [(node, b) for (node, _), b in self._start_backoff.items() if b.isc == isc and b.failures]
        return sorted(found, key=lambda pair: pair[0])
