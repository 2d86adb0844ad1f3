"""``kubectl fma explain POD``: one requester's story, in order, from what FMA recorded.

Each stage reads the record its component leaves behind, never a guess:

1. **admission** — the webhook's ``converted`` annotation;
2. **scheduling** — ``spec.nodeName``, the ``PodScheduled`` condition (with the
   scheduler's own reason when unschedulable) and ``spec.schedulerName``: the
   placement was sleeper-aware iff the FMA scheduler (with the extender) made it;
3. **gpus** — the ``accelerators`` annotation the controller wrote from the
   requester agent;
4. **binding** — the ``dual`` label, confirmed by the provider's binding record;
5. **actuation** — the controller's ``Actuated*`` Event: path and duration;
6. **readiness relay** — the requester's Ready condition, which the agent flips
   only when the controller relays the engine's readiness;

then the current state (``failed`` while the controller reports a problem) and,
if the requester is not Ready, what it waits for and why: the controller's
``status`` annotation, other Warning Events (``ActuationFailed`` Events only
repeat the annotation, which is the controller's current word), and the
scheduler's message while unscheduled.

Pure; no I/O.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from crds import keys, names, timestamps
from fmactl import errors, pod_events, pod_facts, snapshot

__all__ = ["EventLine", "Explanation", "Stage", "build"]

_MODEL = pydantic.ConfigDict(extra="forbid", frozen=True)

StageState = Literal["done", "pending", "failed", "not-applicable"]


class Stage(pydantic.BaseModel):
    """One step of the story."""

    model_config = _MODEL

    stage: str
    state: StageState
    at: datetime.datetime | None = None
    summary: str


class EventLine(pydantic.BaseModel):
    """One Event about the requester."""

    model_config = _MODEL

    at: datetime.datetime | None
    type: str
    reason: str
    message: str
    count: int
    source: str


class Explanation(pydantic.BaseModel):
    """Everything ``kubectl fma explain`` shows."""

    model_config = _MODEL

    pod: str
    namespace: str
    mode: Literal["launcher", "direct"]
    isc: str = ""
    model: str = ""
    converted: bool
    node: str = ""
    scheduler: str = ""
    sleeper_aware: bool = False
    gpus: list[str] = pydantic.Field(default_factory=list)
    provider: str = ""
    provider_kind: str = ""
    instance_id: str = ""
    path: str = ""
    actuation_seconds: float | None = None
    phase: str = ""
    ready: bool = False
    deleting: bool = False
    stages: list[Stage]
    waiting_for: str = ""
    reasons: list[str] = pydantic.Field(default_factory=list)
    """The controller's own words: its status errors and Warning Events (and the scheduler's, when unscheduled)."""
    events: list[EventLine] = pydantic.Field(default_factory=list)


def _not_ours(pod: Mapping[str, Any]) -> errors.NotFmaPod:
    name = pod_facts.name(pod)
    role = pod_facts.role(pod)
    if role is pod_facts.Role.OTHER:
        return errors.NotFmaPod(
            f'pod "{name}" is not an FMA requester: it has neither the {keys.INFERENCE_SERVER_CONFIG_ANNOTATION} '
            f"nor the {keys.SERVER_PATCH_ANNOTATION} annotation"
        )
    record = pod_facts.binding(pod)
    hint = f'; it is bound to requester "{record.name}", explain that one' if record else ""
    return errors.NotFmaPod(f'pod "{name}" is a server-providing Pod ({role.value}), not a requester{hint}')


def _find_provider(snap: snapshot.Snapshot, requester: Mapping[str, Any]) -> Mapping[str, Any] | None:
    uid = pod_facts.uid(requester)
    for pod in snap.pods:
        record = pod_facts.binding(pod)
        if record is not None and record.uid == uid:
            return pod
    return None


def _admission(pod: Mapping[str, Any], mode: str, isc: str | None) -> Stage:
    converted = pod_facts.annotations_of(pod).get(keys.CONVERTED_ANNOTATION)
    where = f', ISC "{isc}"' if isc else ""
    return Stage(
        stage="admission",
        state="done",
        at=timestamps.parse_time((pod.get("metadata") or {}).get("creationTimestamp")),
        summary=(
            f"converted by the FMA webhook ({keys.CONVERTED_ANNOTATION}={converted}), {mode} mode{where}"
            if converted
            else f"created as a requester directly (not converted by the webhook), {mode} mode{where}"
        ),
    )


def _scheduling(pod: Mapping[str, Any], node: str, scheduler: str, sleeper_aware: bool) -> tuple[Stage, str]:
    """The scheduling stage, and the scheduler's own reason when the Pod is not scheduled."""
    scheduled = pod_facts.condition(pod, "PodScheduled") or {}
    at = timestamps.parse_time(scheduled.get("lastTransitionTime"))
    awareness = "sleeper-aware" if sleeper_aware else "not sleeper-aware"
    if node:
        return Stage(
            stage="scheduling", state="done", at=at, summary=f'on node "{node}" by {scheduler} ({awareness})'
        ), ""
    why = str(scheduled.get("message") or scheduled.get("reason") or "")
    summary = f"not scheduled yet by {scheduler} ({awareness})" + (f": {why}" if why else "")
    return Stage(stage="scheduling", state="pending", at=at, summary=summary), why


