"""The dual-pods controller: binds requesters to providers and drives sleep and wake.

Level-triggered (docs/controllers.md, "How the dual-pods controller works"): every Pod, ISC, LauncherConfig, Node and
``gpu-map`` change turns into work items on the queue of the node concerned;
a reconcile reads the watch caches, decides, and acts through the API and
the node agents' HTTP APIs.  Work for one node runs one item at a time, so
launcher selection and the sleeper budget are race-free within a node.

Items (the queue's group is the node):

* ``("requester", uid)`` — a requester and whatever is bound to it; bound
  provider events map here through the binding record;
* ``("launcher", name)`` — an unbound launcher: sync its instances and wake
  the requesters waiting on the node;
* ``("gc", isc_name)`` — delete obsolete sleeping instances after an ISC
  spec change;
* ``("isc-status", name)`` (group ``""``) — write an ISC's status.

This module owns the wiring (event handlers to work items), the dispatch of
items and the requester item up to the point where a mode takes over.  The
parts it drives, each in its own module:

* ``requester_side`` — every write to a requester, its agent and its metrics,
  shared by both modes;
* ``launcher_binding`` / ``launcher_bound`` / ``launcher_sync`` — launcher
  mode: choose and bind, drive the bound pair and unbind, bookkeeping;
* ``direct_mode`` — direct mode;
* ``isc_status_writer`` — the ISC status item;
* ``requester_plan`` — the pure decisions (bound path, deletion, relay).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import kube
from controllers import (
    direct_mode,
    dpc_indexes,
    dpc_metrics,
    dpc_settings,
    dpc_state,
    errors,
    isc_status_writer,
    launcher_binding,
    launcher_bound,
    launcher_sync,
    node_agents,
    pod_view,
    requester_plan,
    requester_side,
    work_queue,
    workers,
)
from crds import binding_record, keys, ports
from crds import errors as crds_errors
from crds import pod_view as crds_pod_view

__all__ = ["POD_INDEXERS", "DPCSettings", "DualPodsController", "Item"]

logger = logging.getLogger(__name__)

DPCSettings = dpc_settings.DPCSettings
POD_INDEXERS = dpc_indexes.POD_INDEXERS
"""Indexes the controllers' Pod cache needs; pass them to its ``WatchCache``."""

Item = tuple[str, str]
"""A work item: (kind, key)."""

_REQUESTER = "requester"
_LAUNCHER = "launcher"
_GC = "gc"
_ISC_STATUS = "isc-status"
_CLUSTER_GROUP = ""

_MULTIPLE_BOUND = "found multiple bound server-running Pods"
_SPI_QUICK_S = 0.02
_SPI_QUICK_POLLS = 100
"""The first 2 s of a starting requester agent are polled every 20 ms: it usually answers within them, and
nothing else tells the controller when its SPI starts to answer (the agent publishes nothing)."""
_SPI_FAST_POLLS = 130
"""Then from 0.05 s growing to 0.5 s, about 15 s in all, before its failure is reported."""
_PENDING_PROVIDER_S = 10.0
"""How long a just-bound or just-created provider may take to show in the cache."""


def _provider_state(provider: Mapping[str, Any]) -> requester_plan.ProviderState:
    if pod_view.is_deleting(provider):
        return "deleting"
    if pod_view.is_failed(provider) or (pod_view.restarts(provider) > 0 and not pod_view.is_ready(provider)):
        return "troubled"
    return "healthy"


