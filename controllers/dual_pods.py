"""The dual-pods controller: binds requesters to providers and drives sleep and wake.

Level-triggered (CONTRACT.md §7): every Pod, ISC, LauncherConfig, Node and
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

Launcher mode lives here; direct mode in ``direct_mode``.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

import kube
from controllers import (
    direct_mode,
    dpc_metrics,
    dpc_state,
    errors,
    launcher_selection,
    launcher_template,
    node_agents,
    pod_view,
    requester_plan,
    work_queue,
    workers,
)
from crds import (
    accelerators,
    binding_record,
    hashes,
    inference_server_config,
    keys,
    launcher_config,
    names,
    ports,
    requester_status,
    routing_metadata,
    vllm_config_annotation,
)
from crds import errors as crds_errors
from kube import resources

__all__ = ["DPCSettings", "DualPodsController", "Item"]

logger = logging.getLogger(__name__)

Item = tuple[str, str]
"""A work item: (kind, key)."""

_REQUESTER = "requester"
_LAUNCHER = "launcher"
_GC = "gc"
_ISC_STATUS = "isc-status"
_CLUSTER_GROUP = ""

_IDX_REQUESTER_UID = "requester-uid"
_IDX_BOUND_TO = "bound-to"
_IDX_LAUNCHER_NODE = "launcher-node"
_IDX_REQUESTER_NODE = "requester-node"
_IDX_REQUESTER_ISC = "requester-isc"
_IDX_NOMINAL = direct_mode.NOMINAL_INDEX
_IDX_DIRECT_NODE = direct_mode.DIRECT_NODE_INDEX

_BOUND_LAUNCHER_ANNOTATIONS = (
    keys.INSTANCE_ID_ANNOTATION,
    keys.SERVER_PORT_ANNOTATION,
    keys.VLLM_CONFIG_ANNOTATION,
    keys.ISC_ROUTING_METADATA_ANNOTATION,
)
_MULTIPLE_BOUND = "found multiple bound server-running Pods"
_SPI_FAST_POLLS = 40
"""Fast polls (about 15 s) of a starting requester agent before its failure is reported."""
_PENDING_PROVIDER_S = 10.0
"""How long a just-bound or just-created provider may take to show in the cache."""
_MAX_POLL = 1.0  # CONTRACT §7.5 allows up to 5 s; 1 s keeps a finished start from waiting long


class DPCSettings(pydantic.BaseModel):
    """How the dual-pods controller behaves (set from ``fma-controllers`` flags)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    namespace: str
    gpu_map_namespace: str | None = None
    """Where the ``gpu-map`` ConfigMap lives (default: the controllers' namespace)."""
    sleeper_limit: int = pydantic.Field(default=1, ge=0)
    num_workers: int = pydantic.Field(default=2, ge=1)
    debug_accelerator_memory: bool = True
    start_deadline_seconds: float = pydantic.Field(default=1800.0, gt=0)
    launcher_token: str | None = None
    launcher_token_secret: str | None = None
    http_timeout_seconds: float = 30.0


def _node_of_requester(pod: Mapping[str, Any]) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if pod_view.is_requester(pod) and node else []


def _index_requester_uid(pod: Mapping[str, Any]) -> list[str]:
    return [pod_view.uid(pod)] if pod_view.is_requester(pod) else []


def _index_bound_to(pod: Mapping[str, Any]) -> list[str]:
    if pod_view.is_requester(pod):
        return []
    record = binding_record.from_annotations(pod_view.annotations_of(pod))
    return [record.uid] if record is not None else []


def _index_launcher_node(pod: Mapping[str, Any]) -> list[str]:
    if not pod_view.is_launcher(pod):
        return []
    node = pod_view.node_of_provider(pod)
    return [node] if node else []


def _index_requester_isc(pod: Mapping[str, Any]) -> list[str]:
    if not pod_view.is_requester(pod):
        return []
    value = pod_view.annotations_of(pod).get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION)
    return [value] if value else []


def _index_nominal(pod: Mapping[str, Any]) -> list[str]:
    value = pod_view.annotations_of(pod).get(keys.NOMINAL_ANNOTATION)
    return [value] if value and not pod_view.is_requester(pod) else []


def _index_direct_node(pod: Mapping[str, Any]) -> list[str]:
    if not _index_nominal(pod):
        return []
    node = pod_view.node_of_provider(pod)
    return [node] if node else []


