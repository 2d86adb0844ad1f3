"""Choosing the launcher for an unbound launcher-mode requester (docs/controllers.md, "Launcher mode").

Pure: it sees candidate launchers as plain data (their instances and when
each was last used) and returns a ``Choice``; the controller carries it out.
The order is hot (a launcher holding the target instance), capacity (room
and no port clash), reclaim (delete victims, fewest first), wait (a
candidate is not ready yet), new (create a launcher already bound).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["Candidate", "Choice", "InstanceView", "choose", "cleanup_needed"]


@dataclasses.dataclass(frozen=True)
class InstanceView:
    """One instance of a candidate launcher."""

    instance_id: str
    port: int | None
    """The ``inference-port`` create annotation; None when missing or unparsable."""
    stopped: bool


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A launcher of the right LauncherConfig on the requester's node."""

    name: str
    ready: bool
    """Has an IP and is Ready (otherwise it is only "not ready yet")."""
    unusable: bool
    """Failed, being deleted or already bound: never chosen."""
    instances: tuple[InstanceView, ...] = ()


@dataclasses.dataclass(frozen=True)
class Choice:
    """What to do for the requester."""

    action: Literal["hot", "capacity", "reclaim", "wait", "new"]
    launcher: str | None = None
    victims: tuple[str, ...] = ()


def cleanup_needed(candidate: Candidate) -> tuple[str, ...]:
    """Instances to delete from an *unbound* launcher before choosing (pure).

    See docs/controllers.md, "Obsolete instances".

    Stopped instances of an unbound launcher are garbage, and an instance
    without a parsable ``inference-port`` cannot be checked for port clashes.
    """
    return tuple(i.instance_id for i in candidate.instances if i.stopped or i.port is None)


def choose(
    candidates: Sequence[Candidate],
    *,
    instance_id: str,
    port: int,
    max_instances: int,
    last_used: Mapping[tuple[str, str], float],
) -> Choice:
    """Pick a launcher for ``instance_id`` on ``port`` (pure).

    ``last_used`` maps (launcher name, instance ID) to a monotonic time; an
    instance missing from it counts as least recently used.
    """
    usable = [c for c in candidates if not c.unusable and c.ready]
    for candidate in usable:
        if any(i.instance_id == instance_id and not i.stopped for i in candidate.instances):
            return Choice("hot", candidate.name)
    max_others = max_instances - 1
    for candidate in usable:
        clash = any(i.port == port for i in candidate.instances)
        if not clash and len(candidate.instances) <= max_others:
            return Choice("capacity", candidate.name)
    best: tuple[int, float, str, tuple[str, ...]] | None = None
    for candidate in usable:
        clashing = [i.instance_id for i in candidate.instances if i.port == port]
        others = sorted(
            (i for i in candidate.instances if i.port != port),
            key=lambda i: (last_used.get((candidate.name, i.instance_id), float("-inf")), i.instance_id),
        )
        needed = max(len(candidate.instances) - max_others, 1)
        victims = list(clashing)
        for other in others:
            if len(victims) >= needed:
                break
            victims.append(other.instance_id)
        if len(victims) < needed:
            continue  # cannot make room (maxInstances smaller than the port clashes allow)
        oldest = min((last_used.get((candidate.name, v), float("-inf")) for v in victims), default=float("inf"))
        plan = (len(victims), oldest, candidate.name, tuple(victims))
        if best is None or plan[:3] < best[:3]:
            best = plan
    if best is not None:
        return Choice("reclaim", best[2], best[3])
    if any(not c.unusable and not c.ready for c in candidates):
        return Choice("wait")
    return Choice("new")
