"""The requester side of a binding, shared by launcher mode and direct mode.

Whatever mode serves a requester, the same few things happen to the
requester itself: one write of its FMA metadata (labels, status,
accelerators, finalizer; docs/controllers.md, "How the dual-pods controller works"), user problems shown in its
status and as Events, its deletion with preconditions, the readiness relay to
its agent with the actuation metric, and the ``fma_duality``
series of the pair.  Both modes hold one ``RequesterSide`` and call it;
neither calls back into the controller.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kube
from controllers import dpc_metrics, dpc_state, errors, node_agents, pod_view, requester_plan
from crds import accelerators, keys, names, ports, requester_status, timestamps
from crds import errors as crds_errors
from kube import resources

__all__ = ["RequesterSide", "current_problems", "with_kind"]

logger = logging.getLogger(__name__)


def current_problems(pod: Mapping[str, Any]) -> list[str]:
    """The problems in a requester's status annotation ([] when absent or unreadable)."""
    try:
        return requester_status.parse(pod_view.annotations_of(pod).get(keys.STATUS_ANNOTATION))
    except crds_errors.CrdsError:
        return []


def with_kind(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The Pod with ``apiVersion`` and ``kind`` (cache objects lack them; Events need them)."""
    return {"apiVersion": "v1", "kind": "Pod", **pod}


def metadata_patch(
    requester: Mapping[str, Any],
    *,
    dual: str | None,
    instance: str | None,
    gpus: list[str] | None,
    problems: list[str],
    finalizer: bool,
) -> dict[str, Any] | None:
    """The ``metadata`` of the one requester patch that makes it match, or None when it already does (pure).

    Labels and annotations are merged key by key and owned by the controller
    alone, so they need no resourceVersion: a status update by the kubelet in
    between cannot make them wrong, and racing it only caused conflicts.  The
    UID is always a precondition (a same-named successor is never written);
    a finalizer change (a whole list) also carries the resourceVersion read.
    """
    current_labels = pod_view.labels_of(requester)
    current_notes = pod_view.annotations_of(requester)
    label_patch: dict[str, str | None] = {}
    for key, value in ((keys.DUAL_LABEL, dual), (keys.INSTANCE_LABEL, instance)):
        if current_labels.get(key) != value:
            label_patch[key] = value
    note_patch: dict[str, str | None] = {}
    try:
        written = requester_status.parse(current_notes.get(keys.STATUS_ANNOTATION))
    except crds_errors.CrdsError:
        written = ["<unparsable>"]
    if written != problems or (problems == [] and keys.STATUS_ANNOTATION not in current_notes):
        note_patch[keys.STATUS_ANNOTATION] = requester_status.format_errors(problems)
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
        return None
    meta: dict[str, Any] = {"uid": pod_view.uid(requester)}  # never write a same-named successor
    if label_patch:
        meta["labels"] = label_patch
    if note_patch:
        meta["annotations"] = note_patch
    if new_fins is not None:
        meta["finalizers"] = new_fins
        meta["resourceVersion"] = requester["metadata"]["resourceVersion"]
    return meta


class RequesterSide:
    """Writes to a requester, its agent and its metrics; one per controller, shared by both modes."""

    def __init__(
        self,
        api: kube.Client,
        *,
        namespace: str,
        agents: node_agents.NodeAgents,
        events: kube.EventRecorder,
        metrics: dpc_metrics.DPCMetrics,
        state: dpc_state.DPCState,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.agents = agents
        self.events = events
        self.metrics = metrics
        self.state = state
        self.monotonic = monotonic
        self._wall = wall_clock

    def write(
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
        """At most one patch of the requester's FMA metadata, skipped if nothing changes.

        Returns the requester as written.  Only a finalizer change carries
        a precondition (see ``metadata_patch``); if it conflicts, the cache
        lagged someone else's write: the Pod is read once from the apiserver
        and the write decided again on it.  A second conflict propagates
        (retried with back-off).
        """
        meta = metadata_patch(
            requester, dual=dual, instance=instance, gpus=gpus, problems=problems, finalizer=finalizer
        )
        if meta is None:
            return dict(requester)
        name = pod_view.name(requester)
        try:
            return self.api.patch(resources.PODS, name, {"metadata": meta}, self.namespace)
        except kube.errors.Conflict:
            if not refresh_on_conflict:
                raise
            fresh = self.api.get_or_none(resources.PODS, name, self.namespace)
            if fresh is None or pod_view.uid(fresh) != pod_view.uid(requester):
                raise
            logger.info("requester changed since the cache read; deciding the write again", extra={"pod": name})
            return self.write(
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

        The Event is emitted only when the status changes, so a problem is
        reported once however often it is found again.  Returns the requester
        as written.
        """
        if current_problems(requester) != [problem]:
            self.events.record(with_kind(requester), "Warning", names.EVENT_ACTUATION_FAILED, problem)
        labels = pod_view.labels_of(requester)
        return self.write(
            requester,
            dual=labels.get(keys.DUAL_LABEL),
            instance=labels.get(keys.INSTANCE_LABEL),
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
                self.namespace,
                uid=pod_view.uid(pod),
                resource_version=str(pod["metadata"]["resourceVersion"]),
                propagation_policy="Background",
            )

    def drop_provider_finalizer(self, provider: Mapping[str, Any]) -> None:
        """Remove the provider finalizer (a provider being deleted is released)."""
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
                self.namespace,
            )

    def relay(
        self, requester: Mapping[str, Any], *, ready: bool, memo: dpc_state.RequesterMemo, isc_name: str
    ) -> float | None:
        """Relay readiness to the requester agent; observe the actuation once.

        Returns when to look again: a relay already made and not yet shown
        on the requester is not repeated until its grace has passed.
        """
        now = self.monotonic()
        decision = requester_plan.relay_decision(
            serving=ready,
            requester_ready=bool(pod_view.container_status(requester).get("ready")),
            relayed_before=memo.relayed_ready,
            last_call=memo.last_relay,
            since_last_call=None if memo.last_relay_at is None else now - memo.last_relay_at,
        )
        if decision.call is not None:
            ip = pod_view.pod_ip(requester)
            if ip is None:
                return None
            self.agents.relay_ready(
                ip, ports.admin_port(pod_view.annotations_of(requester)), decision.call == "become-ready"
            )
            memo.last_relay, memo.last_relay_at = decision.call, now
        if decision.mark_relayed:
            memo.relayed_ready = True
        if decision.observe_actuation:
            self._observe_actuation(requester, memo, isc_name)
        return decision.look_again

    def _observe_actuation(self, requester: Mapping[str, Any], memo: dpc_state.RequesterMemo, isc_name: str) -> None:
        started = timestamps.parse_time(pod_view.started_at(requester))
        seconds = max(0.0, self._wall() - started.timestamp()) if started is not None else 0.0
        path = memo.path or "hot"
        self.metrics.actuation_seconds.labels(
            exported_namespace=self.namespace,
            path=path,
            instancesDeleted=str(memo.instances_deleted),
            isc_name=isc_name,
        ).observe(seconds)
        reason = {"hot": names.EVENT_ACTUATED_HOT, "warm": names.EVENT_ACTUATED_WARM}.get(
            path, names.EVENT_ACTUATED_COLD
        )
        self.events.record(with_kind(requester), "Normal", reason, f"{path} actuation in {seconds:.2f}s")

    def set_duality(
        self, requester: Mapping[str, Any], provider: Mapping[str, Any], instance_id: str, gpus: list[str], value: int
    ) -> None:
        """Set the pair's ``fma_duality`` series, one per GPU, and remember them for clearing."""
        node = str((requester.get("spec") or {}).get("nodeName") or "")
        memo = self.state.requester(pod_view.uid(requester))
        for gpu in gpus:
            labels = {
                "exported_namespace": self.namespace,
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

    def clear_duality(self, memo: dpc_state.RequesterMemo) -> None:
        """Both Pods are gone: the pair's series drop to 0 (docs/protocol.md, "Metrics")."""
        for labels in memo.duality:
            self.metrics.duality.labels(**labels).set(0)
        memo.duality.clear()
