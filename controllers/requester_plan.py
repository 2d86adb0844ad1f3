"""Pure decisions about a requester: what to do when it goes away, and what to relay to it.

Kept apart from the executor (``dual_pods``) so the deletion ordering and the
readiness relay of CONTRACT.md §7.3 and §7.7 step 5 are tested as tables.
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["DeletionStep", "ProviderState", "RelayDecision", "deletion_steps", "relay_decision"]

ProviderState = Literal["none", "deleting", "troubled", "healthy"]
"""The bound provider as deletion sees it: absent, being deleted, troubled (restarted and not Ready), or fine."""

DeletionStep = Literal[
    "release-provider-finalizer", "delete-provider", "unbind", "wait-for-provider", "remove-requester-finalizer"
]


def deletion_steps(provider: ProviderState) -> tuple[DeletionStep, ...]:
    """The steps of one pass once a requester is being deleted (§7.3, §12.1).

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


def relay_decision(*, serving: bool, requester_ready: bool, relayed_before: bool) -> RelayDecision:
    """Readiness relay (§7.7 step 5): make the requester's Ready flag follow the engine.

    ``serving`` is "the engine is awake" (launcher mode) or "the provider is
    Ready" (direct mode).  The actuation is observed once per binding, on the
    first positive relay; a requester already Ready (e.g. after a controller
    restart) counts as relayed without being observed again.
    """
    if serving == requester_ready:
        return RelayDecision(None, observe_actuation=False, mark_relayed=serving and not relayed_before)
    if serving:
        return RelayDecision("become-ready", observe_actuation=not relayed_before, mark_relayed=not relayed_before)
    return RelayDecision("become-unready", observe_actuation=False, mark_relayed=False)
