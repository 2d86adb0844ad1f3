"""The launcher populator: keeps the unbound launchers that LauncherPopulationPolicies ask for (docs/populator.md).

It runs in the ``fma-controllers`` process next to the dual-pods controller,
with its own work queue, workers, API client (field manager
``launcher-populator``) and Event component.  It is level-triggered: cache
handlers only enqueue *which* thing to look at, and each reconcile reads the
caches, asks a pure plan what to do and applies it:

- ``pair`` (node, LauncherConfig): ``population_target`` gives the desired
  count, ``population_plan`` the deletes, creates and stuck labels;
  ``population_expectations`` keeps a lagging cache from causing
  double creation;
- ``config`` / ``policy``: the LauncherConfig and policy status with
  ``observedGeneration``, conditions and upstream's exact errors, plus one
  Warning Event when the problems change;
- ``count``: the ``fma_launcher_pod_count`` series of one LauncherConfig.

What triggers what: a launcher Pod change → its pair and its count; a Node
change of labels or allocatable (heartbeats are ignored) → every pair of that
node; a LauncherConfig change → its status, count, every policy's status and
all its pairs; a policy change → its status and every pair of the configs it
lists, before and after the change.  Stuck launchers are rechecked exactly at
the next threshold crossing (no periodic sweep).

The Pod cache given to the populator may be any cache of the namespace's
Pods; with ``POD_INDEXERS`` installed it looks launchers up by index,
otherwise it filters.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import prometheus_client

import kube
from controllers import (
    errors,
    launcher_phase,
    launcher_pod_count,
    launcher_template,
    population_expectations,
    population_plan,
    population_status,
    population_target,
    work_queue,
)
from controllers import settings as settings_mod
from controllers import workers as worker_pool
from crds import keys, kinds, names

__all__ = [
    "EVENT_FAILED_CREATE",
    "INDEX_LAUNCHER_CONFIG",
    "INDEX_LAUNCHER_PAIR",
    "POD_INDEXERS",
    "Populator",
    "PopulatorSettings",
    "PopulatorStats",
    "WorkItem",
    "pair_index_value",
]

logger = logging.getLogger(__name__)

EVENT_FAILED_CREATE = "FailedCreateLauncher"
"""Warning Event on a LauncherConfig whose launcher Pod the apiserver refused (an extension; not in the contract)."""

INDEX_LAUNCHER_PAIR = "launcher-pair"
"""Pod index: ``<node>/<launcher config>`` of each launcher Pod."""

INDEX_LAUNCHER_CONFIG = "launcher-config"
"""Pod index: the LauncherConfig name of each launcher Pod."""


def pair_index_value(node: str, launcher_config_name: str) -> str:
    """The ``INDEX_LAUNCHER_PAIR`` value of a pair (pure)."""
    return f"{node}/{launcher_config_name}"


def _index_pair(pod: Mapping[str, Any]) -> list[str]:
    pair = launcher_phase.pair_of(pod)
    return [] if pair is None else [pair_index_value(*pair)]


def _index_config(pod: Mapping[str, Any]) -> list[str]:
    pair = launcher_phase.pair_of(pod)
    return [] if pair is None else [pair[1]]


POD_INDEXERS: Mapping[str, kube.cache.Indexer] = {
    INDEX_LAUNCHER_PAIR: _index_pair,
    INDEX_LAUNCHER_CONFIG: _index_config,
}
"""Indexers to install on the Pod cache given to the populator."""


@dataclasses.dataclass(frozen=True)
class PopulatorSettings:
    """The populator's flags (``fma-controllers`` builds this from its settings)."""

    expectation_timeout: float = settings_mod.EXPECTATION_TIMEOUT_DEFAULT
    """``--expectation-timeout`` seconds: how long to wait for the cache to show our writes."""
    stuck_starting_threshold: float = settings_mod.STUCK_STARTING_THRESHOLD_DEFAULT
    """``--stuck-starting-threshold`` seconds (7 m 30 s): scheduled but not Ready."""
    stuck_scheduling_threshold: float = settings_mod.STUCK_SCHEDULING_THRESHOLD_DEFAULT
    """``--stuck-scheduling-threshold`` seconds (2 m): not scheduled."""
    auth_token_secret: str | None = None
    """The Secret holding the launcher token; None when launcher auth is off.

    See docs/security.md, "Launcher auth, end to end".
    """
    auth_token_key: str = launcher_template.AUTH_TOKEN_SECRET_KEY
    """The key of the token inside that Secret."""
    sync_timeout: float = 0.25
    """How long a reconcile waits, requeued, while the caches are still loading."""

    @property
    def thresholds(self) -> launcher_phase.Thresholds:
        """The stuck thresholds as ``launcher_phase`` wants them."""
        return launcher_phase.Thresholds(
            scheduling=datetime.timedelta(seconds=self.stuck_scheduling_threshold),
            starting=datetime.timedelta(seconds=self.stuck_starting_threshold),
        )


