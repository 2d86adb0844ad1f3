"""Launcher mode, bound pair: drive the instance to serving, and release the launcher at the end.

docs/controllers.md, "Launcher mode" and "Scale-down".  The bound path reads the launcher's
commitment (the four bound annotations), makes the one requester-side write,
then follows ``requester_plan.bound_step``: the pure decision asks for the
instance and then the engine only when it needs them, and this module makes
those calls and carries out the final action (create, wake, report a start
failure, replace the requester, or serve: one launcher write and the
readiness relay).  Unbinding removes routing first, puts the engine to sleep
(or deletes an obsolete instance), then releases the launcher in one write.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import kube
from controllers import dpc_settings, dpc_state, errors, launcher_sync, pod_view, requester_plan, requester_side
from crds import errors as crds_errors
from crds import keys, launcher_inventory, names, ports, routing_metadata, vllm_config_annotation
from kube import resources

__all__ = ["BoundLauncher", "Commitment", "launcher_serving", "published_readiness"]

logger = logging.getLogger(__name__)

_MAX_POLL = 1.0  # upstream polls every 5 s; 1 s keeps a finished start from waiting long
_EVENT_FALLBACK_S = 5.0
"""When the launcher publishes readiness, its Pod event ends the wait; this only covers a lost event."""
_DEADLINE_MARGIN_S = 0.05
"""A look aimed at the start deadline comes this much after it (the deadline is "more than" its seconds)."""
_MAX_OBSERVATIONS = 3


@dataclasses.dataclass(frozen=True)
class Commitment:
    """What the launcher was bound to do, read back from its annotations."""

    instance_id: str
    port: int
    vllm: vllm_config_annotation.VllmConfig
    routing: routing_metadata.RoutingMetadata

    @property
    def isc_name(self) -> str:
        """The ISC the instance was created for ("" when unknown)."""
        return (self.vllm.annotations or {}).get(names.INSTANCE_ISC_NAME, "")

    @property
    def config_key(self) -> str:
        """The instance's config key ("" when unknown)."""
        return (self.vllm.annotations or {}).get(names.INSTANCE_CONFIG_KEY, "")

    @classmethod
    def read(cls, launcher: Mapping[str, Any]) -> Commitment:
        """Parse the bound annotations; raises ``UserError`` with the status text."""
        notes = pod_view.annotations_of(launcher)
        try:
            port = ports.parse_port(keys.SERVER_PORT_ANNOTATION, notes.get(keys.SERVER_PORT_ANNOTATION, ""))
            vllm = vllm_config_annotation.parse(notes.get(keys.VLLM_CONFIG_ANNOTATION, ""))
            committed = routing_metadata.parse(notes.get(keys.ISC_ROUTING_METADATA_ANNOTATION))
        except crds_errors.CrdsError as exc:
            raise errors.UserError(f"the bound launcher's commitment is unreadable: {exc}") from exc
        instance_id = notes.get(keys.INSTANCE_ID_ANNOTATION, "")
        if not instance_id:
            raise errors.UserError("the bound launcher has no instance-id annotation")
        return cls(instance_id, port, vllm, committed)


