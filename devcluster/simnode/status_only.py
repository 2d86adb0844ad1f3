"""Pods on status-only nodes: reported Running and Ready without running anything (like kwok).

Serves scale tests with thousands of nodes: one worker thread for all such
Pods, level-based on a queue of UIDs, and no processes, probes or volumes.
Deletion is immediate (grace 0), as there is nothing to stop.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import queue
import threading
from collections.abc import Callable, Collection
from typing import Any

import kube
from devcluster.simnode import fleet, node_ledger, pod, pod_status

__all__ = ["StatusOnlyWorker", "view_of"]

logger = logging.getLogger(__name__)


def view_of(the_pod: pod.Pod, node: fleet.NodeIdentity, pod_ip: str, start_time: str) -> pod_status.PodView:
    """Every init container completed and every container running and ready.  Pure."""
    done = pod_status.Terminated(exit_code=0, reason="Completed", started_at=start_time, finished_at=start_time)
    return pod_status.PodView(
        init_containers=tuple(
            pod_status.ContainerView(name=c.name, image=c.image, state=done) for c in the_pod.spec.init_containers
        ),
        containers=tuple(
            pod_status.ContainerView(
                name=c.name, image=c.image, state=pod_status.Running(start_time), ready=True, started=True
            )
            for c in the_pod.spec.containers
        ),
        restart_policy=the_pod.spec.restart_policy,
        host_ip=node.host_ip,
        pod_ip=pod_ip,
        start_time=start_time,
    )


class StatusOnlyWorker:
    """Reports status for, and deletes, the Pods bound to status-only nodes."""

    def __init__(
        self,
        api: kube.Client,
        nodes: dict[str, fleet.NodeIdentity],
        ledgers: dict[str, node_ledger.NodeLedger],
        foreign_ips: Callable[[str], Collection[str]] = lambda uid: (),
    ) -> None:
        self._api = api
        self._foreign_ips = foreign_ips
        self._nodes = nodes
        self._ledgers = ledgers
        self._lock = threading.Lock()
        self._pods: dict[str, pod.Pod] = {}
        self._sent: dict[str, Any] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()

    def update(self, uid: str, the_pod: pod.Pod | None) -> None:
        """The latest Pod object (None: deleted); the worker reconciles it soon."""
        with self._lock:
            if the_pod is None:
                gone = self._pods.pop(uid, None)
                if gone is not None and gone.spec.node_name in self._ledgers:
                    self._ledgers[gone.spec.node_name].release(uid)
                self._sent.pop(uid, None)
                return
            self._pods[uid] = the_pod
        self._queue.put(uid)

    def forget_node(self, name: str) -> None:
        """The node was deleted: drop its Pods."""
        with self._lock:
            for uid in [u for u, p in self._pods.items() if p.spec.node_name == name]:
                self._pods.pop(uid, None)
                self._sent.pop(uid, None)

    def run(self, stop: threading.Event) -> None:
        """Reconcile queued Pods until ``stop`` is set (``close`` wakes it)."""
        while not stop.is_set():
            uid = self._queue.get()
            if uid is None:
                return
            try:
                self._reconcile(uid)
            except kube.errors.KubeError as exc:
                logger.warning("status-only pod not reconciled", extra={"uid": uid, "error": repr(exc)})
            except Exception:  # supervising code: one bad Pod must not stop the worker
                logger.exception("status-only pod reconcile crashed", extra={"uid": uid})

    def close(self) -> None:
        """Wake ``run`` so that it returns."""
        self._queue.put(None)

    def _reconcile(self, uid: str) -> None:
        with self._lock:
            the_pod = self._pods.get(uid)
        if the_pod is None or the_pod.spec.node_name not in self._nodes:
            return
        meta = the_pod.metadata
        if meta.deletion_timestamp:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
            with contextlib.suppress(kube.errors.NotFound, kube.errors.Conflict):
                self._api.request("DELETE", f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}", body=body)
            return
        node = self._nodes[the_pod.spec.node_name]
        ip, _ = self._ledgers[node.name].assign(
            the_pod, the_pod.status.pod_ip, with_gpus=False, foreign_ips=self._foreign_ips(uid)
        )
        now = fleet.rfc3339(datetime.datetime.now(datetime.UTC))
        view = view_of(the_pod, node, ip, the_pod.status.start_time or now)
        status = pod_status.compute(
            view, the_pod.status.conditions, [g.condition_type for g in the_pod.spec.readiness_gates], now
        )
        comparable = {k: v for k, v in status.items() if k != "conditions"} | {
            "conditions": [(c["type"], c["status"]) for c in status["conditions"]]
        }
        if self._sent.get(uid) == comparable:
            return
        with contextlib.suppress(kube.errors.NotFound):
            self._api.request(
                "PATCH",
                f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}/status",
                body={"status": status},
                content_type=kube.client.PATCH_CONTENT_TYPES["strategic"],
            )
        self._sent[uid] = comparable
