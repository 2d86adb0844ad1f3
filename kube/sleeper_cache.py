"""The watch-fed sleeper model: what placement reads, for the extender's verbs and the webhook's hints.

Both the scheduler extender and the webhook (placement hints) read the same
kind of cache, so it lives here, beside the other watch-fed caches, and hands
out the pure values of ``crds.sleeper_view`` and ``crds.sleeper_config``.

Watch caches (``kube_cache.WatchCache``) mirror Pods (indexed by node), Nodes, the
``gpu-map`` ConfigMap, ISCs and LauncherConfigs.  Node views
(``sleeper_view.NodeView``) are built lazily, on the first request that needs a
node, and memoised until a change on that node invalidates them; ISC and LC
summaries are memoised per resourceVersion.  So a verb over 1,000 nodes reads
1,000 ready-made values in the common case, while a change costs one rebuild
of one node.

Only changes that matter invalidate: a Pod or Node update whose
``sleeper_view.pod_signature``/``node_signature`` is unchanged (status, conditions,
heartbeats: most updates) keeps the memoised view.

Invalidation is race-free without holding a lock while building: each node
has a generation counter that every change bumps, and a view built from an
older generation is returned but not stored.

A launcher whose ``instances`` annotation does not parse counts as one
without instances (``sleeper_view``); each time such a value appears on a
Pod, ``on_malformed_inventory`` is called once (the owners count it in a
metric) and a warning is logged.  Nothing fails because of it.

Threads: the caches' threads call the handlers; request handlers read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from crds import sleeper_config, sleeper_scoring, sleeper_view
from kube import cache as kube_cache
from kube import client as kube_client
from kube import resources

__all__ = ["GPU_MAP_NAME", "SleeperCache"]

logger = logging.getLogger(__name__)

GPU_MAP_NAME: Final = "gpu-map"
"""The ConfigMap mapping node name -> JSON of GPU UUID -> index.