def _binding(provider: Mapping[str, Any] | None, dual: str, instance_id: str) -> Stage:
    if provider is not None:
        kind = pod_facts.role(provider).value
        where = f" instance {instance_id}" if instance_id else ""
        return Stage(stage="binding", state="done", summary=f'bound to {kind} "{pod_facts.name(provider)}"{where}')
    if dual:
        return Stage(
            stage="binding", state="pending", summary=f"labelled dual={dual}, but no provider records the binding"
        )
    return Stage(stage="binding", state="pending", summary="not bound to a server-providing Pod")


def _actuation(done: pod_events.Actuation | None) -> Stage:
    if done is None:
        return Stage(stage="actuation", state="pending", summary="no actuation recorded yet")
    took = f" in {done.seconds:g} s" if done.seconds is not None else ""
    return Stage(stage="actuation", state="done", at=done.at, summary=f"{done.path} path{took}")


def _relay(pod: Mapping[str, Any], ready: bool) -> Stage:
    at = timestamps.parse_time((pod_facts.condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if ready:
        return Stage(
            stage="readiness-relay", state="done", at=at, summary="engine readiness relayed: the requester is Ready"
        )
    return Stage(
        stage="readiness-relay",
        state="pending",
        at=at,
        summary="engine readiness not relayed: the requester is not Ready",
    )


def _reasons(
    ready: bool, scheduler_reason: str, controller_errors: list[str], history: list[pod_events.PodEvent]
) -> list[str]:
    """The scheduler's and the controller's own words, without repeats; none once the requester is Ready.

    A Ready requester's earlier Warning Events (say, ``no IP assigned yet`` before
    its IP was known) are history, still listed with the Events, not reasons.
    """
    if ready:
        return []
    reasons = [f"scheduler: {scheduler_reason}"] if scheduler_reason else []
    reasons.extend(f"controller: {problem}" for problem in controller_errors)
    for event in history:
        # ActuationFailed repeats what the controller wrote into the status annotation at the same time; the
        # annotation is its current word (an Event of a problem since cleared, like "no IP assigned yet", is not).
        if event.type != "Warning" or event.reason == names.EVENT_ACTUATION_FAILED:
            continue
        line = f"{event.reason}: {event.message}"
        said = {f"controller: {event.message}", f"scheduler: {event.message}", line}
        if not said & set(reasons):
            reasons.append(line)
    return reasons


def _waiting_for(
    *, deleting: bool, ready: bool, node: str, failed: bool, gpus: list[str], provider: Mapping[str, Any] | None
) -> str:
    if deleting:
        return "deletion: the controller releases the provider, then removes the requester finalizer"
    if ready:
        return ""
    if not node:
        return "scheduling"
    if failed:
        return "a fix of the problem the controller reports"
    if not gpus:
        return "the controller to learn the requester's GPUs from its agent"
    if provider is None:
        return "the controller to bind a server-providing Pod"
    return "the engine to start or wake and the controller to relay its readiness"


def build(
    snap: snapshot.Snapshot, pod: Mapping[str, Any], *, fma_scheduler: str = names.SCHEDULER_NAME_DEFAULT
) -> Explanation:
    """Explain ``pod`` (a requester from ``snap``'s namespace); raise ``NotFmaPod`` for any other Pod."""
    if pod_facts.role(pod) is not pod_facts.Role.REQUESTER:
        raise _not_ours(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    history = pod_events.for_pod(snap.events, pod)
    isc = pod_facts.isc_name(pod)
    mode: Literal["launcher", "direct"] = "launcher" if isc is not None else "direct"
    isc_object = snap.iscs.get(isc or "")
    node = str(spec.get("nodeName") or "")
    scheduler = str(spec.get("schedulerName") or "default-scheduler")
    gpus = pod_facts.gpus(pod)
    provider = _find_provider(snap, pod)
    labels = pod_facts.labels_of(pod)
    instance_id = labels.get(keys.INSTANCE_LABEL, "")
    if provider is not None and not instance_id:
        instance_id = pod_facts.annotations_of(provider).get(keys.INSTANCE_ID_ANNOTATION, "")
    done = pod_events.actuation(history)
    ready = pod_facts.is_ready(pod)
    deleting = pod_facts.is_deleting(pod)
    scheduling, scheduler_reason = _scheduling(pod, node, scheduler, scheduler == fma_scheduler)
    stages = [
        _admission(pod, mode, isc),
        scheduling,
        Stage(stage="gpus", state="done", summary="GPUs " + ", ".join(gpus))
        if gpus
        else Stage(stage="gpus", state="pending", summary="GPUs not known to the controller yet"),
        _binding(provider, labels.get(keys.DUAL_LABEL, ""), instance_id),
        _actuation(done),
        _relay(pod, ready),
    ]
    controller_errors = pod_facts.status_errors(pod)
    failed = bool(controller_errors)
    stages.append(
        Stage(
            stage="current",
            state="done" if ready else ("failed" if failed else "pending"),
            summary=f"phase {status.get('phase') or 'Unknown'}, "
            + ("Ready" if ready else "not Ready")
            + (", being deleted" if deleting else ""),
        )
    )
    return Explanation(
        pod=pod_facts.name(pod),
        namespace=snap.namespace,
        mode=mode,
        isc=isc or "",
        model=pod_facts.model_of_options(isc_object.spec.model_server_config.options) if isc_object else "",
        converted=keys.CONVERTED_ANNOTATION in pod_facts.annotations_of(pod),
        node=node,
        scheduler=scheduler,
        sleeper_aware=scheduler == fma_scheduler,
        gpus=gpus,
        provider=pod_facts.name(provider) if provider is not None else "",
        provider_kind=pod_facts.role(provider).value if provider is not None else "",
        instance_id=instance_id,
        path=done.path if done else "",
        actuation_seconds=done.seconds if done else None,
        phase=str(status.get("phase") or ""),
        ready=ready,
        deleting=deleting,
        stages=stages,
        waiting_for=_waiting_for(
            deleting=deleting, ready=ready, node=node, failed=failed, gpus=gpus, provider=provider
        ),
        reasons=_reasons(ready, scheduler_reason, controller_errors, history),
        events=[
            EventLine(at=e.at, type=e.type, reason=e.reason, message=e.message, count=e.count, source=e.source)
            for e in history
        ],
    )
