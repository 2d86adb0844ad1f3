"""The nomination: a gated requester gets its admission-time node as ``status.nominatedNodeName``, then its gate lifted.

With ``nominate`` on, the webhook gives a requester whose best node is
certain-hot (a sleeper of its configuration waits there on exactly the GPUs
the device plugin would hand it) the scheduling gate ``keys.NOMINATE_GATE``
and that node in ``keys.NOMINATED_NODE_ANNOTATION``.  ``status`` cannot be
written at creation (the apiserver drops it), so the gate holds the Pod back
from the scheduler until this reconciler has:

1. patched ``status.nominatedNodeName`` (``pods/status``) to the annotated
   node, when that node still exists and is schedulable and Ready;
2. removed *only* our gate from ``spec.schedulingGates`` (a JSON Patch that
   tests the gate's index first, so another party's gate never goes).

kube-scheduler then evaluates the nominated node first; when it passes the
filters it is the only feasible node and scoring is skipped, which is what
makes placement hints cost the scheduler nothing.  A nominated node that no
longer fits is only the first node tried: the Pod schedules elsewhere.

Never blocking: every outcome, including a failed status patch, ends with the
gate lifted (a lift that fails is retried with back-off by the workers).
There is no flag: without the controllers a requester can never be bound to
a server anyway, so a gate waiting for them adds no failure mode of its own.

``plan`` is pure; ``Nominator`` reads the Pod and Node caches and applies
the plan (leader only, from ``controllers.app``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import prometheus_client

import kube
from controllers import errors
from controllers import work_queue as wq
from controllers import workers as workers_mod
from crds import keys, timestamps
from kube import errors as kube_errors
from kube import resources

__all__ = ["NominationMetrics", "Nominator", "Outcome", "Plan", "gate_index", "nominated_node", "plan"]

logger = logging.getLogger(__name__)

_UNGATE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300)
_LIFT_ATTEMPTS = 3
_REMEMBERED_LIFTS = 10_000
_WORKERS = 32
"""Gated requesters handled in parallel: two apiserver writes each, mostly waiting on the apiserver (in the
1,000-node benchmark 32 workers lifted about twice as many gates per second as 8; docs/performance.md)."""


class Outcome(enum.StrEnum):
    """How one gated requester was let go (the metric label ``outcome``)."""

    NOMINATED = "nominated"
    """``status.nominatedNodeName`` set to the annotated node."""
    NO_NODE = "no_node"
    """The gate without the annotation (or an empty one): lifted, nothing nominated."""
    NODE_GONE = "node_gone"
    """The annotated node no longer exists."""
    NODE_UNAVAILABLE = "node_unavailable"
    """The annotated node is cordoned (``spec.unschedulable``) or not Ready."""
    FAILED = "failed"
    """The status patch failed; the gate was lifted anyway."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to do for one gated requester."""

    outcome: Outcome
    node: str | None = None
    """The node to write into ``status.nominatedNodeName``; None: write nothing."""


def gate_index(pod: Mapping[str, Any]) -> int | None:
    """The index of ``keys.NOMINATE_GATE`` in the Pod's ``spec.schedulingGates``, or None (pure)."""
    gates = (pod.get("spec") or {}).get("schedulingGates")
    if not isinstance(gates, list):
        return None
    for index, gate in enumerate(gates):
        if isinstance(gate, Mapping) and gate.get("name") == keys.NOMINATE_GATE:
            return index
    return None


def nominated_node(pod: Mapping[str, Any]) -> str:
    """The node the webhook chose at admission ('' when none) (pure)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(keys.NOMINATED_NODE_ANNOTATION)
    return value.strip() if isinstance(value, str) else ""


def _available(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, Mapping))


def plan(pod: Mapping[str, Any] | None, node: Mapping[str, Any] | None) -> Plan | None:
    """What to do for ``pod`` given the cached Node its annotation names (``node``; None when absent);
    None when there is nothing to do: no Pod, being deleted, or no gate of ours (pure; no I/O)."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp") or gate_index(pod) is None:
        return None
    name = nominated_node(pod)
    if not name:
        return Plan(Outcome.NO_NODE)
    if node is None:
        return Plan(Outcome.NODE_GONE)
    if not _available(node):
        return Plan(Outcome.NODE_UNAVAILABLE)
    return Plan(Outcome.NOMINATED, node=name)


