"""Waiting on the cluster through watches: the e2e scenarios' one way to wait.

``ClusterWatch`` keeps watch-fed caches (``kube.WatchCache``) of the release
namespace's Pods, Events, InferenceServerConfigs and of the Nodes.  Every
change wakes the waiters, which re-evaluate their condition on the cached
objects; a wait never sleeps a fixed time.  Conditions that also read
something the apiserver does not hold (a launcher's instance list, an
engine's ``/is_sleeping``) are re-evaluated at least every ``recheck_s`` as
well.  Each wait has a bound and, on timeout, says what it waited for and
what it saw last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

import kube
from kube import resources

__all__ = ["ClusterWatch", "WaitTimeout"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold within its bound."""


def _by_uid(obj: Mapping[str, Any]) -> list[str]:
    return [str(obj["metadata"].get("uid", ""))]


def _event_subject(obj: Mapping[str, Any]) -> list[str]:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return [str(involved.get("uid") or ""), f"name:{involved.get('name', '')}"]


class ClusterWatch:
    """Watch-fed caches of one namespace plus a change counter that waiters block on."""

    def __init__(self, api: kube.Client, namespace: str, *, recheck_s: float = 1.0) -> None:
        self.namespace = namespace
        self.recheck_s = recheck_s
        self._changed = threading.Condition()
        self._generation = 0
        self.pods = kube.WatchCache(api, resources.PODS, namespace=namespace, indexers={"uid": _by_uid})
        self.events = kube.WatchCache(api, resources.EVENTS, namespace=namespace, indexers={"subject": _event_subject})
        self.iscs = kube.WatchCache(api, resources.INFERENCE_SERVER_CONFIGS, namespace=namespace)
        self.nodes = kube.WatchCache(api, resources.NODES)
        self._caches = (self.pods, self.events, self.iscs, self.nodes)
        for cache in self._caches:
            cache.add_handler(self._on_change)

    def start(self, timeout: float = 60.0) -> None:
        """Start every cache and wait for their first lists."""
        for cache in self._caches:
            cache.start()
        for cache in self._caches:
            if not cache.wait_synced(timeout):
                raise WaitTimeout(f"the {cache.resource.plural} cache did not sync within {timeout}s")

    def stop(self) -> None:
        for cache in self._caches:
            cache.stop()

    def _on_change(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        del key, old, new
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def poke(self) -> None:
        """Wake the waiters now (after an action whose effect is not an API object)."""
        self._on_change("", None, None)

    def wait(self, condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """Return ``condition()``'s first truthy value; re-evaluated on every watched change.

        Raises ``WaitTimeout`` naming ``what``, the bound and the last value
        (or exception) seen.  An ``AssertionError`` raised by the condition
        counts as "not yet" (so conditions may use ``assert`` to explain).
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            with self._changed:
                seen = self._generation
            try:
                result = condition()
            except (AssertionError, kube.errors.KubeError, httpx.HTTPError, OSError) as exc:
                last = exc
            else:
                if result:
                    return result
                last = result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!s:.3000}")
            self._wait_change(seen, min(remaining, self.recheck_s))

    def _wait_change(self, seen: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=timeout)

    # --- reads of the cached namespace ---------------------------------------------------------

    def live_pods(self, selector: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Pods not being deleted whose labels contain ``selector``."""
        wanted = dict(selector or {})
        return [
            p
            for p in self.pods.items()
            if not p["metadata"].get("deletionTimestamp")
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def all_pods(self, selector: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Pods (also those being deleted) whose labels contain ``selector``."""
        wanted = dict(selector or {})
        return [
            p
            for p in self.pods.items()
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.pods.get_by_name(name, self.namespace)

    def events_of(self, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Events about this Pod (by UID), oldest first."""
        found = self.events.by_index("subject", str(pod["metadata"]["uid"]))
        return sorted(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    def reasons_of(self, pod: Mapping[str, Any]) -> list[str]:
        return [str(e.get("reason")) for e in self.events_of(pod)]