class DualPodsController:
    """Reconciles requesters, providers and launchers of one namespace."""

    def __init__(
        self,
        api: kube.Client,
        *,
        settings: dpc_settings.DPCSettings,
        pods: kube.WatchCache,
        nodes: kube.WatchCache,
        iscs: kube.WatchCache,
        lcs: kube.WatchCache,
        gpu_maps: kube.WatchCache,
        agents: node_agents.NodeAgents,
        events: kube.EventRecorder,
        metrics: dpc_metrics.DPCMetrics,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.settings = settings
        self.pods = pods
        self.nodes = nodes
        self.iscs = iscs
        self.lcs = lcs
        self.gpu_maps = gpu_maps
        self.metrics = metrics
        self.state = dpc_state.DPCState()
        self._monotonic = monotonic
        self.queue: work_queue.GroupedQueue[str, Item] = work_queue.GroupedQueue(
            observer=dpc_metrics.InnerQueueObserver(metrics)
        )
        self._workers = workers.Workers(self.queue, self.reconcile, name="dual-pods", count=settings.num_workers)
        self._active = threading.Event()
        namespace = settings.namespace
        self.side = requester_side.RequesterSide(
            api,
            namespace=namespace,
            agents=agents,
            events=events,
            metrics=metrics,
            state=self.state,
            monotonic=monotonic,
            wall_clock=wall_clock,
        )
        self.direct = direct_mode.DirectMode(
            self.side,
            pods=pods,
            gpu_maps=gpu_maps,
            gpu_map_namespace=settings.gpu_map_namespace or namespace,
            sleeper_limit=settings.sleeper_limit,
        )
        self.binding = launcher_binding.LauncherBinding(self.side, settings=settings, pods=pods, iscs=iscs, lcs=lcs)
        self.bound = launcher_bound.BoundLauncher(
            self.side, settings=settings, iscs=iscs, enqueue_isc_status=self._enqueue_isc_status
        )
        self.launchers = launcher_sync.LauncherSync(
            self.side, namespace=namespace, pods=pods, iscs=iscs, enqueue_requester=self._enqueue_requester_item
        )
        self.isc_status = isc_status_writer.ISCStatusWriter(
            api, namespace=namespace, iscs=iscs, lcs=lcs, state=self.state, wall_clock=wall_clock
        )

    # --- wiring -------------------------------------------------------------------------

    def register_handlers(self) -> None:
        """Subscribe to the caches; call before they start."""
        self.pods.add_handler(self._on_pod)
        self.iscs.add_handler(self._on_isc)
        self.lcs.add_handler(self._on_lc)
        self.gpu_maps.add_handler(self._on_gpu_map)
        self.nodes.add_handler(self._on_node)

    def start(self) -> None:
        """Enqueue everything known and start the workers (on becoming leader)."""
        self._active.set()
        for pod in self.pods.items():
            self._enqueue_pod(pod)
        for isc in self.iscs.items():
            self._enqueue_isc_status(str(isc["metadata"]["name"]))
        self._workers.start()

    def stop(self) -> None:
        """Stop the workers, letting in-flight reconciles finish."""
        self._active.clear()
        self._workers.stop()

    # --- event handlers: map changes to work items -------------------------------------------

    def _enqueue_isc_status(self, isc_name: str) -> None:
        self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, isc_name))

    def _enqueue_requester_item(self, node: str, uid: str) -> None:
        self.queue.add(node, (_REQUESTER, uid))

    def _enqueue_pod(self, pod: Mapping[str, Any]) -> None:
        info = pod_view.classify(pod)
        if info.kind in ("requester", "bound-provider") and info.node and info.key:
            self.queue.add(info.node, (_REQUESTER, info.key))
        elif info.kind == "requester" and info.key and pod_view.is_deleting(pod):
            # Deleted before it was ever scheduled: nothing is bound, only the webhook's finalizer to drop.
            self.queue.add(_CLUSTER_GROUP, (_REQUESTER, info.key))
        elif info.kind == "unbound-launcher" and info.node and info.key:
            self.queue.add(info.node, (_LAUNCHER, info.key))

    def _on_pod(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        iscs: set[str] = set()
        for pod in (old, new):
            if pod is not None:
                self._enqueue_pod(pod)
                iscs.update(dpc_indexes.requester_isc(pod))
        for isc_name in sorted(iscs):
            self._refresh_requester_count(isc_name)

    def _refresh_requester_count(self, isc_name: str) -> None:
        """Set ``fma_requester_count`` of one ISC from the cache (level-based, so never stale).

        It counts the Pods whose ISC annotation names it, scheduled or not,
        leaving out those being deleted; an ISC with none left shows 0.
        """
        requesters = self.pods.by_index(dpc_indexes.REQUESTER_ISC, isc_name)
        count = sum(1 for pod in requesters if not pod_view.is_deleting(pod))
        self.metrics.requester_count.labels(isc_name=isc_name).set(count)

    def _requesters_naming(self, isc_names: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in isc_names:
            found.extend(self.pods.by_index(dpc_indexes.REQUESTER_ISC, name))
        return found

    def _enqueue_requesters(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            self._enqueue_pod(pod)

    def _on_isc(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        obj = new or old
        if obj is None:
            return
        name = str(obj["metadata"]["name"])
        if old is not None and new is not None and old.get("spec") != new.get("spec"):
            self.state.forget_start_failures(name)
        self._enqueue_requesters(self._requesters_naming({name}))
        self._enqueue_isc_status(name)
        if old is not None and new is not None and old.get("spec") != new.get("spec"):
            for node in self.pods.index_values(dpc_indexes.LAUNCHER_NODE):
                self.queue.add(node, (_GC, name))
        self._refresh_isc_count()

    def _on_lc(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        obj = new or old
        if obj is None:
            return
        lc_name = str(obj["metadata"]["name"])
        iscs = {
            str(i["metadata"]["name"])
            for i in self.iscs.items()
            if (i.get("spec") or {}).get("launcherConfigName") == lc_name
        }
        self._enqueue_requesters(self._requesters_naming(iscs))
        for name in iscs:
            self._enqueue_isc_status(name)

    def _on_gpu_map(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if new is None or (old is not None and old.get("data") == new.get("data")):
            return
        self._enqueue_requesters([p for p in self.pods.items() if pod_view.is_requester(p)])

    def _on_node(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        self._enqueue_requesters(self.pods.by_index(dpc_indexes.REQUESTER_NODE, key))

    def _refresh_isc_count(self) -> None:
        counts: dict[str, int] = {}
        for isc in self.iscs.items():
            lc = str((isc.get("spec") or {}).get("launcherConfigName") or "")
            counts[lc] = counts.get(lc, 0) + 1
        self.metrics.isc_count.clear()
        for lc, count in counts.items():
            self.metrics.isc_count.labels(launcher_config_name=lc).set(count)

    # --- dispatch -------------------------------------------------------------------------------

    def reconcile(self, node: str, item: Item) -> float | None:
        """Reconcile one work item (called by the workers)."""
        kind, key = item
        if kind == _REQUESTER:
            return self.reconcile_requester(node, key)
        if kind == _LAUNCHER:
            return self.launchers.reconcile_unbound_launcher(node, key)
        if kind == _GC:
            return self.launchers.collect_obsolete(node, key)
        if kind == _ISC_STATUS:
            return self.isc_status.write(key)
        raise errors.TerminalError(f"unknown work item kind {kind!r}")

    # --- the requester item -----------------------------------------------------------------------

    def _gpus(self, requester: Mapping[str, Any], memo: dpc_state.RequesterMemo) -> list[str] | None:
        """The requester's GPUs (fetched once), or None while it has no IP; raises ``UserError``.

        A requester without a Pod IP is just starting, not failing: the Pod
        update that brings its IP enqueues it again, so there is nothing to
        report and nothing to retry.
        """
        if memo.gpus is not None:
            return memo.gpus
        ip = pod_view.pod_ip(requester)
        if ip is None:
            return None
        try:
            port = ports.admin_port(pod_view.annotations_of(requester))
        except crds_errors.CrdsError as exc:
            raise errors.UserError(str(exc)) from exc
        uuids = self.side.agents.gpu_uuids(ip, port)
        if not uuids:
            raise errors.UserError("the assigned set of GPUs is empty")
        memo.gpus = uuids
        return uuids

    def _spi_failed(
        self, requester: Mapping[str, Any], memo: dpc_state.RequesterMemo, exc: errors.EngineHTTPError
    ) -> float:
        """The requester agent did not answer: poll briefly, then report and back off.

        The agent is usually just starting, and this is on every actuation's
        path, so the first retries come fast (every 20 ms for 2 s, then
        growing); if it keeps failing, the problem goes to the status and the
        item's back-off takes over.
        """
        memo.spi_failures += 1
        if memo.spi_failures <= _SPI_QUICK_POLLS:
            return _SPI_QUICK_S
        if memo.spi_failures <= _SPI_FAST_POLLS:
            delay = memo.spi_poll
            memo.spi_poll = min(memo.spi_poll * 1.25, 0.5)
            return delay
        self.side.report(requester, str(exc))
        raise exc

    def _waiting(
        self, requester: Mapping[str, Any], provider: Mapping[str, Any] | None, node: str, memo: dpc_state.RequesterMemo
    ) -> tuple[bool, float | None]:
        """Whether this pass stops before the modes (and when to look again)."""
        if memo.deleting_requester:
            return True, None  # we deleted it; wait until the deletion shows
        if provider is not None:
            memo.pending_provider = None
        elif memo.pending_provider is not None:
            # We just bound or created a provider; until the cache shows it, do not choose again.
            if self._monotonic() - memo.pending_since < _PENDING_PROVIDER_S:
                return True, 0.2
            memo.pending_provider = None
        if provider is not None and pod_view.is_deleting(provider):
            self._relay_provider_deletion(requester, provider)
            return True, None
        node_obj = self.nodes.get(node)
        if node_obj is None or (node_obj.get("metadata") or {}).get("deletionTimestamp"):
            return True, None
        if provider is None and (node_obj.get("spec") or {}).get("unschedulable"):
            self.side.delete_requester(requester, "its node is unschedulable")
            return True, None
        return False, None

    def reconcile_requester(self, node: str, uid: str) -> float | None:
        """Reconcile a requester and its bound provider (or the provider of a vanished requester)."""
        requesters = self.pods.by_index(dpc_indexes.REQUESTER_UID, uid)
        requester: dict[str, Any] | None = requesters[0] if requesters else None
        providers = self.pods.by_index(dpc_indexes.BOUND_TO, uid)
        if requester is None:
            for orphan in providers:
                self.unbind(orphan)
            self._forget(uid)
            return None
        memo = self.state.requester(uid)
        memo.node = node
        if pod_view.is_deleting(requester):
            return self._requester_deleting(requester, providers)
        if len(providers) > 1:
            self.side.report(requester, _MULTIPLE_BOUND)
            raise errors.TerminalError(_MULTIPLE_BOUND)
        provider = providers[0] if providers else None
        stop, delay = self._waiting(requester, provider, node, memo)
        if stop:
            return delay
        try:
            gpus = self._gpus(requester, memo)
        except errors.EngineHTTPError as exc:
            return self._spi_failed(requester, memo, exc)
        except errors.UserError as exc:
            self.side.report(requester, str(exc))
            return None
        memo.spi_failures = 0
        if gpus is None:
            return None  # no IP yet: the Pod event that assigns it brings us back
        try:
            return self._serve(requester, provider, gpus, memo)
        except errors.UserError as exc:
            self.side.report(requester, str(exc), gpus=gpus)
            return None

    def _serve(
        self,
        requester: Mapping[str, Any],
        provider: Mapping[str, Any] | None,
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        """Hand the requester to its mode: bind one, or drive the bound pair."""
        if crds_pod_view.PodView(requester).mode == crds_pod_view.DIRECT:
            return self.direct.reconcile(requester, provider, gpus, memo)
        if provider is None:
            return self.binding.bind(requester, gpus, memo)
        return self.bound.reconcile(requester, provider, gpus, memo)

    def _forget(self, uid: str) -> None:
        memo = self.state.forget_requester(uid)
        if memo is not None:
            self.side.clear_duality(memo)

    def unbind(self, provider: Mapping[str, Any]) -> None:
        """Release a bound provider, in its mode."""
        record = binding_record.from_annotations(pod_view.annotations_of(provider))
        memo = self.state.peek_requester(record.uid) if record is not None else None
        if pod_view.is_launcher(provider):
            self.bound.unbind(provider, memo)
        else:
            self.direct.unbind(provider, memo)

    def _requester_deleting(self, requester: Mapping[str, Any], providers: list[dict[str, Any]]) -> float | None:
        """Unbind (or clean up) every bound provider; drop the requester finalizer only once none is left."""
        still_bound = False
        for provider in providers:
            for step in requester_plan.deletion_steps(_provider_state(provider)):
                if step == "delete-provider":
                    self.side.delete_pod(provider)  # troubled: delete instead of keeping a sleeper
                elif step == "release-provider-finalizer":
                    self.side.drop_provider_finalizer(provider)
                elif step == "unbind":
                    self.unbind(provider)
                elif step == "wait-for-provider":
                    still_bound = True
        if still_bound:
            return None  # the provider's deletion event brings us back
        self.side.write(
            requester,
            dual=None,
            instance=None,
            gpus=None,
            problems=requester_side.current_problems(requester),
            finalizer=False,
        )
        return None

    def _relay_provider_deletion(self, requester: Mapping[str, Any], provider: Mapping[str, Any]) -> None:
        """An exogenous provider deletion: hold, then delete the requester, then release the provider."""
        labels = pod_view.labels_of(requester)
        requester = self.side.write(
            requester,
            dual=pod_view.name(provider),
            instance=labels.get(keys.INSTANCE_LABEL),
            gpus=None,
            problems=requester_side.current_problems(requester),
            finalizer=True,
        )
        self.side.delete_requester(requester, "its server-providing Pod is being deleted")
        self.side.drop_provider_finalizer(provider)
