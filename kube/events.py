"""Recording Kubernetes Events about objects, as ``kubectl describe`` shows them.

Events are how FMA tells users about problems it cannot fix itself (a bad
InferenceServerConfig, a launcher that is stuck).  Repeats of the same
(object, type, reason, message) within ``series_window`` bump the existing
Event's ``count`` instead of creating a new one, like the client-go
recorder.  Recording is best effort: a failure is logged, never raised,
because an Event must not make a reconcile fail.
"""

from __future__ import annotations

import collections
import datetime
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from kube import client as client_mod
from kube import errors, resources

__all__ = ["EventRecorder", "EventType"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

_MAX_MESSAGE = 1024


def _timestamp(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Writes core/v1 Events for one component."""

    def __init__(
        self,
        api: client_mod.Client,
        *,
        component: str,
        instance: str,
        series_window: datetime.timedelta = datetime.timedelta(minutes=10),
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        max_tracked: int = 4096,
    ) -> None:
        self._api = api
        self.component = component
        self.instance = instance
        self._window = series_window
        self._wall = wall_clock
        self._max = max_tracked
        self._lock = threading.Lock()
        self._recent: collections.OrderedDict[tuple[str, str, str, str], tuple[str, str, int, datetime.datetime]] = (
            collections.OrderedDict()
        )

    def record(self, obj: Mapping[str, Any], event_type: EventType, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (a raw object with kind, apiVersion and metadata)."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        uid = str(meta.get("uid") or "")
        message = message[:_MAX_MESSAGE]
        key = (uid, event_type, reason, message)
        now = self._wall()
        with self._lock:
            previous = self._recent.get(key)
        if previous is not None and now - previous[3] < self._window:
            name, ns, count, first = previous
            try:
                self._api.patch(
                    resources.EVENTS,
                    name,
                    {"count": count + 1, "lastTimestamp": _timestamp(now)},
                    ns,
                )
            except errors.NotFound:
                previous = None
            except errors.KubeError as exc:
                logger.warning("updating an event failed", extra={"reason": reason, "error": str(exc)})
                return
            else:
                self._remember(key, (name, ns, count + 1, first))
                return
        name = f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": uid or None,
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": _timestamp(now),
            "lastTimestamp": _timestamp(now),
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
        try:
            self._api.create(resources.EVENTS, body, namespace)
        except errors.KubeError as exc:
            logger.warning("recording an event failed", extra={"reason": reason, "error": str(exc)})
            return
        self._remember(key, (name, namespace, 1, now))

    def _remember(self, key: tuple[str, str, str, str], value: tuple[str, str, int, datetime.datetime]) -> None:
        with self._lock:
            self._recent[key] = value
            self._recent.move_to_end(key)
            while len(self._recent) > self._max:
                self._recent.popitem(last=False)
