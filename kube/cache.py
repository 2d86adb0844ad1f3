"""Watch-fed caches: the in-memory view every controller and the extender read.

A ``WatchCache`` lists a resource, then watches it from the list's
resourceVersion (with bookmarks), and relists when the server says the
version is gone (410).  It keeps the objects as raw dicts keyed by
``namespace/name`` plus any number of secondary indexes, and tells handlers
which key changed — never *how* (level-triggered: handlers enqueue keys and
reconcilers read the cache).

The cache is truth-by-reconstruction: after a restart it is rebuilt from the
apiserver, so nothing in it needs persisting.  One thread per cache does the
I/O; readers take a short lock.  Objects handed out must be treated as
read-only (copy before changing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kube import client as client_mod
from kube import errors, resources

__all__ = ["ChangeHandler", "Indexer", "WatchCache", "object_key", "wait_all_synced"]

logger = logging.getLogger(__name__)

Indexer = Callable[[Mapping[str, Any]], Iterable[str]]
"""Return the index values of an object (pure)."""

ChangeHandler = Callable[[str, Mapping[str, Any] | None, Mapping[str, Any] | None], None]
"""Called with (key, old object or None, new object or None) after each change."""


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise (pure)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


class WatchCache:
    """A list+watch mirror of one resource with secondary indexes."""

    def __init__(
        self,
        api: client_mod.Client,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, Indexer] | None = None,
        watch_timeout_seconds: int = 290,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._api = api
        self.resource = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._indexers = dict(indexers or {})
        self._watch_timeout = watch_timeout_seconds
        self._max_backoff = max_backoff_seconds
        self._lock = threading.RLock()
        self._objects: dict[str, dict[str, Any]] = {}
        self._index: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._handlers: list[ChangeHandler] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._abort: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self.resource_version = ""
        self.relists = 0

    # --- lifecycle -------------------------------------------------------------------

    def add_handler(self, handler: ChangeHandler) -> None:
        """Register a change handler; call before ``start``.  Handlers must be quick."""
        self._handlers.append(handler)

    def start(self) -> None:
        """Start the list+watch thread."""
        if self._thread is not None:
            raise RuntimeError(f"cache of {self.resource.plural} already started")
        self._thread = threading.Thread(target=self._run, name=f"cache-{self.resource.plural}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and wait for the thread to end."""
        self._stopping.set()
        abort = self._abort
        if abort is not None:
            try:
                abort()
            except OSError:
                logger.debug("aborting the watch stream failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first list has been loaded."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        """Whether the first list has been loaded."""
        return self._synced.is_set()

    # --- reads ----------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        """The object under ``namespace/name`` (or ``name``), or None."""
        with self._lock:
            return self._objects.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object called ``name`` in ``namespace``, or None."""
        return self.get(f"{namespace}/{name}" if namespace else name)

    def items(self) -> list[dict[str, Any]]:
        """A snapshot of every object."""
        with self._lock:
            return list(self._objects.values())

    def keys(self) -> list[str]:
        """A snapshot of every key."""
        with self._lock:
            return list(self._objects)

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        """Objects whose ``index`` function yielded ``value``."""
        with self._lock:
            keys = self._index[index].get(value, set())
            return [self._objects[k] for k in sorted(keys)]

    def index_values(self, index: str) -> list[str]:
        """Every value present in ``index``."""
        with self._lock:
            return [v for v, keys in self._index[index].items() if keys]

    # --- the store --------------------------------------------------------------------

    def _index_add(self, key: str, obj: Mapping[str, Any]) -> None:
        for name, func in self._indexers.items():
            for value in func(obj):
                self._index[name].setdefault(value, set()).add(key)

    def _index_remove(self, key: str, obj: Mapping[str, Any]) -> None:
        for name, func in self._indexers.items():
            for value in func(obj):
                bucket = self._index[name].get(value)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._index[name][value]

    def _put(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        key = object_key(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is not None:
                self._index_remove(key, old)
            self._objects[key] = obj
            self._index_add(key, obj)
        return key, old

    def _remove(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            old = self._objects.pop(key, None)
            if old is not None:
                self._index_remove(key, old)
        return old

    def _notify(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        for handler in self._handlers:
            try:
                handler(key, old, new)
            except Exception:  # supervising code: a handler bug must not kill the watch
                logger.exception("cache change handler failed", extra={"resource": self.resource.plural, "key": key})

    # --- the list+watch loop ------------------------------------------------------------

    def _relist(self) -> None:
        items, version = self._api.list_all(
            self.resource,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )
        fresh = {object_key(o): o for o in items}
        changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
        with self._lock:
            for key in [k for k in self._objects if k not in fresh]:
                changes.append((key, self._remove(key), None))
            for key, obj in fresh.items():
                old = self._objects.get(key)
                if old is not None and _version(old) == _version(obj):
                    continue
                _, previous = self._put(obj)
                changes.append((key, previous, obj))
            self.resource_version = version
        self.relists += 1
        self._synced.set()
        for key, old, new in changes:
            self._notify(key, old, new)

    def _watch_once(self) -> None:
        def remember(abort: Callable[[], None]) -> None:
            self._abort = abort

        for kind, obj in self._api.watch(
            self.resource,
            self._namespace,
            resource_version=self.resource_version,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
            timeout_seconds=self._watch_timeout,
            on_open=remember,
        ):
            if self._stopping.is_set():
                return
            version = _version(obj)
            if kind == "BOOKMARK":
                self.resource_version = version
                continue
            if kind in ("ADDED", "MODIFIED"):
                key, old = self._put(obj)
                self.resource_version = version
                self._notify(key, old, obj)
            elif kind == "DELETED":
                key = object_key(obj)
                old = self._remove(key)
                self.resource_version = version
                self._notify(key, old, None)

    def _run(self) -> None:
        backoff = 0.2
        need_list = True
        while not self._stopping.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch_once()
                backoff = 0.2
            except errors.Gone:
                logger.info("watch version gone; relisting", extra={"resource": self.resource.plural})
                need_list = True
            except errors.KubeError as exc:
                if self._stopping.is_set():
                    return
                logger.warning(
                    "list or watch failed; retrying",
                    extra={"resource": self.resource.plural, "error": str(exc), "backoff_s": backoff},
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except Exception:  # supervising code: log with traceback, back off, go on
                logger.exception("cache loop failed; retrying", extra={"resource": self.resource.plural})
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                need_list = True
            finally:
                self._abort = None


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def wait_all_synced(caches: Iterable[WatchCache], timeout: float) -> bool:
    """Wait until every cache has loaded its first list; False on timeout."""
    deadline = time.monotonic() + timeout
    return all(c.wait_synced(max(0.0, deadline - time.monotonic())) for c in caches)
