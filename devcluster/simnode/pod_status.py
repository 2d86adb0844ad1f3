"""A Pod's status (phase, conditions, container statuses) from what simnode observed.

The Pod runner describes each container in a small immutable view; this
module turns that into the status patch, with the kubelet's rules for the
phase and the standard conditions.  Pure: the time is passed in and the
previous conditions keep their ``lastTransitionTime`` when unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from devcluster.simnode import compatibility, pod

__all__ = [
    "ContainerView",
    "PodView",
    "Running",
    "State",
    "Terminated",
    "Waiting",
    "compute",
    "container_status",
    "phase",
]


@dataclasses.dataclass(frozen=True)
class Running:
    """The container's process runs."""

    started_at: str


@dataclasses.dataclass(frozen=True)
class Waiting:
    """The container has not started (yet or again)."""

    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Terminated:
    """The container's process exited."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    signal: int | None = None
    message: str = ""


State = Running | Waiting | Terminated


@dataclasses.dataclass(frozen=True)
class ContainerView:
    """What simnode knows about one container."""

    name: str
    image: str
    state: State
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    last_terminated: Terminated | None = None
    container_id: str = ""


@dataclasses.dataclass(frozen=True)
class PodView:
    """What simnode knows about one Pod."""

    init_containers: tuple[ContainerView, ...]
    containers: tuple[ContainerView, ...]
    restart_policy: str
    host_ip: str
    pod_ip: str | None = None
    start_time: str | None = None
    unsupported: tuple[str, ...] = ()
    terminating: bool = False


def _init_done(view: PodView) -> bool:
    return all(isinstance(c.state, Terminated) and c.state.exit_code == 0 for c in view.init_containers)


def _init_failed(view: PodView) -> bool:
    for init in view.init_containers:
        last = init.last_terminated
        failed = (isinstance(init.state, Terminated) and init.state.exit_code != 0) or (
            isinstance(init.state, Waiting) and last is not None and last.exit_code != 0
        )
        if failed:
            return True
    return False


def _counts(view: PodView) -> tuple[int, int, int, int]:
    """(running, waiting, stopped, succeeded) over the app containers."""
    running = waiting = stopped = succeeded = 0
    for container in view.containers:
        state = container.state
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif container.last_terminated is not None:
            stopped += 1
            succeeded += container.last_terminated.exit_code == 0
        else:
            waiting += 1
    return running, waiting, stopped, succeeded


def _stopped_phase(view: PodView, stopped: int, succeeded: int) -> str:
    if view.restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if view.restart_policy == "Never" else "Running"


def phase(view: PodView) -> str:
    """The Pod phase by the kubelet's rules.  Pure."""
    if view.restart_policy == "Never" and _init_failed(view):
        return "Failed"
    if not _init_done(view):
        return "Pending"
    running, waiting, stopped, succeeded = _counts(view)
    if view.terminating and running == 0 and waiting == 0:
        return "Succeeded" if stopped == succeeded else "Failed"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    return _stopped_phase(view, stopped, succeeded)


def _state_json(state: State, container_id: str) -> dict[str, Any]:
    if isinstance(state, Running):
        return {"running": {"startedAt": state.started_at}}
    if isinstance(state, Waiting):
        waiting = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    terminated: dict[str, Any] = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "startedAt": state.started_at,
        "finishedAt": state.finished_at,
    }
    if state.signal is not None:
        terminated["signal"] = state.signal
    if state.message:
        terminated["message"] = state.message
    if container_id:
        terminated["containerID"] = container_id
    return {"terminated": terminated}


def container_status(view: ContainerView) -> dict[str, Any]:
    """One entry of ``containerStatuses``.  Pure."""
    status: dict[str, Any] = {
        "name": view.name,
        "image": view.image,
        "imageID": "",
        "ready": view.ready,
        "started": view.started,
        "restartCount": view.restart_count,
        "state": _state_json(view.state, view.container_id),
        "lastState": _state_json(view.last_terminated, "") if view.last_terminated else {},
    }
    if view.container_id:
        status["containerID"] = view.container_id
    return status


def _condition(
    kind: str, ok: bool, previous: dict[str, pod.PodCondition], now: str, *, reason: str = "", message: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = before.last_transition_time if before is not None and before.status == status else None
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since or now,
    }
    # Explicit nulls: a strategic merge would otherwise keep an old reason on a True condition.
    condition["reason"] = reason if not ok and reason else None
    condition["message"] = message if not ok and message else None
    return condition


def compute(
    view: PodView,
    previous_conditions: Sequence[pod.PodCondition],
    readiness_gates: Sequence[str],
    now: str,
) -> dict[str, Any]:
    """The ``status`` to patch onto the Pod (strategic merge keeps others' conditions).  Pure."""
    previous = {c.type: c for c in previous_conditions}
    the_phase = phase(view)
    conditions: list[dict[str, Any]] = [
        _condition("PodScheduled", True, previous, now),
        _condition("PodReadyToStartContainers", view.pod_ip is not None, previous, now),
    ]
    incomplete = [
        c.name for c in view.init_containers if not (isinstance(c.state, Terminated) and c.state.exit_code == 0)
    ]
    conditions.append(
        _condition(
            "Initialized",
            not incomplete or the_phase in ("Succeeded",),
            previous,
            now,
            reason="ContainersNotInitialized",
            message=f"containers with incomplete status: [{' '.join(incomplete)}]",
        )
    )
    unready = [c.name for c in view.containers if not c.ready]
    terminal = the_phase in ("Succeeded", "Failed")
    containers_ready = not unready and not terminal
    reason = "PodCompleted" if terminal else "ContainersNotReady"
    message = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
    conditions.append(_condition("ContainersReady", containers_ready, previous, now, reason=reason, message=message))
    missing_gates = [g for g in readiness_gates if previous.get(g) is None or previous[g].status != "True"]
    if containers_ready and missing_gates:
        gate_message = f'corresponding condition of pod readiness gate "{missing_gates[0]}" is not True'
        conditions.append(
            _condition("Ready", False, previous, now, reason="ReadinessGatesNotReady", message=gate_message)
        )
    else:
        conditions.append(_condition("Ready", containers_ready, previous, now, reason=reason, message=message))
    if view.unsupported or compatibility.CONDITION_TYPE in previous:
        conditions.append(
            _condition(
                compatibility.CONDITION_TYPE,
                not view.unsupported,
                previous,
                now,
                reason=compatibility.EVENT_REASON,
                message="; ".join(view.unsupported),
            )
        )
    status: dict[str, Any] = {
        "phase": the_phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "initContainerStatuses": [container_status(c) for c in view.init_containers],
        "containerStatuses": [container_status(c) for c in view.containers],
    }
    if view.pod_ip is not None:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.start_time is not None:
        status["startTime"] = view.start_time
    return status


def disagrees(sent: Mapping[str, Any], observed: pod.PodStatus) -> bool:
    """Whether the apiserver's copy of a Pod's status contradicts the status this node computed.  Pure.

    Compares what a reader acts on: the phase, the status of every condition
    the node owns, and each container's readiness.  Fields the node leaves
    to others (other conditions, times) do not count.
    """
    if observed.phase != sent.get("phase"):
        return True
    seen = {c.type: c.status for c in observed.conditions}
    if any(seen.get(c["type"]) != c["status"] for c in sent.get("conditions") or []):
        return True
    ready = {str(c.get("name")): bool(c.get("ready")) for c in observed.container_statuses}
    return any(ready.get(str(c["name"])) != bool(c.get("ready")) for c in sent.get("containerStatuses") or [])
