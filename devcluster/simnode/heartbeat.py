"""Node heartbeats: Lease renewals (every 10 s) and Node status reports (every 4 min).

The node lifecycle controller counts a node healthy while its Lease is
fresh, so simnode renews Leases often and reports the Node status rarely,
as the kubelet does.  For thousands of nodes there is one scheduling thread
and a small worker pool, never a thread per node: renewals are spread over
the interval and sent as tiny merge patches.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import heapq
import logging
import pathlib
import threading
import time
from collections.abc import Callable, Sequence

import kube
from devcluster.simnode import fleet

__all__ = ["Heartbeat", "silence_file"]

logger = logging.getLogger(__name__)

RENEW_SECONDS = 10.0
STATUS_SECONDS = 240.0


def silence_file(state_dir: pathlib.Path, node: str) -> pathlib.Path:
    """While this file exists simnode sends no heartbeat for ``node`` (Lease and Node status), as if the
    node had lost the control plane; its Pods keep running.  For fault tests of the node lifecycle."""
    return state_dir / "silenced-nodes" / node


class Heartbeat:
    """Keeps the Leases and Node statuses of a set of nodes fresh."""

    def __init__(
        self,
        api: kube.Client,
        nodes: Sequence[fleet.NodeIdentity],
        node_uids: dict[str, str],
        *,
        workers: int = 4,
        renew_seconds: float = RENEW_SECONDS,
        status_seconds: float = STATUS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        silenced: Callable[[str], bool] | None = None,
    ) -> None:
        self._api = api
        self._silenced = silenced
        self._nodes = {n.name: n for n in nodes}
        self._uids = node_uids
        self._renew = renew_seconds
        self._status = status_seconds
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="heartbeat")
        self._lock = threading.Lock()
        self._gone: set[str] = set()
        self._muted: set[str] = set()
        start = clock()
        count = max(1, len(nodes))
        # (due, kind, node): kind 0 = lease, 1 = node status; spread over the period.
        self._queue: list[tuple[float, int, str]] = []
        for i, node in enumerate(nodes):
            self._queue.append((start + renew_seconds * i / count, 0, node.name))
            self._queue.append((start + status_seconds * (i + 0.5) / count, 1, node.name))
        heapq.heapify(self._queue)
        self.renewals = 0
        self.failures = 0

    def forget(self, name: str) -> None:
        """Stop heartbeating a node (it was deleted)."""
        with self._lock:
            self._gone.add(name)

    def report_now(self, name: str) -> None:
        """Report the Node's status now, as a transition to Ready (the API showed it otherwise)."""
        with self._lock:
            if name in self._gone:
                return
        with contextlib.suppress(RuntimeError):  # the pool has shut down: simnode is stopping
            self._pool.submit(self.beat, 1, name, True)

    def run(self, stop: threading.Event) -> None:
        """Schedule heartbeats until ``stop`` is set."""
        try:
            while not stop.is_set():
                now = self._clock()
                while self._queue and self._queue[0][0] <= now:
                    due, kind, name = heapq.heappop(self._queue)
                    with self._lock:
                        if name in self._gone:
                            continue
                    self._pool.submit(self.beat, kind, name)
                    period = self._renew if kind == 0 else self._status
                    heapq.heappush(self._queue, (max(due + period, now), kind, name))
                wait = self._queue[0][0] - self._clock() if self._queue else 1.0
                stop.wait(max(0.05, wait))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def beat(self, kind: int, name: str, transition: bool = False) -> None:
        """Send one heartbeat now: kind 0 renews the Lease, kind 1 reports the Node status.

        ``transition``: the Ready condition changes (its ``lastTransitionTime`` is now).
        """
        resumed = False
        if self._silenced is not None:
            silent = self._silenced(name)
            with self._lock:
                resumed = not silent and name in self._muted
                if silent:
                    self._muted.add(name)
                else:
                    self._muted.discard(name)
            if silent:
                return  # a simulated outage: the node stops heartbeating (silence_file)
        node = self._nodes[name]
        now = datetime.datetime.now(datetime.UTC)
        try:
            if kind == 0:
                self._renew_lease(node, now)
            if kind == 1 or resumed:
                # Back from an outage, report Ready at once (the node lifecycle controller set it Unknown).
                self._api.request(
                    "PATCH",
                    f"/api/v1/nodes/{name}/status",
                    body=fleet.node_status_body(node, now, transition=resumed or transition),
                    content_type=kube.client.PATCH_CONTENT_TYPES["strategic"],
                )
            self.renewals += 1
        except kube.errors.KubeError as exc:
            self.failures += 1
            logger.warning("heartbeat failed", extra={"node": name, "error": str(exc)})

    def _renew_lease(self, node: fleet.NodeIdentity, now: datetime.datetime) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{fleet.LEASE_NAMESPACE}/leases/{node.name}"
        patch = {"spec": {"renewTime": fleet.micro_time(now), "holderIdentity": node.name}}
        try:
            self._api.request("PATCH", path, body=patch, content_type=kube.client.PATCH_CONTENT_TYPES["merge"])
        except kube.errors.NotFound:
            create = f"/apis/coordination.k8s.io/v1/namespaces/{fleet.LEASE_NAMESPACE}/leases"
            self._api.request("POST", create, body=fleet.lease_body(node, self._uids.get(node.name), now))
