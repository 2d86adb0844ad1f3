"""Pure decisions about a requester: its bound path, its deletion, and what to relay to it.

Kept apart from the executors (``dual_pods``, ``launcher_bound``,
``requester_side``) so the launcher-mode bound path, the deletion ordering
and the readiness relay (docs/controllers.md, "How the dual-pods controller
works") are tested as tables.  The bound path is decided in steps: a decision may ask for one more
observation (the instance, then the engine), which the executor makes and
feeds back, so each agent call is made only when the decision needs it.
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "RELAY_GRACE_S",
    "BoundAction",
    "BoundFacts",
    "DeletionStep",
    "EngineState",
    "InstanceState",
    "ProviderState",
    "RelayDecision",
    "bound_step",
    "deletion_steps",
    "relay_decision",
]

RELAY_GRACE_S = 5.0
"""How long a relay may take to show as the requester's Ready flag before it is made again."""

ProviderState = Literal["none", "deleting", "troubled", "healthy"]
"""The bound provider as deletion sees it: absent, being deleted, troubled (restarted and not Ready), or fine."""

DeletionStep = Literal[
    "release-provider-finalizer", "delete-provider", "unbind", "wait-for-provider", "remove-requester-finalizer"
]


def deletion_steps(provider: ProviderState) -> tuple[DeletionStep, ...]:
    """The steps of one pass once a requester is being deleted (docs/protocol.md, "Finalizers").

    The requester's finalizer goes only once no provider is bound to it: after
    a successful unbind, or when there is none.  A provider being deleted is
    released (its finalizer dropped) and waited for; a troubled one is deleted
    first and handled as "deleting" on the next pass.  Until then the
    requester's GPUs stay accounted for.
    """
    if provider == "none":
        return ("remove-requester-finalizer",)
    if provider == "deleting":
        return ("release-provider-finalizer", "wait-for-provider")
    if provider == "troubled":
        return ("delete-provider", "wait-for-provider")
    return ("unbind", "remove-requester-finalizer")


@dataclasses.dataclass(frozen=True)
class RelayDecision:
    """What to tell the requester agent, and whether this is the actuation to observe."""

    call: Literal["become-ready", "become-unready"] | None
    observe_actuation: bool
    mark_relayed: bool
    look_again: float | None = None
    """Seconds until the relay should be checked again (a call made recently has not shown yet)."""


def relay_decision(
    *,
    serving: bool,
    requester_ready: bool,
    relayed_before: bool,
    last_call: Literal["become-ready", "become-unready"] | None = None,
    since_last_call: float | None = None,
) -> RelayDecision:
    """Readiness relay: make the requester's Ready flag follow the engine.

    ``serving`` is "the engine is awake" (launcher mode) or "the provider is
    Ready" (direct mode).  The actuation is observed once per binding, on the
    first positive relay; a requester already Ready (e.g. after a controller
    restart) counts as relayed without being observed again.

    A relay shows on the requester only after its agent's readiness probe
    and the kubelet's status write, and every Pod event in between brings
    the requester back here: the same call made ``since_last_call`` seconds
    ago is not repeated within ``RELAY_GRACE_S``; the decision says when to
    look again instead.  A call made is checked again after the grace, in
    case it was lost (the requester's own status change usually comes
    first, and then there is nothing left to do).
    """
    if serving == requester_ready:
        return RelayDecision(None, observe_actuation=False, mark_relayed=serving and not relayed_before)
    call: Literal["become-ready", "become-unready"] = "become-ready" if serving else "become-unready"
    if last_call == call and since_last_call is not None and since_last_call < RELAY_GRACE_S:
        return RelayDecision(
            None, observe_actuation=False, mark_relayed=False, look_again=RELAY_GRACE_S - since_last_call
        )
    if serving:
        return RelayDecision(
            call, observe_actuation=not relayed_before, mark_relayed=not relayed_before, look_again=RELAY_GRACE_S
        )
    return RelayDecision(call, observe_actuation=False, mark_relayed=False, look_again=RELAY_GRACE_S)


InstanceState = Literal["missing", "stopped", "running"]
"""The bound instance as the launcher reports it."""
EngineState = Literal["sleeping", "awake", "no-answer"]
"""The bound engine's ``/is_sleeping`` answer; ``no-answer`` while it loads."""

BoundAction = Literal[
    "delete-requester-launcher-failed",
    "wait-for-launcher",
    "look-at-instance",
    "delete-requester-instance-vanished",
    "create-instance",
    "report-start-failure-and-delete-requester",
    "delete-requester-instance-stopped",
    "ask-engine",
    "wait-for-engine",
    "wake",
    "serve",
]


@dataclasses.dataclass(frozen=True)
class BoundFacts:
    """What is known about a bound launcher-mode pair; ``None`` means "not observed yet"."""

    launcher_failed: bool
    launcher_reachable: bool
    """The launcher has an IP and is Ready, or has published that it serves (``launcher_bound.launcher_serving``)."""
    instance_known: bool
    """The bound instance was seen to exist before (a later absence means it vanished)."""
    engine_answered: bool
    """The engine answered ``/is_sleeping`` before in this binding."""
    path: Literal["hot", "warm", "cold"] | None
    published: Literal["ready", "starting"] | None = None
    """What the launcher published on its Pod about the instance's engine; None when it published nothing."""
    instance: InstanceState | None = None
    engine: EngineState | None = None


def bound_step(facts: BoundFacts) -> BoundAction:
    """The next step of the bound path, or the observation it needs first.

    ``look-at-instance`` and ``ask-engine`` ask the executor to observe and
    decide again; every other action is final for this reconcile.  An
    instance that stops before its engine ever answered, on a path that
    started it (warm or cold), is a start failure (reported, backed off);
    any other stopped or vanished instance makes the requester be replaced.
    While the launcher's published inventory says the engine is still
    starting, the engine is not asked at all: the Pod event that publishes
    ``ready`` brings the requester back.
    """
    if facts.launcher_failed:
        return "delete-requester-launcher-failed"
    if not facts.launcher_reachable:
        return "wait-for-launcher"
    if facts.instance is None:
        return "look-at-instance"
    if facts.instance == "missing":
        return "delete-requester-instance-vanished" if facts.instance_known else "create-instance"
    if facts.instance == "stopped":
        if not facts.engine_answered and facts.path in ("warm", "cold"):
            return "report-start-failure-and-delete-requester"
        return "delete-requester-instance-stopped"
    if facts.engine is None:
        # A launcher that publishes readiness says when to ask: until then, wait for its Pod event.
        return "wait-for-engine" if facts.published == "starting" else "ask-engine"
    if facts.engine == "no-answer":
        return "wait-for-engine"
    if facts.engine == "sleeping":
        return "wake"
    return "serve"