POD_INDEXERS: dict[str, kube.cache.Indexer] = {
    _IDX_REQUESTER_UID: _index_requester_uid,
    _IDX_BOUND_TO: _index_bound_to,
    _IDX_LAUNCHER_NODE: _index_launcher_node,
    _IDX_REQUESTER_NODE: _node_of_requester,
    _IDX_REQUESTER_ISC: _index_requester_isc,
    _IDX_NOMINAL: _index_nominal,
    _IDX_DIRECT_NODE: _index_direct_node,
}
"""Indexes the controllers' Pod cache needs; pass them to its ``WatchCache``."""


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class DualPodsController:
    """Reconciles requesters, providers and launchers of one namespace."""

    def __init__(
        self,
        api: kube.Client,
        *,
        settings: DPCSettings,
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
        self.agents = agents
        self.events = events
        self.metrics = metrics
        self.state = dpc_state.DPCState()
        self._monotonic = monotonic
        self._wall = wall_clock
        self.queue: work_queue.GroupedQueue[str, Item] = work_queue.GroupedQueue(
            observer=dpc_metrics.InnerQueueObserver(metrics)
        )
        self._workers = workers.Workers(self.queue, self.reconcile, name="dual-pods", count=settings.num_workers)
        self._active = threading.Event()
        self.direct = direct_mode.DirectMode(self)

    @property
    def namespace(self) -> str:
        """The controllers' namespace."""
        return self.settings.namespace

    @property
    def gpu_map_namespace(self) -> str:
        """Where ``gpu-map`` lives."""
        return self.settings.gpu_map_namespace or self.settings.namespace

    def monotonic(self) -> float:
        """Now, on the controller's monotonic clock."""
        return self._monotonic()

    @property
    def sleeper_limit(self) -> int:
        """Sleepers allowed per GPU (direct mode)."""
        return self.settings.sleeper_limit

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
            self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, str(isc["metadata"]["name"])))
        self._workers.start()

    def stop(self) -> None:
        """Stop the workers, letting in-flight reconciles finish."""
        self._active.clear()
        self._workers.stop()

    # --- event handlers: map changes to work items -------------------------------------------

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
                iscs.update(_index_requester_isc(pod))
        for isc_name in sorted(iscs):
            self._refresh_requester_count(isc_name)

    def _refresh_requester_count(self, isc_name: str) -> None:
        """Set ``fma_requester_count`` of one ISC from the cache (level-based, so never stale).

        It counts the Pods whose ISC annotation names it, scheduled or not,
        leaving out those being deleted; an ISC with none left shows 0.
        """
        requesters = self.pods.by_index(_IDX_REQUESTER_ISC, isc_name)
        count = sum(1 for pod in requesters if not pod_view.is_deleting(pod))
        self.metrics.requester_count.labels(isc_name=isc_name).set(count)

    def _requesters_naming(self, isc_names: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in isc_names:
            found.extend(self.pods.by_index(_IDX_REQUESTER_ISC, name))
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
        self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, name))
        if old is not None and new is not None and old.get("spec") != new.get("spec"):
            for node in self.pods.index_values(_IDX_LAUNCHER_NODE):
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
            self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, name))

    def _on_gpu_map(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if new is None or (old is not None and old.get("data") == new.get("data")):
            return
        self._enqueue_requesters([p for p in self.pods.items() if pod_view.is_requester(p)])

    def _on_node(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        self._enqueue_requesters(self.pods.by_index(_IDX_REQUESTER_NODE, key))

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
            return self.reconcile_unbound_launcher(node, key)
        if kind == _GC:
            return self.collect_obsolete(node, key)
        if kind == _ISC_STATUS:
            return self.write_isc_status(key)
        raise errors.TerminalError(f"unknown work item kind {kind!r}")

    # --- requester-side writes ------------------------------------------------------------------

    def requester_write(
        self,
        requester: Mapping[str, Any],
        *,
        dual: str | None,
        instance: str | None,
        gpus: list[str] | None,
        problems: list[str],
        finalizer: bool,
        refresh_on_conflict: bool = True,
    ) -> dict[str, Any]:
        """At most one write of the requester's FMA metadata, skipped if nothing changes (§7.2).

        The write carries the resourceVersion read.  If it conflicts, the
        cache lagged someone else's write (usually the kubelet's status
        update, which cannot touch these fields): the Pod is read once from
        the apiserver and the write decided again on it, rather than failing
        the reconcile.  A second conflict propagates (retried with back-off).
        """
        current_labels = pod_view.labels_of(requester)
        current_notes = pod_view.annotations_of(requester)
        label_patch: dict[str, str | None] = {}
        for key, value in ((keys.DUAL_LABEL, dual), (keys.INSTANCE_LABEL, instance)):
            if current_labels.get(key) != value:
                label_patch[key] = value
        note_patch: dict[str, str | None] = {}
        status_value = requester_status.format_errors(problems)
        try:
            current_problems = requester_status.parse(current_notes.get(keys.STATUS_ANNOTATION))
        except crds_errors.CrdsError:
            current_problems = ["<unparsable>"]
        if current_problems != problems or (problems == [] and keys.STATUS_ANNOTATION not in current_notes):
            note_patch[keys.STATUS_ANNOTATION] = status_value
        if gpus is not None:
            csv = accelerators.format_uuids(gpus)
            if current_notes.get(keys.ACCELERATORS_ANNOTATION) != csv:
                note_patch[keys.ACCELERATORS_ANNOTATION] = csv
        fins = pod_view.finalizers(requester)
        has = keys.REQUESTER_FINALIZER in fins
        new_fins: list[str] | None = None
        if finalizer and not has and not pod_view.is_deleting(requester):
            new_fins = [*fins, keys.REQUESTER_FINALIZER]
        elif not finalizer and has:
            new_fins = [f for f in fins if f != keys.REQUESTER_FINALIZER]
        if not label_patch and not note_patch and new_fins is None:
            return dict(requester)
        meta: dict[str, Any] = {"resourceVersion": requester["metadata"]["resourceVersion"]}
        if label_patch:
            meta["labels"] = label_patch
        if note_patch:
            meta["annotations"] = note_patch
        if new_fins is not None:
            meta["finalizers"] = new_fins
        name = pod_view.name(requester)
        try:
            return self.api.patch(resources.PODS, name, {"metadata": meta}, self.settings.namespace)
        except kube.errors.Conflict:
            if not refresh_on_conflict:
                raise
            fresh = self.api.get_or_none(resources.PODS, name, self.settings.namespace)
            if fresh is None or pod_view.uid(fresh) != pod_view.uid(requester):
                raise
            logger.info("requester changed since the cache read; deciding the write again", extra={"pod": name})
            return self.requester_write(
                fresh,
                dual=dual,
                instance=instance,
                gpus=gpus,
                problems=problems,
                finalizer=finalizer,
                refresh_on_conflict=False,
            )

    def report(self, requester: Mapping[str, Any], problem: str, *, gpus: list[str] | None = None) -> dict[str, Any]:
        """Show a user-facing problem in the requester's status annotation and as a Warning Event.

        Returns the requester as written (callers that go on writing use its resourceVersion).
        """
        current = []
        with contextlib.suppress(crds_errors.CrdsError):
            current = requester_status.parse(pod_view.annotations_of(requester).get(keys.STATUS_ANNOTATION))
        if current != [problem]:
            self.events.record(_with_kind(requester), "Warning", names.EVENT_ACTUATION_FAILED, problem)
        return self.requester_write(
            requester,
            dual=pod_view.labels_of(requester).get(keys.DUAL_LABEL),
            instance=pod_view.labels_of(requester).get(keys.INSTANCE_LABEL),
            gpus=gpus,
            problems=[problem],
            finalizer=keys.REQUESTER_FINALIZER in pod_view.finalizers(requester),
        )

    def delete_requester(self, requester: Mapping[str, Any], why: str) -> None:
        """Delete a requester with UID and resourceVersion preconditions (its set replaces it).

        Only a delete that went through makes the controller ignore the
        requester until its deletion shows; a conflict (the cache was stale)
        is retried with back-off.
        """
        logger.info("deleting requester", extra={"pod": pod_view.name(requester), "reason": why})
        try:
            self.delete_pod(requester)
        except kube.errors.Conflict as exc:
            raise errors.RetryableError(f"deleting requester {pod_view.name(requester)!r} conflicted") from exc
        self.state.requester(pod_view.uid(requester)).deleting_requester = True

    def delete_pod(self, pod: Mapping[str, Any]) -> None:
        """Delete a Pod with uid+resourceVersion preconditions; NotFound and Gone count as success.

        A ``Conflict`` (the Pod changed since it was read) propagates.
        """
        with contextlib.suppress(kube.errors.NotFound, kube.errors.Gone):
            self.api.delete(
                resources.PODS,
                pod_view.name(pod),
                self.settings.namespace,
                uid=pod_view.uid(pod),
                resource_version=str(pod["metadata"]["resourceVersion"]),
                propagation_policy="Background",
            )

    # --- the requester item -----------------------------------------------------------------------

    def _gpus(self, requester: Mapping[str, Any], memo: dpc_state.RequesterMemo) -> list[str] | str | None:
        """The requester's GPUs (fetched once), a problem for its status, or None while it has no IP.

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
            return str(exc)
        uuids = self.agents.gpu_uuids(ip, port)
        if not uuids:
            return "the assigned set of GPUs is empty"
        memo.gpus = uuids
        return uuids

    def reconcile_requester(self, node: str, uid: str) -> float | None:
        """Reconcile a requester and its bound provider (or the provider of a vanished requester)."""
        requesters = self.pods.by_index(_IDX_REQUESTER_UID, uid)
        requester: dict[str, Any] | None = requesters[0] if requesters else None
        providers = self.pods.by_index(_IDX_BOUND_TO, uid)
        if requester is None:
            for orphan in providers:
                self.unbind(orphan, None)
            self._forget(uid)
            return None
        memo = self.state.requester(uid)
        memo.node = node
        if pod_view.is_deleting(requester):
            return self._requester_deleting(requester, providers)
        if len(providers) > 1:
            self.report(requester, _MULTIPLE_BOUND)
            raise errors.TerminalError(_MULTIPLE_BOUND)
        provider = providers[0] if providers else None
        if memo.deleting_requester:
            return None  # we deleted it; wait until the deletion shows
        if provider is not None:
            memo.pending_provider = None
        elif memo.pending_provider is not None:
            # We just bound or created a provider; until the cache shows it, do not choose again.
            if self._monotonic() - memo.pending_since < _PENDING_PROVIDER_S:
                return 0.2
            memo.pending_provider = None
        if provider is not None and pod_view.is_deleting(provider):
            return self._relay_provider_deletion(requester, provider)
        node_obj = self.nodes.get(node)
        if node_obj is None or (node_obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if provider is None and (node_obj.get("spec") or {}).get("unschedulable"):
            self.delete_requester(requester, "its node is unschedulable")
            return None
        try:
            gpus = self._gpus(requester, memo)
        except errors.EngineHTTPError as exc:
            # The requester agent is usually just starting: poll briefly instead of
            # backing off for seconds, because this is on every actuation's path.
            # If it keeps failing, say so in the status and fall back to back-off.
            memo.spi_failures += 1
            if memo.spi_failures <= _SPI_FAST_POLLS:
                delay = memo.spi_poll
                memo.spi_poll = min(memo.spi_poll * 1.25, 0.5)
                return delay
            self.report(requester, str(exc))
            raise
        memo.spi_failures = 0
        if gpus is None:
            return None  # no IP yet: the Pod event that assigns it brings us back
        if isinstance(gpus, str):
            self.report(requester, gpus)
            return None
        notes = pod_view.annotations_of(requester)
        if keys.INFERENCE_SERVER_CONFIG_ANNOTATION in notes:
            return self._launcher_mode(requester, provider, gpus, memo)
        return self.direct.reconcile(requester, provider, gpus, memo)

    def _forget(self, uid: str) -> None:
        memo = self.state.forget_requester(uid)
        if memo is not None:
            self._clear_duality(memo)

    def _requester_deleting(self, requester: Mapping[str, Any], providers: list[dict[str, Any]]) -> float | None:
        """Unbind (or clean up) every bound provider; drop the requester finalizer only once none is left."""
        still_bound = False
        for provider in providers:
            state: requester_plan.ProviderState = "healthy"
            if pod_view.is_deleting(provider):
                state = "deleting"
            elif pod_view.is_failed(provider) or (pod_view.restarts(provider) > 0 and not pod_view.is_ready(provider)):
                state = "troubled"
            for step in requester_plan.deletion_steps(state):
                if step == "delete-provider":
                    self.delete_pod(provider)  # troubled: delete instead of keeping a sleeper
                elif step == "release-provider-finalizer":
                    self._drop_provider_finalizer(provider)
                elif step == "unbind":
                    self.unbind(provider, requester)
                elif step == "wait-for-provider":
                    still_bound = True
        if still_bound:
            return None  # the provider's deletion event brings us back
        self.requester_write(
            requester, dual=None, instance=None, gpus=None, problems=_current_problems(requester), finalizer=False
        )
        return None

    def _relay_provider_deletion(self, requester: Mapping[str, Any], provider: Mapping[str, Any]) -> float | None:
        """An exogenous provider deletion: hold, then delete the requester, then release the provider (§7.3)."""
        labels = pod_view.labels_of(requester)
        requester = self.requester_write(
            requester,
            dual=pod_view.name(provider),
            instance=labels.get(keys.INSTANCE_LABEL),
            gpus=None,
            problems=_current_problems(requester),
            finalizer=True,
        )
        self.delete_requester(requester, "its server-providing Pod is being deleted")
        self._drop_provider_finalizer(provider)
        return None

    def _drop_provider_finalizer(self, provider: Mapping[str, Any]) -> None:
        fins = pod_view.finalizers(provider)
        if keys.PROVIDER_FINALIZER not in fins:
            return
        with contextlib.suppress(kube.errors.NotFound):
            self.api.patch(
                resources.PODS,
                pod_view.name(provider),
                {
                    "metadata": {
                        "resourceVersion": provider["metadata"]["resourceVersion"],
                        "finalizers": [f for f in fins if f != keys.PROVIDER_FINALIZER],
                    }
                },
                self.settings.namespace,
            )

    # --- launcher mode: choosing and binding ----------------------------------------------------------

    def _isc_and_lc(
        self, requester: Mapping[str, Any]
    ) -> tuple[inference_server_config.InferenceServerConfig, dict[str, Any], launcher_config.LauncherConfig] | str:
        isc_name = pod_view.annotations_of(requester).get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION, "")
        if not isc_name:
            return f'empty value for annotation "{keys.INFERENCE_SERVER_CONFIG_ANNOTATION}"'
        raw_isc = self.iscs.get_by_name(isc_name, self.settings.namespace)
        if raw_isc is None:
            return f'failed to get InferenceServerConfig "{isc_name}": not found'
        try:
            isc = inference_server_config.InferenceServerConfig.model_validate(raw_isc)
        except pydantic.ValidationError as exc:
            return f'failed to get InferenceServerConfig "{isc_name}": invalid: {_summary(exc)}'
        lc_name = isc.spec.launcher_config_name
        raw_lc = self.lcs.get_by_name(lc_name, self.settings.namespace)
        if raw_lc is None:
            return f'failed to get LauncherConfig "{lc_name}" of InferenceServerConfig "{isc_name}": not found'
        try:
            lc = launcher_config.LauncherConfig.model_validate(raw_lc)
        except pydantic.ValidationError as exc:
            return f'LauncherConfig "{lc_name}" is malformed: {_summary(exc)}'
        malformed = launcher_template.malformation(raw_lc)
        if malformed:
            return f'LauncherConfig "{lc_name}" is malformed: {malformed}'
        return isc, raw_lc, lc

    def _desired(
        self, isc: inference_server_config.InferenceServerConfig, gpus: list[str]
    ) -> tuple[str, int, vllm_config_annotation.VllmConfig, routing_metadata.RoutingMetadata]:
        server = isc.spec.model_server_config
        instance_id = hashes.instance_id(server, gpus)
        options = (server.options or "") + f" --port {server.port}"
        vllm = vllm_config_annotation.VllmConfig(
            options=options,
            gpu_uuids=list(gpus) or None,
            env_vars=dict(server.env_vars) if server.env_vars else None,
            annotations={
                names.INSTANCE_ISC_NAME: isc.metadata.name,
                names.INSTANCE_INFERENCE_PORT: str(server.port),
                names.INSTANCE_CONFIG_KEY: hashes.config_key(server),
            },
        )
        return instance_id, server.port, vllm, server.routing()

    def _launchers_on(self, node: str, config_hash: str) -> list[dict[str, Any]]:
        return [
            pod
            for pod in self.pods.by_index(_IDX_LAUNCHER_NODE, node)
            if pod_view.annotations_of(pod).get(keys.LAUNCHER_CONFIG_HASH_ANNOTATION) == config_hash
        ]

    def _candidate(self, pod: Mapping[str, Any]) -> launcher_selection.Candidate | None:
        unusable = (
            pod_view.is_failed(pod)
            or pod_view.is_deleting(pod)
            or binding_record.from_annotations(pod_view.annotations_of(pod)) is not None
            or pod_view.labels_of(pod).get(keys.LAUNCHER_STUCK_LABEL) == keys.STUCK_TRUE
        )
        ip = pod_view.pod_ip(pod)
        ready = ip is not None and pod_view.is_ready(pod)
        if unusable or not ready or ip is None:
            return launcher_selection.Candidate(pod_view.name(pod), ready=ready, unusable=unusable)
        try:
            listing = self.agents.list_instances(ip)
        except errors.EngineHTTPError as exc:
            # One unreachable launcher must not stall the node: treat it as not ready.
            logger.warning("launcher unreachable", extra={"launcher": pod_view.name(pod), "error": str(exc)})
            return launcher_selection.Candidate(pod_view.name(pod), ready=False, unusable=False)
        views = []
        for state in listing.get("instances") or []:
            notes = state.get("annotations") or {}
            try:
                port: int | None = ports.parse_port(
                    names.INSTANCE_INFERENCE_PORT, str(notes.get(names.INSTANCE_INFERENCE_PORT))
                )
            except crds_errors.CrdsError:
                port = None
            views.append(
                launcher_selection.InstanceView(str(state["instance_id"]), port, state.get("status") == "stopped")
            )
        self.state.discover(pod_view.name(pod), [v.instance_id for v in views], self._monotonic())
        return launcher_selection.Candidate(pod_view.name(pod), ready=True, unusable=False, instances=tuple(views))

    def _launcher_mode(
        self,
        requester: Mapping[str, Any],
        provider: Mapping[str, Any] | None,
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        if provider is not None:
            return self._bound_launcher(requester, provider, gpus, memo)
        resolved = self._isc_and_lc(requester)
        if isinstance(resolved, str):
            self.report(requester, resolved, gpus=gpus)
            return None
        isc, raw_lc, lc = resolved
        node = str(requester["spec"]["nodeName"])
        try:
            template_hash = launcher_template.template_hash(raw_lc)
        except errors.UserError as exc:
            self.report(requester, str(exc), gpus=gpus)
            return None
        config_hash = launcher_template.config_hash(template_hash, node)
        instance_id, port, vllm, routing = self._desired(isc, gpus)
        backoff = self.state.start_backoff(node, hashes.config_key(isc.spec.model_server_config))
        wait = backoff.not_before - self._monotonic()
        if wait > 0:
            return wait
        candidates: list[launcher_selection.Candidate] = []
        for pod in self._launchers_on(node, config_hash):
            candidate = self._candidate(pod)
            if candidate is None:
                continue
            garbage = launcher_selection.cleanup_needed(candidate) if not candidate.unusable else ()
            if garbage:
                ip = pod_view.pod_ip(pod)
                assert ip is not None
                for instance in garbage:
                    self.agents.delete_instance(ip, instance)
                candidate = self._candidate(pod)
                if candidate is None:
                    continue
            candidates.append(candidate)
        choice = launcher_selection.choose(
            candidates,
            instance_id=instance_id,
            port=port,
            max_instances=lc.spec.max_instances,
            last_used=self.state.last_used(),
        )
        logger.info(
            "launcher chosen",
            extra={"pod": pod_view.name(requester), "node": node, "action": choice.action, "launcher": choice.launcher},
        )
        if choice.action == "wait":
            return None  # a launcher's readiness change re-enqueues us
        bound_notes = {
            keys.INSTANCE_ID_ANNOTATION: instance_id,
            keys.SERVER_PORT_ANNOTATION: ports.format_port(port),
            keys.VLLM_CONFIG_ANNOTATION: vllm.format(),
            keys.ISC_ROUTING_METADATA_ANNOTATION: routing.format(),
        }
        if choice.action == "new":
            created = self._create_bound_launcher(requester, raw_lc, node, bound_notes)
            memo.path = "cold"
            memo.pending_provider, memo.pending_since = created, self._monotonic()
            return None
        assert choice.launcher is not None
        launcher = self.pods.get_by_name(choice.launcher, self.settings.namespace)
        if launcher is None:
            raise errors.RetryableError(f"launcher {choice.launcher!r} vanished from the cache")
        if choice.victims:
            ip = pod_view.pod_ip(launcher)
            assert ip is not None
            for victim in choice.victims:
                self.agents.delete_instance(ip, victim)
            memo.instances_deleted += len(choice.victims)
        self._bind_launcher(requester, launcher, bound_notes)
        memo.path = "hot" if choice.action == "hot" else "warm"
        memo.pending_provider, memo.pending_since = choice.launcher, self._monotonic()
        self.state.touch(choice.launcher, instance_id, self._monotonic())
        return None

    def _create_bound_launcher(
        self, requester: Mapping[str, Any], raw_lc: Mapping[str, Any], node: str, bound_notes: dict[str, str]
    ) -> str:
        body = launcher_template.specialise(raw_lc, node, auth_token_secret=self.settings.launcher_token_secret)
        meta = body.setdefault("metadata", {})
        meta.setdefault("annotations", {}).update(
            {keys.REQUESTER_ANNOTATION: binding_record.format_record(pod_view.uid(requester), pod_view.name(requester))}
        )
        meta["annotations"].update(bound_notes)
        meta.setdefault("labels", {})[keys.DUAL_LABEL] = pod_view.name(requester)
        meta["finalizers"] = [*meta.get("finalizers", []), keys.PROVIDER_FINALIZER]
        lc_name = str(raw_lc["metadata"]["name"])
        started = time.monotonic()
        success = "false"
        try:
            created = self.api.create(resources.PODS, body, self.settings.namespace)
            success = "true"
        finally:
            self.metrics.launcher_create_seconds.labels(
                exported_namespace=self.settings.namespace, lcfg_name=lc_name, success=success
            ).observe(time.monotonic() - started)
        logger.info(
            "created bound launcher", extra={"pod": pod_view.name(requester), "launcher": pod_view.name(created)}
        )
        return pod_view.name(created)

    def _bind_launcher(
        self, requester: Mapping[str, Any], launcher: Mapping[str, Any], bound_notes: dict[str, str]
    ) -> None:
        """The bind write: one provider update carrying the resourceVersion read (§7.2)."""
        fins = pod_view.finalizers(launcher)
        notes: dict[str, str] = {
            keys.REQUESTER_ANNOTATION: binding_record.format_record(pod_view.uid(requester), pod_view.name(requester)),
            **bound_notes,
        }
        try:
            self.api.patch(
                resources.PODS,
                pod_view.name(launcher),
                {
                    "metadata": {
                        "resourceVersion": launcher["metadata"]["resourceVersion"],
                        "annotations": notes,
                        "labels": {keys.DUAL_LABEL: pod_view.name(requester)},
                        "finalizers": fins if keys.PROVIDER_FINALIZER in fins else [*fins, keys.PROVIDER_FINALIZER],
                    }
                },
                self.settings.namespace,
            )
        except kube.errors.Conflict as exc:
            raise errors.RetryableError(f"binding to launcher {pod_view.name(launcher)!r} conflicted") from exc

    # --- launcher mode: the bound path ----------------------------------------------------------------

    def _bound_launcher(
        self,
        requester: Mapping[str, Any],
        launcher: Mapping[str, Any],
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        notes = pod_view.annotations_of(launcher)
        memo.provider = pod_view.name(launcher)
        instance_id = notes.get(keys.INSTANCE_ID_ANNOTATION, "")
        try:
            port = ports.parse_port(keys.SERVER_PORT_ANNOTATION, notes.get(keys.SERVER_PORT_ANNOTATION, ""))
            vllm = vllm_config_annotation.parse(notes.get(keys.VLLM_CONFIG_ANNOTATION, ""))
            committed = routing_metadata.parse(notes.get(keys.ISC_ROUTING_METADATA_ANNOTATION))
        except crds_errors.CrdsError as exc:
            self.report(requester, f"the bound launcher's commitment is unreadable: {exc}", gpus=gpus)
            return None
        if not instance_id:
            self.report(requester, "the bound launcher has no instance-id annotation", gpus=gpus)
            return None
        self.set_duality(requester, launcher, instance_id, gpus, 1)
        # The requester side: dual and instance labels, accelerators, finalizer, no errors.
        requester = self.requester_write(
            requester,
            dual=pod_view.name(launcher),
            instance=instance_id,
            gpus=gpus,
            problems=[memo.deadline_problem] if memo.deadline_problem else [],
            finalizer=True,
        )
        if pod_view.is_failed(launcher):
            memo.asleep_or_dead = True
            self.delete_requester(requester, "its launcher Pod failed")
            return None
        ip = pod_view.pod_ip(launcher)
        if ip is None or not pod_view.is_ready(launcher):
            return None  # the launcher's next Pod event re-enqueues us
        state = self.agents.get_instance(ip, instance_id)
        config_key = (vllm.annotations or {}).get(names.INSTANCE_CONFIG_KEY, "")
        node = str(requester["spec"]["nodeName"])
        if state is None:
            if memo.instance_known:
                memo.asleep_or_dead = True
                self.delete_requester(requester, "its bound instance vanished")
                return None
            self.agents.create_instance(ip, instance_id, vllm.model_dump(exclude_none=True))
            if memo.path is None:
                memo.path = "warm"
            memo.instance_known = True
            self.state.touch(pod_view.name(launcher), instance_id, self._monotonic())
            return memo.poll_delay
        memo.instance_known = True
        if state.get("status") == "stopped":
            memo.asleep_or_dead = True
            if not memo.engine_answered and memo.path in ("warm", "cold"):
                requester = self._start_failed(
                    requester,
                    memo,
                    ip=ip,
                    instance_id=instance_id,
                    node=node,
                    config_key=config_key,
                    state=state,
                    isc_name=(vllm.annotations or {}).get(names.INSTANCE_ISC_NAME, ""),
                )
            self.delete_requester(requester, "its bound instance stopped")
            return None
        try:
            sleeping = self.agents.is_sleeping(ip, port)
        except errors.EngineHTTPError:
            if memo.path is None:
                memo.path = "warm"  # a loading engine is a start, also when a new leader resumes the actuation
            now = self._monotonic()
            if memo.waiting_since is None:
                memo.waiting_since = now
            elif now - memo.waiting_since > self.settings.start_deadline_seconds and not memo.deadline_problem:
                # Reported once and kept in the status while the poll goes on (§7.5).
                deadline = self.settings.start_deadline_seconds
                memo.deadline_problem = f"the engine has not answered within {deadline:g} s of binding; still waiting"
                self.report(requester, memo.deadline_problem, gpus=gpus)
                if not memo.engine_answered:
                    self._count_start_failure(
                        memo, (vllm.annotations or {}).get(names.INSTANCE_ISC_NAME, ""), "deadline"
                    )
            delay = memo.poll_delay
            memo.poll_delay = min(memo.poll_delay * 1.5, _MAX_POLL)
            return delay  # still loading; an inventory change also re-enqueues us
        memo.engine_answered = True
        memo.poll_delay = 0.25
        memo.waiting_since = None
        if memo.deadline_problem:
            memo.deadline_problem = None
            requester = self.requester_write(
                requester, dual=pod_view.name(launcher), instance=instance_id, gpus=gpus, problems=[], finalizer=True
            )
        if config_key:
            forgotten = self.state.clear_start_backoff(node, config_key)
            if forgotten is not None and forgotten.isc:
                self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, forgotten.isc))
        if sleeping:
            if self.settings.debug_accelerator_memory and not self._memory_ok(requester, gpus):
                return 1.0
            self.agents.wake(ip, port)
            self.state.touch(pod_view.name(launcher), instance_id, self._monotonic())
            if memo.path is None:
                memo.path = "hot"
            if self.agents.is_sleeping(ip, port):
                return 0.25  # the engine answered before applying the wake
        if memo.path is None:
            memo.path = "hot"
        if self._mark_awake(requester, launcher, committed) is None:
            return None
        return self.relay(
            requester, ready=True, memo=memo, isc_name=(vllm.annotations or {}).get(names.INSTANCE_ISC_NAME, "")
        )

    def _memory_ok(self, requester: Mapping[str, Any], gpus: list[str]) -> bool:
        ip = pod_view.pod_ip(requester)
        if ip is None:
            return False
        usage = self.agents.accelerator_memory(ip, ports.admin_port(pod_view.annotations_of(requester)))
        limit = self.settings.sleeper_limit * 4096
        return all(usage.get(gpu, 0) <= limit for gpu in gpus)

    def _count_start_failure(self, memo: dpc_state.RequesterMemo, isc_name: str, reason: str) -> None:
        """Count one failed engine start in ``fma_start_failures_total`` (at most once per binding)."""
        if memo.start_failure_counted:
            return
        memo.start_failure_counted = True
        self.metrics.start_failures.labels(
            exported_namespace=self.settings.namespace, isc_name=isc_name, reason=reason
        ).inc()

    def _start_failed(
        self,
        requester: Mapping[str, Any],
        memo: dpc_state.RequesterMemo,
        *,
        ip: str,
        instance_id: str,
        node: str,
        config_key: str,
        state: Mapping[str, Any],
        isc_name: str,
    ) -> dict[str, Any]:
        tail = self.agents.instance_log_tail(ip, instance_id)
        lines = " | ".join(tail.strip().splitlines()[-5:])
        problem = f"the engine stopped before it ever answered (exit code {state.get('exit_code')}): {lines}"
        written = self.report(requester, problem)
        self._count_start_failure(memo, isc_name, "exited")
        backoff = self.state.start_backoff(node, config_key)
        backoff.failures += 1
        backoff.not_before = self._monotonic() + min(600.0, 10.0 * 2 ** (backoff.failures - 1))
        backoff.isc, backoff.message = isc_name, problem
        if isc_name:
            self.queue.add(_CLUSTER_GROUP, (_ISC_STATUS, isc_name))
        return written

    def _mark_awake(
        self,
        requester: Mapping[str, Any],
        launcher: Mapping[str, Any],
        committed: routing_metadata.RoutingMetadata,
    ) -> dict[str, Any] | None:
        """One launcher write: ``sleeping=false`` plus the committed routing metadata (§7.7 step 4)."""
        labels = pod_view.labels_of(launcher)
        notes = pod_view.annotations_of(launcher)
        label_patch: dict[str, str] = {}
        note_patch: dict[str, str] = {}
        if labels.get(keys.SLEEPING_LABEL) != keys.SLEEPING_FALSE:
            label_patch[keys.SLEEPING_LABEL] = keys.SLEEPING_FALSE
        problems = committed.problems()
        for key, value in committed.labels.items():
            if labels.get(key) != value:
                if key in labels:
                    problems.append(f"routing label {key!r} collides with an existing label")
                label_patch[key] = value
        for key, value in committed.annotations.items():
            if notes.get(key) != value:
                if key in notes:
                    problems.append(f"routing annotation {key!r} collides with an existing annotation")
                note_patch[key] = value
        if problems:
            message = "; ".join(problems)
            self.events.record(_with_kind(requester), "Warning", names.EVENT_OUTDATED_ROUTING_METADATA, message)
            self.delete_requester(requester, "its committed routing metadata is invalid")
            return None
        if not label_patch and not note_patch:
            return dict(launcher)
        meta: dict[str, Any] = {"resourceVersion": launcher["metadata"]["resourceVersion"]}
        if label_patch:
            meta["labels"] = label_patch
        if note_patch:
            meta["annotations"] = note_patch
        try:
            return self.api.patch(resources.PODS, pod_view.name(launcher), {"metadata": meta}, self.settings.namespace)
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("marking the launcher awake conflicted") from exc

    def relay(
        self, requester: Mapping[str, Any], *, ready: bool, memo: dpc_state.RequesterMemo, isc_name: str
    ) -> float | None:
        """Relay readiness to the requester agent; observe the actuation once (§7.7 step 5)."""
        decision = requester_plan.relay_decision(
            serving=ready,
            requester_ready=bool(pod_view.container_status(requester).get("ready")),
            relayed_before=memo.relayed_ready,
        )
        if decision.call is not None:
            ip = pod_view.pod_ip(requester)
            if ip is None:
                return None
            self.agents.relay_ready(
                ip, ports.admin_port(pod_view.annotations_of(requester)), decision.call == "become-ready"
            )
        if decision.mark_relayed:
            memo.relayed_ready = True
        if decision.observe_actuation:
            started = _parse_time(pod_view.started_at(requester))
            seconds = max(0.0, self._wall() - started) if started is not None else 0.0
            path = memo.path or "hot"
            self.metrics.actuation_seconds.labels(
                exported_namespace=self.settings.namespace,
                path=path,
                instancesDeleted=str(memo.instances_deleted),
                isc_name=isc_name,
            ).observe(seconds)
            reason = {"hot": names.EVENT_ACTUATED_HOT, "warm": names.EVENT_ACTUATED_WARM}.get(
                path, names.EVENT_ACTUATED_COLD
            )
            self.events.record(_with_kind(requester), "Normal", reason, f"{path} actuation in {seconds:.2f}s")
        return None

    # --- unbinding (§7.8) ----------------------------------------------------------------------------------

    def unbind(self, provider: Mapping[str, Any], requester: Mapping[str, Any] | None) -> None:
        """Put the provider's engine to sleep (or delete an obsolete one), then release the provider."""
        record = binding_record.from_annotations(pod_view.annotations_of(provider))
        memo = self.state.peek_requester(record.uid) if record is not None else None
        if not pod_view.is_launcher(provider):
            self.direct.unbind(provider, memo)
            return
        notes = pod_view.annotations_of(provider)
        labels = pod_view.labels_of(provider)
        try:
            committed = routing_metadata.parse(notes.get(keys.ISC_ROUTING_METADATA_ANNOTATION))
        except crds_errors.CrdsError:
            committed = routing_metadata.RoutingMetadata()
        # 1. Stop routing first, while the engine can still serve.
        route_labels = {k: None for k, v in committed.labels.items() if labels.get(k) == v}
        route_notes = {k: None for k, v in committed.annotations.items() if notes.get(k) == v}
        if route_labels or route_notes:
            meta: dict[str, Any] = {"resourceVersion": provider["metadata"]["resourceVersion"]}
            if route_labels:
                meta["labels"] = route_labels
            if route_notes:
                meta["annotations"] = route_notes
            try:
                provider = self.api.patch(
                    resources.PODS, pod_view.name(provider), {"metadata": meta}, self.settings.namespace
                )
            except kube.errors.Conflict as exc:
                raise errors.RetryableError("removing routing metadata conflicted") from exc
        # 2. Sleep, or delete an obsolete instance.
        instance_id = notes.get(keys.INSTANCE_ID_ANNOTATION, "")
        ip = pod_view.pod_ip(provider)
        dead = memo is not None and memo.asleep_or_dead
        if instance_id and ip is not None and not dead and not pod_view.is_deleting(provider):
            self._sleep_or_delete(provider, ip, instance_id, notes)
        # 3. One provider write releasing it.
        release_notes: dict[str, None] = {
            k: None for k in (keys.REQUESTER_ANNOTATION, *_BOUND_LAUNCHER_ANNOTATIONS) if k in notes
        }
        fins = pod_view.finalizers(provider)
        release: dict[str, Any] = {
            "resourceVersion": provider["metadata"]["resourceVersion"],
            "labels": {keys.SLEEPING_LABEL: keys.SLEEPING_TRUE, keys.DUAL_LABEL: None},
            "annotations": release_notes,
        }
        if keys.PROVIDER_FINALIZER in fins:
            release["finalizers"] = [f for f in fins if f != keys.PROVIDER_FINALIZER]
        try:
            self.api.patch(resources.PODS, pod_view.name(provider), {"metadata": release}, self.settings.namespace)
        except kube.errors.NotFound:
            pass
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("releasing the launcher conflicted") from exc
        if instance_id:
            self.state.touch(pod_view.name(provider), instance_id, self._monotonic())
        logger.info("unbound launcher", extra={"launcher": pod_view.name(provider)})

    def _sleep_or_delete(self, provider: Mapping[str, Any], ip: str, instance_id: str, notes: dict[str, str]) -> None:
        try:
            port = ports.parse_port(keys.SERVER_PORT_ANNOTATION, notes.get(keys.SERVER_PORT_ANNOTATION, ""))
        except crds_errors.CrdsError:
            return
        obsolete = False
        try:
            state = self.agents.get_instance(ip, instance_id)
            if state is None:
                return  # already gone
            if state.get("status") == "stopped":
                return
            obsolete = self._recomputed_id(state) not in (None, instance_id)
        except errors.EngineHTTPError:
            obsolete = False  # the check failed: fall back to sleeping
        if obsolete:
            self.agents.delete_instance(ip, instance_id)
            return
        self.agents.sleep(ip, port)
        if not self.agents.is_sleeping(ip, port):
            raise errors.RetryableError("the engine does not report sleeping yet")

    def _recomputed_id(self, state: Mapping[str, Any]) -> str | None:
        """The ID an instance would have now under its ISC, or None if unknowable."""
        isc_name = (state.get("annotations") or {}).get(names.INSTANCE_ISC_NAME)
        gpus = list(state.get("gpu_uuids") or [])
        if not isc_name or not gpus:
            return None
        raw = self.iscs.get_by_name(str(isc_name), self.settings.namespace)
        if raw is None:
            return "<isc-gone>"
        try:
            isc = inference_server_config.InferenceServerConfig.model_validate(raw)
        except pydantic.ValidationError:
            return None
        return hashes.instance_id(isc.spec.model_server_config, gpus)

    # --- unbound launchers and GC (§7.9) --------------------------------------------------------------

    def reconcile_unbound_launcher(self, node: str, name: str) -> float | None:
        """Sync an unbound launcher; wake the requesters waiting on its node."""
        pod = self.pods.get_by_name(name, self.settings.namespace)
        if pod is None:
            self.state.forget_launcher(name)
        elif binding_record.from_annotations(pod_view.annotations_of(pod)) is None:
            ip = pod_view.pod_ip(pod)
            if ip is not None and pod_view.is_ready(pod) and not pod_view.is_deleting(pod):
                listing = self.agents.list_instances(ip)
                alive = []
                for state in listing.get("instances") or []:
                    if state.get("status") == "stopped":
                        try:
                            self.agents.delete_instance(ip, str(state["instance_id"]))
                        except errors.EngineHTTPError as exc:
                            logger.warning(
                                "deleting a stopped instance failed", extra={"launcher": name, "error": str(exc)}
                            )
                    else:
                        alive.append(str(state["instance_id"]))
                self.state.discover(name, alive, self._monotonic())
        for requester in self.pods.by_index(_IDX_REQUESTER_NODE, node):
            if not self.pods.by_index(_IDX_BOUND_TO, pod_view.uid(requester)):
                self.queue.add(node, (_REQUESTER, pod_view.uid(requester)))
        return None

    def collect_obsolete(self, node: str, isc_name: str) -> float | None:
        """Delete sleeping instances of ``isc_name`` whose ID no longer matches its spec."""
        for pod in self.pods.by_index(_IDX_LAUNCHER_NODE, node):
            ip = pod_view.pod_ip(pod)
            if ip is None or pod_view.is_deleting(pod):
                continue
            listing = self.agents.list_instances(ip)
            for state in listing.get("instances") or []:
                notes = state.get("annotations") or {}
                if notes.get(names.INSTANCE_ISC_NAME) != isc_name or not state.get("gpu_uuids"):
                    continue
                recomputed = self._recomputed_id(state)
                if recomputed is None or recomputed == state.get("instance_id"):
                    continue
                try:
                    port = int(str(notes.get(names.INSTANCE_INFERENCE_PORT)))
                    if not self.agents.is_sleeping(ip, port):
                        continue
                except (ValueError, errors.EngineHTTPError):
                    continue
                self.agents.delete_instance(ip, str(state["instance_id"]))
                logger.info("deleted obsolete instance", extra={"launcher": pod_view.name(pod), "isc": isc_name})
        return None

    # --- ISC status (§6.4) ------------------------------------------------------------------------------

    def write_isc_status(self, name: str) -> float | None:
        """Write an ISC's status: observedGeneration, Accepted/ResolvedRefs conditions and errors."""
        raw = self.iscs.get_by_name(name, self.settings.namespace)
        if raw is None:
            return None
        spec = raw.get("spec") or {}
        server = spec.get("modelServerConfig") or {}
        spec_problems = routing_metadata.problems(server.get("labels"), server.get("annotations"))
        problems: list[str] = list(spec_problems)
        accepted = not spec_problems
        lc_name = str(spec.get("launcherConfigName") or "")
        lc = self.lcs.get_by_name(lc_name, self.settings.namespace) if lc_name else None
        refs_reason, refs_message = "RefsResolved", f'LauncherConfig "{lc_name}" exists'
        if lc is None:
            refs_reason = "LauncherConfigNotFound"
            refs_message = f'LauncherConfig "{lc_name}" does not exist'
            problems.append(refs_message)
        else:
            malformed = launcher_template.malformation(lc)
            if malformed:
                refs_reason = "LauncherConfigMalformed"
                refs_message = f'LauncherConfig "{lc_name}" is malformed: {malformed}'
                problems.append(refs_message)
        for node, failed in self.state.start_failures_of(name):
            problems.append(f"engine start failed {failed.failures} time(s) on node {node}: {failed.message}")
        generation = int((raw.get("metadata") or {}).get("generation") or 0)
        previous = {c.get("type"): c for c in (raw.get("status") or {}).get("conditions") or []}
        now = datetime.datetime.fromtimestamp(self._wall(), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            status = "True" if ok else "False"
            old = previous.get(kind) or {}
            changed = old.get("status") != status
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now
                if changed or not old.get("lastTransitionTime")
                else old["lastTransitionTime"],
            }

        conditions = [
            condition(
                "Accepted", accepted, "Valid" if accepted else "InvalidSpec", "; ".join(spec_problems) or "valid"
            ),
            condition("ResolvedRefs", refs_reason == "RefsResolved", refs_reason, refs_message),
        ]
        status = {"observedGeneration": generation, "errors": problems, "conditions": conditions}
        current = raw.get("status") or {}
        if (
            current.get("observedGeneration") == generation
            and (current.get("errors") or []) == problems
            and _same_conditions(current.get("conditions") or [], conditions)
        ):
            return None
        with contextlib.suppress(kube.errors.NotFound):
            self.api.patch(
                resources.INFERENCE_SERVER_CONFIGS,
                name,
                {"status": status},
                self.settings.namespace,
                subresource="status",
            )
        return None

    # --- fma_duality ---------------------------------------------------------------------------------------

    def set_duality(
        self, requester: Mapping[str, Any], provider: Mapping[str, Any], instance_id: str, gpus: list[str], value: int
    ) -> None:
        node = str((requester.get("spec") or {}).get("nodeName") or "")
        memo = self.state.requester(pod_view.uid(requester))
        for gpu in gpus:
            labels = {
                "exported_namespace": self.settings.namespace,
                "requester_name": pod_view.name(requester),
                "exported_pod": pod_view.name(provider),
                "exported_container": names.INFERENCE_SERVER_CONTAINER,
                "instance_id": instance_id,
                "UUID": gpu,
                "node": node,
            }
            self.metrics.duality.labels(**labels).set(value)
            if labels not in memo.duality:
                memo.duality.append(labels)

    def _clear_duality(self, memo: dpc_state.RequesterMemo) -> None:
        """Both Pods are gone: the pair's series drop to 0 (CONTRACT §10)."""
        for labels in memo.duality:
            self.metrics.duality.labels(**labels).set(0)
        memo.duality.clear()


def _current_problems(pod: Mapping[str, Any]) -> list[str]:
    try:
        return requester_status.parse(pod_view.annotations_of(pod).get(keys.STATUS_ANNOTATION))
    except crds_errors.CrdsError:
        return []


def _same_conditions(current: list[dict[str, Any]], desired: list[dict[str, Any]]) -> bool:
    def strip(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in items
        )

    return strip(current) == strip(desired)


def _with_kind(pod: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", **pod}


def _summary(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