See docs/protocol.md, "Fixed names, containers and environment".
"""

_BY_NODE: Final = "node"
_BY_INTEREST: Final = "interest"


def _pod_nodes(pod: Mapping[str, Any]) -> list[str]:
    name = sleeper_view.node_of_pod(pod)
    return [name] if name else []


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class SleeperCache:
    """The placement view of the cluster (the extender's ``decision.World``, the webhook's hint source)."""

    def __init__(
        self,
        api: kube_client.Client,
        *,
        namespace: str | None = None,
        gpu_map_namespace: str | None = None,
        cache_factory: Callable[..., kube_cache.WatchCache] = kube_cache.WatchCache,
        on_malformed_inventory: Callable[[], None] | None = None,
    ) -> None:
        self._on_malformed = on_malformed_inventory
        self._pods = cache_factory(
            api, resources.PODS, namespace=None, indexers={_BY_NODE: _pod_nodes, _BY_INTEREST: sleeper_view.interests}
        )
        self._nodes = cache_factory(api, resources.NODES)
        self._iscs = cache_factory(api, resources.INFERENCE_SERVER_CONFIGS, namespace=namespace)
        self._lcs = cache_factory(api, resources.LAUNCHER_CONFIGS, namespace=namespace)
        self._gpu_map: kube_cache.WatchCache | None = None
        if gpu_map_namespace:
            self._gpu_map = cache_factory(
                api,
                resources.CONFIG_MAPS,
                namespace=gpu_map_namespace,
                field_selector=f"metadata.name={GPU_MAP_NAME}",
            )
        self._lock = threading.Lock()
        self._views: dict[str, sleeper_view.NodeView] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._summaries: dict[tuple[str, str], tuple[str, object]] = {}
        self._pods.add_handler(self._on_pod)
        self._nodes.add_handler(self._on_node)
        if self._gpu_map is not None:
            self._gpu_map.add_handler(self._on_gpu_map)

    # --- lifecycle --------------------------------------------------------------------

    def _caches(self) -> list[kube_cache.WatchCache]:
        caches = [self._pods, self._nodes, self._iscs, self._lcs]
        if self._gpu_map is not None:
            caches.append(self._gpu_map)
        return caches

    def start(self) -> None:
        """Start every watch."""
        for cache in self._caches():
            cache.start()

    def wait_synced(self, timeout: float) -> list[str]:
        """Wait until every cache has its first list; return the plurals of those still pending (empty: all)."""
        kube_cache.wait_all_synced(self._caches(), timeout)
        return [c.resource.plural for c in self._caches() if not c.synced]

    @property
    def synced(self) -> bool:
        """Whether every cache has loaded its first list."""
        return all(cache.synced for cache in self._caches())

    def stop(self) -> None:
        """Stop every watch."""
        for cache in self._caches():
            cache.stop()

    # --- invalidation (cache threads) -------------------------------------------------------

    def _invalidate(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._views.pop(name, None)
                self._generations[name] = self._generations.get(name, 0) + 1

    def _on_pod(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if old is not None and new is not None and sleeper_view.pod_signature(old) == sleeper_view.pod_signature(new):
            return
        if new is not None and sleeper_view.inventory_malformed(new):
            logger.warning("launcher inventory malformed; launcher ignored", extra={"pod": key})
            if self._on_malformed is not None:
                self._on_malformed()
        names = {n for obj in (old, new) if obj is not None for n in _pod_nodes(obj)}
        if names:
            self._invalidate(sorted(names))

    def _on_node(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if old is not None and new is not None and sleeper_view.node_signature(old) == sleeper_view.node_signature(new):
            return
        self._invalidate([key])

    def _on_gpu_map(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        with self._lock:
            self._views.clear()
            self._epoch += 1

    # --- reads (request handlers) -------------------------------------------------------------

    def _gpu_map_entry(self, name: str) -> str | None:
        if self._gpu_map is None:
            return None
        for config_map in self._gpu_map.items():
            value = (config_map.get("data") or {}).get(name)
            return str(value) if value is not None else None
        return None

    def node(self, name: str) -> sleeper_view.NodeView | None:
        """The memoised view of node ``name``; None when neither the Node nor any Pod on it is known."""
        with self._lock:
            view = self._views.get(name)
            if view is not None:
                return view
            stamp = (self._generations.get(name, 0), self._epoch)
        raw = self._nodes.get(name)
        if raw is None:
            return None
        view = sleeper_view.build(name, raw, self._pods.by_index(_BY_NODE, name), self._gpu_map_entry(name))
        with self._lock:
            if (self._generations.get(name, 0), self._epoch) == stamp:
                self._views[name] = view
        return view

    def relevant_nodes(self, want: sleeper_scoring.Demand) -> frozenset[str] | None:
        """The nodes with a sleeper of ``want``'s config key, a launcher of its LauncherConfig or (direct
        mode) a sleeping direct provider of its namespace; from the Pod index, without building views."""
        wanted = []
        if want.config_key:
            wanted.append(sleeper_view.interest_key("key", want.namespace, want.config_key))
        if want.mode is sleeper_scoring.Mode.LAUNCHER and want.launcher_config:
            wanted.append(sleeper_view.interest_key("lc", want.namespace, want.launcher_config))
        if want.mode is sleeper_scoring.Mode.DIRECT:
            wanted.append(sleeper_view.interest_key("direct", want.namespace))
        found = set()
        for value in wanted:
            for pod in self._pods.by_index(_BY_INTEREST, value):
                name = sleeper_view.node_of_pod(pod)
                if name:
                    found.add(name)
        return frozenset(found)

    def _summary(
        self, cache: kube_cache.WatchCache, kind: str, namespace: str, name: str, make: Callable[..., Any]
    ) -> Any:
        raw = cache.get(f"{namespace}/{name}")
        if raw is None:
            return None
        version = _version(raw)
        with self._lock:
            cached = self._summaries.get((kind, f"{namespace}/{name}"))
        if cached is not None and cached[0] == version:
            return cached[1]
        summary = make(raw)
        with self._lock:
            self._summaries[(kind, f"{namespace}/{name}")] = (version, summary)
        return summary

    def server_config(self, namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
        """The summary of ISC ``namespace/name``, or None when it is missing or malformed."""
        result: sleeper_config.ServerConfigSummary | None = self._summary(
            self._iscs, "isc", namespace, name, sleeper_config.summarize_isc
        )
        return result

    def launcher_config(self, namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
        """The summary of LauncherConfig ``namespace/name``, or None when it is missing or malformed."""
        result: sleeper_config.LauncherConfigSummary | None = self._summary(
            self._lcs, "lc", namespace, name, sleeper_config.summarize_lc
        )
        return result