class BoundLauncher:
    """The bound path and unbinding of launcher-mode pairs."""

    def __init__(
        self,
        side: requester_side.RequesterSide,
        *,
        settings: dpc_settings.DPCSettings,
        iscs: kube.WatchCache,
        enqueue_isc_status: Callable[[str], None],
    ) -> None:
        self._side = side
        self._settings = settings
        self._iscs = iscs
        self._enqueue_isc_status = enqueue_isc_status

    # --- the bound path -------------------------------------------------------------------------

    def reconcile(
        self,
        requester: Mapping[str, Any],
        launcher: Mapping[str, Any],
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        """Drive a bound pair one step; raises ``UserError`` for an unreadable commitment."""
        side = self._side
        memo.provider = pod_view.name(launcher)
        commitment = Commitment.read(launcher)
        side.set_duality(requester, launcher, commitment.instance_id, gpus, 1)
        requester = side.write(
            requester,
            dual=pod_view.name(launcher),
            instance=commitment.instance_id,
            gpus=gpus,
            problems=[memo.deadline_problem] if memo.deadline_problem else [],
            finalizer=True,
        )
        ip = pod_view.pod_ip(launcher)
        facts = requester_plan.BoundFacts(
            launcher_failed=pod_view.is_failed(launcher),
            launcher_reachable=launcher_serving(launcher),
            instance_known=memo.instance_known,
            engine_answered=memo.engine_answered,
            path=memo.path,
            published=published_readiness(launcher, commitment.instance_id),
        )
        state: dict[str, Any] | None = None
        action = requester_plan.bound_step(facts)
        for _ in range(_MAX_OBSERVATIONS):
            if action == "look-at-instance":
                assert ip is not None
                state = side.agents.get_instance(ip, commitment.instance_id)
                facts = dataclasses.replace(facts, instance=_instance_state(state))
            elif action == "ask-engine":
                assert ip is not None
                facts = dataclasses.replace(facts, engine=self._engine_state(ip, commitment.port))
            else:
                break
            action = requester_plan.bound_step(facts)
        if facts.instance in ("running", "stopped"):
            memo.instance_known = True
        return self._act(
            action,
            requester=requester,
            launcher=launcher,
            ip=ip,
            commitment=commitment,
            gpus=gpus,
            memo=memo,
            state=state,
        )

    def _engine_state(self, ip: str, port: int) -> requester_plan.EngineState:
        try:
            return "sleeping" if self._side.agents.is_sleeping(ip, port) else "awake"
        except errors.EngineHTTPError:
            return "no-answer"

    def _act(
        self,
        action: requester_plan.BoundAction,
        *,
        requester: dict[str, Any],
        launcher: Mapping[str, Any],
        ip: str | None,
        commitment: Commitment,
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
        state: Mapping[str, Any] | None,
    ) -> float | None:
        side = self._side
        if action == "wait-for-launcher":
            return None  # the launcher's next Pod event re-enqueues us
        if action.startswith("delete-requester") or action == "report-start-failure-and-delete-requester":
            memo.asleep_or_dead = True
            if action == "report-start-failure-and-delete-requester":
                assert ip is not None
                assert state is not None
                requester = self._start_failed(requester, memo, ip=ip, commitment=commitment, state=state)
            side.delete_requester(requester, _DELETE_REASONS.get(action, "its bound instance stopped"))
            return None
        assert ip is not None
        if action == "create-instance":
            side.agents.create_instance(ip, commitment.instance_id, commitment.vllm.model_dump(exclude_none=True))
            memo.path = memo.path or "warm"
            memo.instance_known = True
            side.state.touch(pod_view.name(launcher), commitment.instance_id, side.monotonic())
            if keys.INSTANCES_ANNOTATION in pod_view.annotations_of(launcher):
                return _EVENT_FALLBACK_S  # the launcher publishes the new instance, then its readiness
            return memo.poll_delay
        if action == "wait-for-engine":
            return self._wait_for_engine(
                requester, commitment, gpus, memo, event_driven=published_readiness(launcher, commitment.instance_id)
            )
        requester = self._engine_answered(requester, launcher, commitment, memo)
        if action == "wake":
            if self._settings.debug_accelerator_memory and not self._memory_ok(requester, gpus):
                return 1.0
            side.agents.wake(ip, commitment.port)
            side.state.touch(pod_view.name(launcher), commitment.instance_id, side.monotonic())
            memo.path = memo.path or "hot"
            if side.agents.is_sleeping(ip, commitment.port):
                return 0.25  # the engine answered before applying the wake
        memo.path = memo.path or "hot"
        if not self._mark_awake(requester, launcher, commitment.routing):
            return None
        return side.relay(requester, ready=True, memo=memo, isc_name=commitment.isc_name)

    def _wait_for_engine(
        self,
        requester: Mapping[str, Any],
        commitment: Commitment,
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
        *,
        event_driven: str | None,
    ) -> float:
        """The engine is loading: report it once past the start deadline, and say when to look again.

        See docs/controllers.md, "Failures and back-off".

        A launcher that publishes readiness (``event_driven == "starting"``)
        ends the wait with its Pod event (one look is still scheduled at the
        start deadline, so that a silent engine is reported on time); only a
        launcher that does not is polled, from 0.25 s growing to 1 s.
        """
        memo.path = memo.path or "warm"  # a loading engine is a start, also when a new leader resumes it
        now = self._side.monotonic()
        if memo.waiting_since is None:
            memo.waiting_since = now
        elif now - memo.waiting_since > self._settings.start_deadline_seconds and not memo.deadline_problem:
            # Reported once and kept in the status while the wait goes on.
            deadline = self._settings.start_deadline_seconds
            memo.deadline_problem = f"the engine has not answered within {deadline:g} s of binding; still waiting"
            self._side.report(requester, memo.deadline_problem, gpus=gpus)
            if not memo.engine_answered:
                self._count_start_failure(memo, commitment.isc_name, "deadline")
        if event_driven == "starting":
            if memo.deadline_problem is None:
                # Any Pod event pulls the next look forward and restarts its delay: aim at the deadline itself.
                left = memo.waiting_since + self._settings.start_deadline_seconds - now
                return min(_EVENT_FALLBACK_S, max(left, 0.0) + _DEADLINE_MARGIN_S)
            return _EVENT_FALLBACK_S
        delay = memo.poll_delay
        memo.poll_delay = min(memo.poll_delay * 1.5, _MAX_POLL)
        return delay  # still loading; an inventory change also re-enqueues us

    def _engine_answered(
        self,
        requester: dict[str, Any],
        launcher: Mapping[str, Any],
        commitment: Commitment,
        memo: dpc_state.RequesterMemo,
    ) -> dict[str, Any]:
        """The engine answered: clear the wait, the deadline problem and the start back-off."""
        memo.engine_answered = True
        memo.poll_delay = 0.25
        memo.waiting_since = None
        if memo.deadline_problem:
            memo.deadline_problem = None
            requester = self._side.write(
                requester,
                dual=pod_view.name(launcher),
                instance=commitment.instance_id,
                gpus=memo.gpus,
                problems=[],
                finalizer=True,
            )
        node = str(requester["spec"]["nodeName"])
        if commitment.config_key:
            forgotten = self._side.state.clear_start_backoff(node, commitment.config_key)
            if forgotten is not None and forgotten.isc:
                self._enqueue_isc_status(forgotten.isc)
        return requester

    def _memory_ok(self, requester: Mapping[str, Any], gpus: list[str]) -> bool:
        ip = pod_view.pod_ip(requester)
        if ip is None:
            return False
        usage = self._side.agents.accelerator_memory(ip, ports.admin_port(pod_view.annotations_of(requester)))
        limit = self._settings.sleeper_limit * 4096
        return all(usage.get(gpu, 0) <= limit for gpu in gpus)

    def _count_start_failure(self, memo: dpc_state.RequesterMemo, isc_name: str, reason: str) -> None:
        """Count one failed engine start in ``fma_start_failures_total`` (at most once per binding)."""
        if memo.start_failure_counted:
            return
        memo.start_failure_counted = True
        self._side.metrics.start_failures.labels(
            exported_namespace=self._settings.namespace, isc_name=isc_name, reason=reason
        ).inc()

    def _start_failed(
        self,
        requester: Mapping[str, Any],
        memo: dpc_state.RequesterMemo,
        *,
        ip: str,
        commitment: Commitment,
        state: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The instance stopped before its engine ever answered: report, count and back off.

        See docs/controllers.md, "Failures and back-off".
        """
        tail = self._side.agents.instance_log_tail(ip, commitment.instance_id)
        lines = " | ".join(tail.strip().splitlines()[-5:])
        problem = f"the engine stopped before it ever answered (exit code {state.get('exit_code')}): {lines}"
        written = self._side.report(requester, problem)
        self._count_start_failure(memo, commitment.isc_name, "exited")
        node = str(requester["spec"]["nodeName"])
        backoff = self._side.state.start_backoff(node, commitment.config_key)
        backoff.failures += 1
        backoff.not_before = self._side.monotonic() + min(600.0, 10.0 * 2 ** (backoff.failures - 1))
        backoff.isc, backoff.message = commitment.isc_name, problem
        if commitment.isc_name:
            self._enqueue_isc_status(commitment.isc_name)
        return written

    def _mark_awake(
        self,
        requester: Mapping[str, Any],
        launcher: Mapping[str, Any],
        committed: routing_metadata.RoutingMetadata,
    ) -> bool:
        """One launcher write: ``sleeping=false`` plus the committed routing metadata.

        Returns False when the committed metadata is invalid (the requester is then deleted).
        """
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
            self._side.events.record(
                requester_side.with_kind(requester), "Warning", names.EVENT_OUTDATED_ROUTING_METADATA, message
            )
            self._side.delete_requester(requester, "its committed routing metadata is invalid")
            return False
        if not label_patch and not note_patch:
            return True
        meta = _metadata_patch(launcher, label_patch, note_patch)
        try:
            self._side.api.patch(resources.PODS, pod_view.name(launcher), {"metadata": meta}, self._settings.namespace)
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("marking the launcher awake conflicted") from exc
        return True

    # --- unbinding ------------------------------------------------------------------------------

    def unbind(self, provider: Mapping[str, Any], memo: dpc_state.RequesterMemo | None) -> None:
        """Stop routing, put the engine to sleep (or delete an obsolete one), then release the launcher."""
        provider = self._remove_routing(provider)
        notes = pod_view.annotations_of(provider)
        instance_id = notes.get(keys.INSTANCE_ID_ANNOTATION, "")
        ip = pod_view.pod_ip(provider)
        dead = memo is not None and memo.asleep_or_dead
        if instance_id and ip is not None and not dead and not pod_view.is_deleting(provider):
            self._sleep_or_delete(ip, instance_id, notes)
        release_notes: dict[str, None] = {
            k: None for k in (keys.REQUESTER_ANNOTATION, *keys.BOUND_LAUNCHER_ANNOTATIONS) if k in notes
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
            self._side.api.patch(
                resources.PODS, pod_view.name(provider), {"metadata": release}, self._settings.namespace
            )
        except kube.errors.NotFound:
            pass
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("releasing the launcher conflicted") from exc
        if instance_id:
            self._side.state.touch(pod_view.name(provider), instance_id, self._side.monotonic())
        logger.info("unbound launcher", extra={"launcher": pod_view.name(provider)})

    def _remove_routing(self, provider: Mapping[str, Any]) -> Mapping[str, Any]:
        """Step 1: stop routing first, while the engine can still serve; returns the provider as written."""
        notes = pod_view.annotations_of(provider)
        labels = pod_view.labels_of(provider)
        try:
            committed = routing_metadata.parse(notes.get(keys.ISC_ROUTING_METADATA_ANNOTATION))
        except crds_errors.CrdsError:
            committed = routing_metadata.RoutingMetadata()
        route_labels = {k: None for k, v in committed.labels.items() if labels.get(k) == v}
        route_notes = {k: None for k, v in committed.annotations.items() if notes.get(k) == v}
        if not route_labels and not route_notes:
            return provider
        meta = _metadata_patch(provider, route_labels, route_notes)
        try:
            return self._side.api.patch(
                resources.PODS, pod_view.name(provider), {"metadata": meta}, self._settings.namespace
            )
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("removing routing metadata conflicted") from exc

    def _sleep_or_delete(self, ip: str, instance_id: str, notes: Mapping[str, str]) -> None:
        try:
            port = ports.parse_port(keys.SERVER_PORT_ANNOTATION, notes.get(keys.SERVER_PORT_ANNOTATION, ""))
        except crds_errors.CrdsError:
            return
        agents = self._side.agents
        obsolete = False
        try:
            state = agents.get_instance(ip, instance_id)
            if state is None or state.get("status") == "stopped":
                return  # already gone, or nothing to put to sleep
            recomputed = launcher_sync.recomputed_id(self._iscs, self._settings.namespace, state)
            obsolete = recomputed not in (None, instance_id)
        except errors.EngineHTTPError:
            obsolete = False  # the check failed: fall back to sleeping
        if obsolete:
            agents.delete_instance(ip, instance_id)
            return
        agents.sleep(ip, port)
        if not agents.is_sleeping(ip, port):
            raise errors.RetryableError("the engine does not report sleeping yet")


def launcher_serving(launcher: Mapping[str, Any]) -> bool:
    """Whether the bound launcher's API can be called: it has an IP, and is Ready or has said it serves (pure).

    The launcher publishes its inventory on its Pod as soon as its server
    listens (its first publication, before any instance), which is up to
    the readiness probe's initial delay (2 s, ``launcher_template.READINESS_PROBE``)
    before the Pod turns Ready: a new launcher's instance is created on that event instead.
    Only a container in its first run counts this way: after a restart the
    annotation is the previous run's, and the Ready condition decides again.
    """
    if pod_view.pod_ip(launcher) is None:
        return False
    if pod_view.is_ready(launcher):
        return True
    return (
        keys.INSTANCES_ANNOTATION in pod_view.annotations_of(launcher)
        and pod_view.restarts(launcher) == 0
        and pod_view.server_running(launcher)
    )


def published_readiness(launcher: Mapping[str, Any], instance_id: str) -> Literal["ready", "starting"] | None:
    """What the launcher's ``instances`` annotation says of the instance's engine (None: nothing about it)."""
    try:
        published = launcher_inventory.parse(pod_view.annotations_of(launcher).get(keys.INSTANCES_ANNOTATION))
    except crds_errors.CrdsError:
        return None
    item = published.find(instance_id) if published is not None else None
    if item is None or item.status != "running":
        return None
    return "ready" if item.ready else "starting"


def _instance_state(state: Mapping[str, Any] | None) -> requester_plan.InstanceState:
    if state is None:
        return "missing"
    return "stopped" if state.get("status") == "stopped" else "running"


_DELETE_REASONS: dict[str, str] = {
    "delete-requester-launcher-failed": "its launcher Pod failed",
    "delete-requester-instance-vanished": "its bound instance vanished",
    "delete-requester-instance-stopped": "its bound instance stopped",
}


def _metadata_patch(
    pod: Mapping[str, Any], labels: Mapping[str, str | None], annotations: Mapping[str, str | None]
) -> dict[str, Any]:
    """A metadata patch of these label and annotation changes, conditional on the Pod's resourceVersion."""
    meta: dict[str, Any] = {"resourceVersion": pod["metadata"]["resourceVersion"]}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta
