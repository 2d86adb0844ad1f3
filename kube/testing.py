"""A test seam for code that talks to Kubernetes through this package.

Controllers read watch caches and write through ``kube.Client``; this module
replaces both at that seam, in memory, so decisions can be tested in
milliseconds without an apiserver:

* ``FakeClient`` is a ``kube.Client`` whose reads and writes hit a dict of
  objects.  It keeps the apiserver's rules that our code relies on:
  resourceVersion bumped on every write, ``metadata.resourceVersion`` in a
  merge patch and delete preconditions (uid, resourceVersion) answered with
  ``Conflict``, ``NotFound`` for a missing object, ``generateName``, a UID per
  created object, JSON merge patch semantics (``None`` removes a key, lists
  replace), deletion held by finalizers (``deletionTimestamp`` set; the
  object goes with its last finalizer, without a grace period).  It records
  every write in ``writes`` for assertions.  It is not an apiserver: no
  admission, no validation, no field managers, no watch.
* ``FakeClient.cache(resource, indexers=...)`` returns a real ``WatchCache``
  (same indexes, same handlers) that is never started; ``sync()`` copies
  the client's objects into every cache and notifies the handlers, so a
  test controls exactly when the cache catches up with a write (a lagging
  cache is one ``sync()`` away).

Nothing here is used by product code.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from kube import cache as cache_mod
from kube import client as client_mod
from kube import errors, resources

__all__ = ["FakeClient", "Write", "merge_patch"]


@dataclasses.dataclass(frozen=True)
class Write:
    """One write the code under test made."""

    verb: str
    """``create``, ``patch`` or ``delete``."""
    plural: str
    namespace: str | None
    name: str
    body: Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target``; returns the result (pure; copies)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(copy.deepcopy(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _key(resource: resources.Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
    return resource.plural, (namespace or "") if resource.namespaced else "", name


class FakeClient(client_mod.Client):
    """An in-memory ``kube.Client`` (see the module docstring for what it keeps of the apiserver)."""

    def __init__(self, *, field_manager: str = "fma-test") -> None:  # no super(): there is no API client
        self.field_manager = field_manager
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._caches: list[tuple[resources.Resource, cache_mod.WatchCache]] = []
        self.writes: list[Write] = []
        self.conflicts = 0
        """Writes refused with ``Conflict`` so far."""

    # --- the test's side ----------------------------------------------------------------------

    def seed(self, resource: resources.Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if someone else had created it (not recorded in ``writes``)."""
        body = copy.deepcopy(dict(obj))
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta["resourceVersion"] = str(next(self._versions))
        self._objects[_key(resource, meta.get("namespace"), str(meta["name"]))] = body
        return copy.deepcopy(body)

    def stored(self, resource: resources.Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The stored object (a copy), or None."""
        obj = self._objects.get(_key(resource, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def cache(
        self, resource: resources.Resource, *, indexers: Mapping[str, cache_mod.Indexer] | None = None
    ) -> cache_mod.WatchCache:
        """A real, never-started ``WatchCache`` of ``resource`` that ``sync()`` keeps up to date."""
        watch = cache_mod.WatchCache(self, resource, indexers=indexers)
        self._caches.append((resource, watch))
        return watch

    def sync(self) -> None:
        """Bring every cache up to the stored objects, notifying handlers of each change."""
        for resource, watch in self._caches:
            fresh = {
                cache_mod.object_key(obj): obj
                for (plural, _, _), obj in self._objects.items()
                if plural == resource.plural
            }
            for key in sorted(set(watch.keys()).difference(fresh)):
                old = watch._remove(key)  # the seam feeds the cache as its watch would
                watch._notify(key, old, None)
            for key, obj in fresh.items():
                current = watch.get(key)
                if current is not None and current["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]:
                    continue
                _, old = watch._put(copy.deepcopy(obj))
                watch._notify(key, old, watch.get(key))
            watch._synced.set()

    def writes_to(self, name: str, verb: str | None = None) -> list[Write]:
        """The recorded writes to objects called ``name`` (optionally of one verb)."""
        return [w for w in self.writes if w.name == name and (verb is None or w.verb == verb)]

    # --- kube.Client ---------------------------------------------------------------------------

    def request(self, method: str, path: str, **_: Any) -> Any:
        """Not faked: everything goes through the typed methods below."""
        raise NotImplementedError(f"FakeClient does not serve raw {method} {path}")

    def close(self) -> None:
        """Nothing to close."""

    def get(self, resource: resources.Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        """Read one object; ``NotFound`` when absent."""
        obj = self.stored(resource, name, namespace)
        if obj is None:
            raise errors.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        return obj

    def list_all(
        self,
        resource: resources.Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every stored object of ``resource`` (selectors are not supported)."""
        if label_selector or field_selector:
            raise NotImplementedError("FakeClient.list_all does not filter")
        items = [
            copy.deepcopy(obj)
            for (plural, ns, _), obj in self._objects.items()
            if plural == resource.plural and (namespace is None or ns == namespace)
        ]
        return items, str(next(self._versions))

    def create(
        self, resource: resources.Resource, body: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create an object (``generateName`` honoured); ``AlreadyExists`` on a taken name."""
        obj = copy.deepcopy(dict(body))
        meta = obj.setdefault("metadata", {})
        if namespace and resource.namespaced:
            meta["namespace"] = namespace
        if not meta.get("name"):
            meta["name"] = f"{meta.get('generateName', 'obj-')}{next(self._uids):05d}"
        key = _key(resource, namespace, str(meta["name"]))
        if key in self._objects:
            self.conflicts += 1
            raise errors.AlreadyExists(409, "AlreadyExists", f'{resource.plural} "{meta["name"]}" already exists')
        meta["uid"] = f"uid-{next(self._uids)}"
        meta["resourceVersion"] = str(next(self._versions))
        self._objects[key] = obj
        self.writes.append(Write("create", resource.plural, namespace, str(meta["name"]), copy.deepcopy(body)))
        return copy.deepcopy(obj)

    def patch(
        self,
        resource: resources.Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: client_mod.PatchType = "merge",
        subresource: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch; ``metadata.resourceVersion`` and ``metadata.uid`` in it are preconditions."""
        if patch_type != "merge":
            raise NotImplementedError(f"FakeClient only merge-patches, not {patch_type!r}")
        key = _key(resource, namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise errors.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        wanted = (patch.get("metadata") or {}) if isinstance(patch, Mapping) else {}
        for field in ("resourceVersion", "uid"):
            if field in wanted and wanted[field] != current["metadata"].get(field):
                self.conflicts += 1
                raise errors.Conflict(409, "Conflict", f"the object has been modified ({field} precondition)")
        updated = merge_patch(current, patch)
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        self.writes.append(Write("patch", resource.plural, namespace, name, copy.deepcopy(patch)))
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get("finalizers"):
            del self._objects[key]  # the last finalizer of a deleted object is gone: so is the object
        else:
            self._objects[key] = updated
        return copy.deepcopy(updated)

    def delete(
        self,
        resource: resources.Resource,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete at once, or mark deleting when finalizers remain; preconditions answered with ``Conflict``."""
        key = _key(resource, namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise errors.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        meta = current["metadata"]
        if (uid and uid != meta.get("uid")) or (resource_version and resource_version != meta.get("resourceVersion")):
            self.conflicts += 1
            raise errors.Conflict(409, "Conflict", "precondition failed")
        self.writes.append(Write("delete", resource.plural, namespace, name, None))
        if meta.get("finalizers"):
            meta.setdefault("deletionTimestamp", "2026-01-01T00:00:00Z")
            meta["resourceVersion"] = str(next(self._versions))
            return copy.deepcopy(current)
        del self._objects[key]
        return None
