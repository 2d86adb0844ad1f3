"""What to do for one (node, LauncherConfig) pair: deletes, creates and stuck labels.

See docs/populator.md, "How it works".

``compute`` is the decide half of the populator's pair reconcile: it gets the
pair's launcher Pods (from the cache, or from a direct List when the cache is
behind), the desired count and the current template hash, and returns a
``PairPlan`` that the populator applies.  Keeping it pure lets the tables in
the unit tests cover every rule — bound launchers never touched, stale ones
replaced, excess chosen deterministically (stuck first, then not Ready,
then those holding no instance, then the newest), nothing created while a
deletion is pending, and the next check at the next stuck-threshold
crossing instead of a periodic sweep.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import launcher_phase, population_target
from crds import keys

__all__ = ["Delete", "PairPlan", "PairState", "StuckMark", "compute", "excess_order"]


@dataclasses.dataclass(frozen=True)
class Delete:
    """Delete one launcher with ``{uid, resourceVersion}`` preconditions."""

    name: str
    uid: str
    resource_version: str
    reason: str
    """``stale`` or ``excess``."""


@dataclasses.dataclass(frozen=True)
class StuckMark:
    """Label one launcher stuck and emit the one Warning Event."""

    name: str
    phase: launcher_phase.Phase


@dataclasses.dataclass(frozen=True)
class PairState:
    """Everything the plan for one pair depends on."""

    node_exists: bool
    target: population_target.Target
    template_hash: str | None
    pods: Sequence[Mapping[str, Any]]
    """The pair's launcher Pods (terminating ones included)."""


@dataclasses.dataclass(frozen=True)
class PairPlan:
    """The writes for one pair and when to look again."""

    deletes: tuple[Delete, ...] = ()
    creates: int = 0
    mark_stuck: tuple[StuckMark, ...] = ()
    clear_stuck: tuple[str, ...] = ()
    """Names of launchers whose stuck label is removed (they recovered)."""
    recheck_at: datetime.datetime | None = None
    """The next stuck-threshold crossing of a retained launcher."""
    waiting_for_deletion: bool = False
    """An unbound launcher is terminating: creation waits for it to go."""

    @property
    def writes(self) -> bool:
        """Whether the plan creates or deletes anything."""
        return bool(self.deletes) or self.creates > 0


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name(pod: Mapping[str, Any]) -> str:
    return str(_meta(pod).get("name") or "")


def _delete(pod: Mapping[str, Any], reason: str) -> Delete:
    meta = _meta(pod)
    return Delete(
        name=_name(pod),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        reason=reason,
    )


def _holds_instances(pod: Mapping[str, Any]) -> bool:
    """Whether the launcher's published inventory (its ``instances`` annotation) lists any instance (unreadable: no)."""
    raw = (_meta(pod).get("annotations") or {}).get(keys.INSTANCES_ANNOTATION)
    if not raw:
        return False
    try:
        inventory = json.loads(raw)
    except ValueError:
        return False
    return isinstance(inventory, dict) and bool(inventory.get("instances"))


def excess_order(
    pods: Sequence[Mapping[str, Any]], phases: Mapping[str, launcher_phase.Phase]
) -> list[Mapping[str, Any]]:
    """Current unbound launchers in deletion order: stuck first, then not Ready, then those holding no
    instance before those holding sleeping instances (a sleeper is a future hot start), then newest (pure).

    Ties (same creation second) are broken by name, descending, so the order
    is total and the same on every run.
    """

    def rank(pod: Mapping[str, Any]) -> tuple[int, int, int, str, str]:
        stuck = phases[_name(pod)].stuck
        return (
            0 if stuck else 1,
            1 if launcher_phase.is_ready(pod) else 0,
            1 if _holds_instances(pod) else 0,
            _invert(str(_meta(pod).get("creationTimestamp") or "")),
            _invert(_name(pod)),
        )

    return sorted(pods, key=rank)


def _invert(text: str) -> str:
    # Sorting by the inverted code points sorts descending while keeping one ascending sort for the tuple.
    return "".join(chr(0x10FFFF - ord(char)) for char in text)


def compute(state: PairState, thresholds: launcher_phase.Thresholds, now: datetime.datetime) -> PairPlan:
    """Return the plan for one pair (pure; see the module docstring)."""
    if not state.node_exists or state.target.hands_off:
        return PairPlan()
    bound: list[Mapping[str, Any]] = []
    stale: list[Mapping[str, Any]] = []
    current: list[Mapping[str, Any]] = []
    phases: dict[str, launcher_phase.Phase] = {}
    waiting = False
    for pod in state.pods:
        phase = launcher_phase.classify(pod, state.template_hash, thresholds, now)
        if launcher_phase.is_terminating(pod):
            waiting = waiting or phase is not launcher_phase.Phase.BOUND
            continue
        phases[_name(pod)] = phase
        if phase is launcher_phase.Phase.BOUND:
            bound.append(pod)
        elif phase is launcher_phase.Phase.STALE:
            stale.append(pod)
        else:
            current.append(pod)
    deletes = [_delete(pod, "stale") for pod in stale]
    # Assuming the stale deletions succeed never over-deletes: a stale launcher that survives a conflict
    # only adds to the excess, and the pair is looked at again after any deletion.
    excess = len(bound) + len(current) - state.target.count
    doomed = excess_order(current, phases)[: max(0, excess)]
    deletes.extend(_delete(pod, "excess") for pod in doomed)
    doomed_names = {_name(pod) for pod in doomed}
    retained = [pod for pod in current if _name(pod) not in doomed_names]
    creates = 0
    if not deletes and not waiting:
        creates = max(0, state.target.count - len(bound) - len(current))
    marks: list[StuckMark] = []
    clears: list[str] = []
    crossings: list[datetime.datetime] = []
    for pod in retained:
        name = _name(pod)
        labelled = (_meta(pod).get("labels") or {}).get(keys.LAUNCHER_STUCK_LABEL) == keys.STUCK_TRUE
        if phases[name].stuck and not labelled:
            marks.append(StuckMark(name, phases[name]))
        elif not phases[name].stuck and labelled:
            clears.append(name)
        crossing = launcher_phase.next_crossing(pod, state.template_hash, thresholds, now)
        if crossing is not None:
            crossings.append(crossing)
    return PairPlan(
        deletes=tuple(deletes),
        creates=creates,
        mark_stuck=tuple(marks),
        clear_stuck=tuple(clears),
        recheck_at=min(crossings) if crossings else None,
        waiting_for_deletion=waiting,
    )