@dataclasses.dataclass
class PopulatorStats:
    """What the populator wrote, for tests, benchmarks and logs."""

    creates: int = 0
    deletes: int = 0
    delete_conflicts: int = 0
    stuck_marks: int = 0
    stuck_clears: int = 0
    status_writes: int = 0
    direct_lists: int = 0


@dataclasses.dataclass(frozen=True, order=True)
class WorkItem:
    """One thing to reconcile: ``pair`` (node + config), ``config``, ``policy`` or ``count``."""

    kind: str
    name: str
    node: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.node}/{self.name}" if self.node else f"{self.kind}/{self.name}"


_PAIR = "pair"
_CONFIG = "config"
_POLICY = "policy"
_COUNT = "count"
_RECHECK_MARGIN = 0.05


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name(obj: Mapping[str, Any] | None) -> str:
    return str(_meta(obj).get("name") or "")


def _version_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


def _node_shape(node: Mapping[str, Any] | None) -> tuple[Any, Any]:
    status = (node or {}).get("status")
    return _meta(node).get("labels"), (status.get("allocatable") if isinstance(status, Mapping) else None)


def _spec_shape(obj: Mapping[str, Any] | None) -> tuple[Any, Any, Any]:
    meta = _meta(obj)
    return meta.get("uid"), bool(meta.get("deletionTimestamp")), (obj or {}).get("spec")