class NominationMetrics:
    """``fma_nominations_total{outcome}`` and ``fma_nomination_ungate_seconds``."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.nominations = prometheus_client.Counter(
            "fma_nominations",
            "Gated requesters let go, by outcome (nominated, no_node, node_gone, node_unavailable, failed).",
            ["outcome"],
            registry=registry,
        )
        self.ungate_seconds = prometheus_client.Histogram(
            "fma_nomination_ungate_seconds",
            "Requester creation (creationTimestamp, whole seconds) to its nomination gate lifted.",
            buckets=_UNGATE_BUCKETS,
            registry=registry,
        )


class Nominator:
    """Watches requesters carrying the nomination gate in one namespace and applies ``plan``."""

    def __init__(
        self,
        api: kube.Client,
        *,
        namespace: str,
        pods: kube.WatchCache,
        nodes: kube.WatchCache,
        registry: prometheus_client.CollectorRegistry,
        workers: int = _WORKERS,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._pods = pods
        self._nodes = nodes
        self._clock = clock
        self.metrics = NominationMetrics(registry)
        self._lifted: collections.OrderedDict[str, None] = collections.OrderedDict()
        """UIDs whose gate this process lifted, newest last: a cache that still shows the gate lags behind."""
        self._lifted_lock = threading.Lock()
        self._queue: wq.GroupedQueue[str, str] = wq.GroupedQueue()
        self._workers = workers_mod.Workers(self._queue, self.reconcile, name="nomination", count=workers)

    def register_handlers(self) -> None:
        """Queue a requester whenever it is seen with our gate."""
        self._pods.add_handler(self._on_pod)

    def _on_pod(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if new is not None and gate_index(new) is not None:
            self._queue.add(key, key)

    def start(self) -> None:
        """Start reconciling (the caches are started by their owner); gated Pods already cached are queued."""
        for pod in self._pods.items():
            self._on_pod(kube.cache.object_key(pod), None, pod)
        self._workers.start()

    def stop(self) -> None:
        """Stop the workers."""
        self._workers.stop()

    def reconcile(self, group: str, key: str) -> float | None:
        """Nominate (when the plan says so), then lift the gate; errors in the nomination never keep it."""
        pod = self._pods.get(key)
        name = nominated_node(pod) if pod is not None else ""
        decided = plan(pod, self._nodes.get(name) if name else None)
        if pod is None or decided is None:
            return None
        meta = pod["metadata"]
        if self._already_lifted(str(meta.get("uid", ""))):
            return None  # the watch has not delivered our own lift yet; nothing to do
        extra = {"pod": key, "node": name, "outcome": decided.outcome.value}
        outcome = decided.outcome
        current = (pod.get("status") or {}).get("nominatedNodeName")
        if decided.node is not None and current != decided.node:
            try:
                self._api.patch(
                    resources.PODS,
                    meta["name"],
                    {"status": {"nominatedNodeName": decided.node}},
                    self._namespace,
                    subresource="status",
                )
            except kube_errors.NotFound:
                return None
            except kube_errors.KubeError as exc:  # never block: the gate goes anyway
                outcome = Outcome.FAILED
                logger.warning("nomination failed; lifting the gate", extra={**extra, "error": str(exc)})
        if not self._lift(pod):
            return None  # gone, or the gate was lifted by someone else
        self._remember_lifted(str(meta.get("uid", "")))
        self.metrics.nominations.labels(outcome=outcome.value).inc()
        created = timestamps.parse_time(meta.get("creationTimestamp"))
        if created is not None:
            self.metrics.ungate_seconds.observe(max(0.0, (self._clock() - created).total_seconds()))
        logger.info("requester ungated", extra={**extra, "outcome": outcome.value})
        return None

    def _already_lifted(self, uid: str) -> bool:
        with self._lifted_lock:
            return uid in self._lifted

    def _remember_lifted(self, uid: str) -> None:
        with self._lifted_lock:
            self._lifted[uid] = None
            while len(self._lifted) > _REMEMBERED_LIFTS:
                self._lifted.popitem(last=False)

    def _lift(self, pod: Mapping[str, Any]) -> bool:
        """Remove our gate (and only it); False when the Pod or the gate is already gone.  A stale index
        (the test op fails) is retried on a fresh read; other errors propagate (the workers retry)."""
        name = pod["metadata"]["name"]
        current: Mapping[str, Any] | None = pod
        for _ in range(_LIFT_ATTEMPTS):
            index = gate_index(current) if current is not None else None
            if index is None:
                return False
            path = f"/spec/schedulingGates/{index}"
            ops = [{"op": "test", "path": f"{path}/name", "value": keys.NOMINATE_GATE}, {"op": "remove", "path": path}]
            try:
                self._api.patch(resources.PODS, name, ops, self._namespace, patch_type="json")
            except kube_errors.NotFound:
                return False
            except kube_errors.Invalid:
                current = self._api.get_or_none(resources.PODS, name, self._namespace)
                continue
            return True
        raise errors.RetryableError(f"the nomination gate of {name!r} kept moving")
