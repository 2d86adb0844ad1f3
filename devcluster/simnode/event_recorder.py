"""Kubernetes Events about Pods, as the kubelet reports them (``kubectl describe`` shows them).

Each distinct (Pod, reason, message) is posted once, so a Pod stuck on the
same problem does not flood the API while it is retried.
"""

from __future__ import annotations

import datetime
import logging
import threading

import kube
from devcluster.simnode import fleet, pod

__all__ = ["EventRecorder"]

logger = logging.getLogger(__name__)


class EventRecorder:
    """Posts core/v1 Events on behalf of the simulated kubelets."""

    def __init__(self, api: kube.Client) -> None:
        self._api = api
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def forget(self, uid: str) -> None:
        """Drop the memory of a Pod's Events (it is gone)."""
        with self._lock:
            self._seen = {k for k in self._seen if k[0] != uid}

    def emit(self, the_pod: pod.Pod, node: str, kind: str, reason: str, message: str) -> None:
        """Post a ``Normal`` or ``Warning`` Event about the Pod (once per reason and message)."""
        key = (the_pod.metadata.uid, reason, message)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        stamp = fleet.rfc3339(datetime.datetime.now(datetime.UTC))
        meta = the_pod.metadata
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.name}.", "namespace": meta.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": meta.namespace,
                "name": meta.name,
                "uid": meta.uid,
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._api.request("POST", f"/api/v1/namespaces/{meta.namespace}/events", body=body)
        except kube.errors.KubeError as exc:
            logger.warning("event not recorded", extra={"pod": the_pod.key, "reason": reason, "error": str(exc)})
