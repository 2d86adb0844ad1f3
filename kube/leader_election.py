"""Leader election with a coordination.k8s.io/v1 Lease.

Only one replica of ``fma-controllers`` may act at a time.  The decision —
acquire, renew or wait — is the pure function ``decide``; ``LeaderElector``
does the reads and writes (optimistic updates with the Lease's
resourceVersion, so two candidates never both win) and runs callbacks when
leadership starts and stops.

Expiry is judged by *local* observation time, as client-go does: a candidate
counts the lease duration from the moment it last saw the Lease record
change, so clock skew between machines does not matter.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from kube import client as client_mod
from kube import errors, resources

__all__ = ["Decision", "LeaderElector", "Observation", "decide"]

logger = logging.getLogger(__name__)

Action = Literal["create", "take", "renew", "wait"]


@dataclasses.dataclass(frozen=True)
class Observation:
    """What a candidate last saw of the Lease, and when (monotonic seconds)."""

    holder: str
    renew_time: str
    observed_at: float


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with the Lease now."""

    action: Action
    observation: Observation | None


def decide(
    lease: Mapping[str, Any] | None,
    identity: str,
    previous: Observation | None,
    now: float,
    lease_duration: float,
) -> Decision:
    """Decide whether ``identity`` may create, take over, renew, or must wait (pure).

    ``now`` is monotonic; a foreign holder's lease counts as expired when the
    record has not changed for ``lease_duration`` seconds of our own clock.
    """
    if lease is None:
        return Decision("create", None)
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    renew_time = str(spec.get("renewTime") or "")
    if previous is not None and previous.holder == holder and previous.renew_time == renew_time:
        observation = previous
    else:
        observation = Observation(holder=holder, renew_time=renew_time, observed_at=now)
    if holder == identity:
        return Decision("renew", observation)
    if not holder or now - observation.observed_at >= lease_duration:
        return Decision("take", observation)
    return Decision("wait", observation)


def _micro_time(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for a Lease and keeps it renewed while leading."""

    def __init__(
        self,
        api: client_mod.Client,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError(
                f"need retry_period < renew_deadline < lease_duration; got "
                f"{retry_period!r}, {renew_deadline!r}, {lease_duration!r}"
            )
        self._api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry = retry_period
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._monotonic = monotonic
        self._wall = wall_clock
        self._observation: Observation | None = None
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this candidate currently holds the Lease."""
        return self._leading.is_set()

    def start(self) -> None:
        """Campaign in a background thread."""
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop campaigning; release the Lease if we hold it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, decide, write.  Returns whether we lead afterwards."""
        lease = self._api.get_or_none(resources.LEASES, self.name, self.namespace)
        decision = decide(lease, self.identity, self._observation, self._monotonic(), self._duration)
        self._observation = decision.observation
        if decision.action == "wait":
            return False
        now = _micro_time(self._wall())
        spec = dict((lease or {}).get("spec") or {})
        if decision.action in ("create", "take"):
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": int(self._duration), "renewTime": now})
        try:
            if lease is None:
                written = self._api.create(
                    resources.LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": spec,
                    },
                    self.namespace,
                )
            else:
                body = dict(lease)
                body["spec"] = spec
                written = self._api.replace(resources.LEASES, body)
        except errors.Conflict:
            return False  # someone else wrote first; look again next round
        self._observation = Observation(self.identity, now, self._monotonic())
        return str((written.get("spec") or {}).get("holderIdentity")) == self.identity

    def _release(self) -> None:
        lease = self._api.get_or_none(resources.LEASES, self.name, self.namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        body = dict(lease)
        spec = dict(lease.get("spec") or {})
        spec.update({"holderIdentity": "", "leaseDurationSeconds": 1})
        body["spec"] = spec
        try:
            self._api.replace(resources.LEASES, body)
        except errors.KubeError:
            logger.warning("releasing the lease failed", extra={"lease": self.name}, exc_info=True)

    def _run(self) -> None:
        last_renew = self._monotonic()
        while not self._stop.is_set():
            try:
                leading = self.try_acquire_or_renew()
            except errors.KubeError as exc:
                logger.warning("lease round failed", extra={"lease": self.name, "error": str(exc)})
                leading = False
            now = self._monotonic()
            if leading:
                last_renew = now
                if not self._leading.is_set():
                    self._leading.set()
                    logger.info("started leading", extra={"lease": self.name, "identity": self.identity})
                    self._on_started()
            elif self._leading.is_set() and now - last_renew >= self._renew_deadline:
                self._leading.clear()
                logger.warning("stopped leading", extra={"lease": self.name, "identity": self.identity})
                self._on_stopped()
            self._stop.wait(self._retry)
        if self._leading.is_set():
            self._leading.clear()
            self._release()
            self._on_stopped()