class Populator:
    """The launcher populator.  Call ``register_handlers`` before the caches start, then ``start``."""

    def __init__(
        self,
        api: kube.Client,
        *,
        namespace: str,
        pods: kube.WatchCache,
        nodes: kube.WatchCache,
        launcher_configs: kube.WatchCache,
        policies: kube.WatchCache,
        events: kube.EventRecorder,
        registry: prometheus_client.CollectorRegistry,
        settings: PopulatorSettings,
        clock: Callable[[], datetime.datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._pods = pods
        self._nodes = nodes
        self._configs = launcher_configs
        self._policies = policies
        self._events = events
        self._settings = settings
        self._clock = clock
        self.queue: work_queue.GroupedQueue[WorkItem, WorkItem] = work_queue.GroupedQueue(clock=monotonic)
        self._workers: worker_pool.Workers[WorkItem, WorkItem] | None = None
        self._expectations: population_expectations.Expectations[tuple[str, str]] = (
            population_expectations.Expectations(settings.expectation_timeout, monotonic)
        )
        self._count = launcher_pod_count.LauncherPodCount(registry)
        self._lock = threading.Lock()
        self._config_views: dict[str, tuple[tuple[str, str], population_target.ConfigView]] = {}
        self._policy_views: dict[str, tuple[tuple[str, str], population_target.PolicyView]] = {}
        self._conditions_pruned: dict[str, bool] = {}
        self._stats = PopulatorStats()

    # --- lifecycle ---------------------------------------------------------------------------------

    def register_handlers(self) -> None:
        """Subscribe to the four caches; call before they start."""
        self._pods.add_handler(self._on_pod)
        self._nodes.add_handler(self._on_node)
        self._configs.add_handler(self._on_config)
        self._policies.add_handler(self._on_policy)

    def start(self, workers: int = 2) -> None:
        """Start ``workers`` worker threads and enqueue everything once."""
        if self._workers is not None:
            raise RuntimeError("the populator is already started")
        self._workers = worker_pool.Workers(self.queue, self._reconcile, name="launcher-populator", count=workers)
        self._workers.start()
        self.resync()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers (in-flight reconciles finish)."""
        if self._workers is not None:
            self._workers.stop(timeout)

    def resync(self) -> None:
        """Enqueue every pair, config, policy and count (for start-up and leadership changes)."""
        config_names = self._known_config_names()
        for name in config_names:
            self._add(WorkItem(_CONFIG, name))
            self._add(WorkItem(_COUNT, name))
        for policy in self._policies.items():
            self._add(WorkItem(_POLICY, _name(policy)))
        for node in self._nodes.items():
            for name in config_names:
                self._add(WorkItem(_PAIR, name, _name(node)))

    def stats(self) -> PopulatorStats:
        """A snapshot of what the populator wrote so far."""
        with self._lock:
            return dataclasses.replace(self._stats)

    # --- handlers: decide which items to look at, nothing else ------------------------------------

    def _add(self, item: WorkItem) -> None:
        self.queue.add(item, item)

    def _on_pod(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        for obj in (old, new):
            pair = launcher_phase.pair_of(obj) if obj is not None else None
            if pair is not None:
                self._add(WorkItem(_PAIR, pair[1], pair[0]))
                self._add(WorkItem(_COUNT, pair[1]))

    def _on_node(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if old is not None and new is not None and _node_shape(old) == _node_shape(new):
            return
        for name in self._known_config_names():
            self._add(WorkItem(_PAIR, name, key))

    def _on_config(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        name = _name(new or old)
        self._add(WorkItem(_CONFIG, name))
        self._add(WorkItem(_COUNT, name))
        if old is not None and new is not None and _spec_shape(old) == _spec_shape(new):
            return
        for policy in self._policies.items():
            self._add(WorkItem(_POLICY, _name(policy)))
        for node in self._nodes.items():
            self._add(WorkItem(_PAIR, name, _name(node)))

    def _on_policy(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        self._add(WorkItem(_POLICY, _name(new or old)))
        if old is not None and new is not None and _spec_shape(old) == _spec_shape(new):
            return
        views = [population_target.read_policy(obj) for obj in (old, new) if obj is not None]
        config_names = population_target.referenced_configs(views)
        for node in self._nodes.items():
            for name in config_names:
                self._add(WorkItem(_PAIR, name, _name(node)))

    # --- reading the caches -----------------------------------------------------------------------

    def _known_config_names(self) -> set[str]:
        names_ = {_name(obj) for obj in self._configs.items()}
        return names_ | population_target.referenced_configs(self._policy_view_list())

    def _config_view(self, raw: Mapping[str, Any]) -> population_target.ConfigView:
        version = _version_key(raw)
        with self._lock:
            memo = self._config_views.get(_name(raw))
        if memo is not None and memo[0] == version:
            return memo[1]
        view = population_target.read_config(raw)
        with self._lock:
            self._config_views[_name(raw)] = (version, view)
        return view

    def _config_view_map(self) -> dict[str, population_target.ConfigView]:
        return {_name(raw): self._config_view(raw) for raw in self._configs.items()}

    def _policy_view(self, raw: Mapping[str, Any]) -> population_target.PolicyView:
        version = _version_key(raw)
        with self._lock:
            memo = self._policy_views.get(_name(raw))
        if memo is not None and memo[0] == version:
            return memo[1]
        view = population_target.read_policy(raw)
        with self._lock:
            self._policy_views[_name(raw)] = (version, view)
        return view

    def _policy_view_list(self) -> list[population_target.PolicyView]:
        return [self._policy_view(raw) for raw in self._policies.items()]

    def _indexed(self, index: str, value: str, keep: Callable[[Mapping[str, Any]], bool]) -> list[dict[str, Any]]:
        try:
            return self._pods.by_index(index, value)
        except KeyError:  # the cache was built without POD_INDEXERS
            return [pod for pod in self._pods.items() if keep(pod)]

    def _pair_pods(self, node: str, config_name: str) -> list[dict[str, Any]]:
        return self._indexed(
            INDEX_LAUNCHER_PAIR,
            pair_index_value(node, config_name),
            lambda pod: launcher_phase.pair_of(pod) == (node, config_name),
        )

    def _config_pods(self, config_name: str) -> list[dict[str, Any]]:
        return self._indexed(
            INDEX_LAUNCHER_CONFIG,
            config_name,
            lambda pod: (launcher_phase.pair_of(pod) or ("", ""))[1] == config_name,
        )

    def _synced(self) -> bool:
        return all(cache.synced for cache in (self._pods, self._nodes, self._configs, self._policies))

    # --- reconcile ---------------------------------------------------------------------------------

    def _reconcile(self, group: WorkItem, item: WorkItem) -> float | None:
        if not self._synced():
            return self._settings.sync_timeout
        if item.kind == _PAIR:
            return self._reconcile_pair(item.node, item.name)
        if item.kind == _CONFIG:
            return self._reconcile_config(item.name)
        if item.kind == _POLICY:
            return self._reconcile_policy(item.name)
        if item.kind == _COUNT:
            return self._reconcile_count(item.name)
        raise errors.TerminalError(f"unknown populator work item {item!s}")

    def _reconcile_pair(self, node_name: str, config_name: str) -> float | None:
        pair = (node_name, config_name)
        pods = self._pair_pods(node_name, config_name)
        pending = self._expectations.get(pair)
        if pending is not None:
            by_uid = {str(_meta(pod).get("uid")): pod for pod in pods}
            if population_expectations.seen(pending, by_uid):
                self._expectations.clear(pair)
            else:
                remaining = self._expectations.remaining(pending)
                if remaining > 0:
                    return remaining
                pods = self._list_pair(node_name, config_name)
                self._expectations.clear(pair)
        node = self._nodes.get(node_name)
        config_raw = self._configs.get_by_name(config_name, self._namespace)
        configs = self._config_view_map()
        config = configs.get(config_name)
        target = (
            population_target.target(node, config_name, self._policy_view_list(), configs)
            if node is not None
            else population_target.Target(count=0, hands_off=True)
        )
        now = self._clock()
        state = population_plan.PairState(
            node_exists=node is not None,
            target=target,
            template_hash=config.template_hash if config is not None else None,
            pods=pods,
        )
        plan = population_plan.compute(state, self._settings.thresholds, now)
        by_name = {_name(pod): pod for pod in pods}
        self._apply(pair, plan, config_raw, by_name)
        self._add(WorkItem(_COUNT, config_name))
        delays: list[float] = []
        if plan.writes or plan.waiting_for_deletion:
            delays.append(self._settings.expectation_timeout)
        if plan.recheck_at is not None:
            delays.append(max(0.0, (plan.recheck_at - now).total_seconds()) + _RECHECK_MARGIN)
        return min(delays) if delays else None

    def _list_pair(self, node_name: str, config_name: str) -> list[dict[str, Any]]:
        selector = ",".join(
            (
                f"{keys.COMPONENT_LABEL}={keys.COMPONENT_LAUNCHER}",
                f"{keys.LAUNCHER_CONFIG_NAME_LABEL}={config_name}",
                f"{keys.NODE_NAME_LABEL}={node_name}",
            )
        )
        items, _ = self._api.list_all(kube.resources.PODS, self._namespace, label_selector=selector)
        with self._lock:
            self._stats.direct_lists += 1
        logger.info("cache did not show our writes in time; listed directly", extra={"node": node_name})
        return items

    def _apply(
        self,
        pair: tuple[str, str],
        plan: population_plan.PairPlan,
        config_raw: Mapping[str, Any] | None,
        pods: Mapping[str, Mapping[str, Any]],
    ) -> None:
        node_name, config_name = pair
        deleted: set[str] = set()
        created: set[str] = set()
        try:
            for delete in plan.deletes:
                if self._delete(delete, node_name, config_name):
                    deleted.add(delete.uid)
            if plan.creates and config_raw is not None:
                body = launcher_template.specialise(
                    config_raw,
                    node_name,
                    auth_token_secret=self._settings.auth_token_secret,
                    auth_token_key=self._settings.auth_token_key,
                )
                for _ in range(plan.creates):
                    result = self._create(body, config_raw, node_name)
                    created.add(str(_meta(result).get("uid")))
                    with self._lock:
                        self._stats.creates += 1
                    logger.info(
                        "created launcher",
                        extra={"node": node_name, "launcher_config": config_name, "pod": _name(result)},
                    )
        finally:
            self._expectations.expect(pair, created=created, deleted=deleted)
        for mark in plan.mark_stuck:
            self._mark_stuck(pods[mark.name], mark.phase)
        for name in plan.clear_stuck:
            self._clear_stuck(name)

    def _create(self, body: Mapping[str, Any], config_raw: Mapping[str, Any], node_name: str) -> dict[str, Any]:
        try:
            return self._api.create(kube.resources.PODS, body, self._namespace)
        except (kube.errors.Invalid, kube.errors.BadRequest, kube.errors.Forbidden) as exc:
            # The apiserver refuses the Pod the template gives: tell the LauncherConfig's owner, retry with back-off.
            self._events.record(
                {**config_raw, "apiVersion": kinds.API_VERSION, "kind": kinds.LAUNCHER_CONFIG.kind},
                "Warning",
                EVENT_FAILED_CREATE,
                f"creating a launcher on node {node_name!r} failed: {exc.message}",
            )
            raise errors.RetryableError(f"creating a launcher on node {node_name!r} failed: {exc}") from exc

    def _delete(self, delete: population_plan.Delete, node_name: str, config_name: str) -> bool:
        extra = {"node": node_name, "launcher_config": config_name, "pod": delete.name, "reason": delete.reason}
        try:
            self._api.delete(
                kube.resources.PODS,
                delete.name,
                self._namespace,
                uid=delete.uid,
                resource_version=delete.resource_version,
            )
        except kube.errors.Conflict:
            with self._lock:
                self._stats.delete_conflicts += 1
            logger.info("launcher changed before its deletion; keeping it", extra=extra)
            return False
        except kube.errors.NotFound:
            return False
        with self._lock:
            self._stats.deletes += 1
        logger.info("deleted launcher", extra=extra)
        return True

    def _mark_stuck(self, pod: Mapping[str, Any], phase: launcher_phase.Phase) -> None:
        name = _name(pod)
        patch = {"metadata": {"labels": {keys.LAUNCHER_STUCK_LABEL: keys.STUCK_TRUE}}}
        try:
            self._api.patch(kube.resources.PODS, name, patch, self._namespace)
        except kube.errors.NotFound:
            return
        with self._lock:
            self._stats.stuck_marks += 1
        logger.warning("launcher is stuck", extra={"pod": name, "phase": phase.value})
        self._events.record(
            {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(pod)},
            "Warning",
            names.EVENT_LAUNCHER_STUCK,
            f"Launcher is stuck ({phase.value}); leaving it in place for investigation",
        )

    def _clear_stuck(self, name: str) -> None:
        patch = {"metadata": {"labels": {keys.LAUNCHER_STUCK_LABEL: None}}}
        try:
            self._api.patch(kube.resources.PODS, name, patch, self._namespace)
        except kube.errors.NotFound:
            return
        with self._lock:
            self._stats.stuck_clears += 1
        logger.info("launcher recovered from stuck", extra={"pod": name})

    def _reconcile_config(self, name: str) -> float | None:
        raw = self._configs.get_by_name(name, self._namespace)
        if raw is None:
            with self._lock:
                self._config_views.pop(name, None)
            return None
        plan = population_status.config_status(
            raw,
            self._config_view(raw),
            self._clock(),
            compare_conditions=not self._conditions_pruned.get(_CONFIG, False),
        )
        self._write_status(kube.resources.LAUNCHER_CONFIGS, kinds.LAUNCHER_CONFIG.kind, _CONFIG, raw, plan)
        return None

    def _reconcile_policy(self, name: str) -> float | None:
        raw = self._policies.get_by_name(name, self._namespace)
        if raw is None:
            with self._lock:
                self._policy_views.pop(name, None)
            return None
        plan = population_status.policy_status(
            raw,
            self._policy_view(raw),
            self._config_view_map(),
            self._clock(),
            compare_conditions=not self._conditions_pruned.get(_POLICY, False),
        )
        self._write_status(
            kube.resources.LAUNCHER_POPULATION_POLICIES, kinds.LAUNCHER_POPULATION_POLICY.kind, _POLICY, raw, plan
        )
        return None

    def _write_status(
        self,
        resource: kube.resources.Resource,
        kind: str,
        which: str,
        raw: Mapping[str, Any],
        plan: population_status.StatusPlan,
    ) -> None:
        obj = {**raw, "apiVersion": kinds.API_VERSION, "kind": kind}
        if plan.status is not None:
            try:
                result = self._api.replace(resource, {**obj, "status": plan.status}, subresource="status")
            except kube.errors.NotFound:
                return
            except kube.errors.Conflict as exc:
                raise errors.RetryableError(f"status of {kind} {_name(raw)!r} changed meanwhile") from exc
            with self._lock:
                self._stats.status_writes += 1
                if plan.status.get("conditions") and not (result.get("status") or {}).get("conditions"):
                    self._conditions_pruned[which] = True
            logger.info("wrote status", extra={"kind": kind, "object": _name(raw)})
        if plan.event is not None:
            self._events.record(obj, "Warning", plan.event.reason, plan.event.message)

    def _reconcile_count(self, name: str) -> float | None:
        pods = self._config_pods(name)
        raw = self._configs.get_by_name(name, self._namespace)
        if raw is None and not pods:
            self._count.remove(name)
            return None
        template_hash = self._config_view(raw).template_hash if raw is not None else None
        self._count.update(
            name, launcher_pod_count.tally(pods, template_hash, self._settings.thresholds, self._clock())
        )
        return None
