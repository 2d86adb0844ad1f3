"""The two extender verbs as pure functions over a cluster snapshot: filter and prioritize.

Each verb parses the Pod's demand, then judges every candidate node with
``scoring`` and builds the wire answer (``protocol``).  They read the cluster
only through ``World`` (the live model, or a hand-made one in tests) and
return an ``Outcome`` for the metrics beside the answer, so the HTTP layer only
parses, calls, counts and serialises (decide, then do).

A Pod that is not an FMA requester is answered at once: filter passes every
node and prioritize gives every node the neutral score, without looking at
any node.  A node unknown to the model passes filter and scores neutral.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from crds import sleeper_config, sleeper_scoring, sleeper_view
from extender import demand, protocol

__all__ = ["Outcome", "World", "filter_nodes", "prioritize"]


class World(Protocol):
    """Read access to the cluster model."""

    def node(self, name: str) -> sleeper_view.NodeView | None:
        """The view of node ``name``, or None when the model does not know it."""
        ...

    def server_config(self, namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
        """The summary of ISC ``namespace/name``, or None."""
        ...

    def launcher_config(self, namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
        """The summary of LauncherConfig ``namespace/name``, or None."""
        ...

    def relevant_nodes(self, want: sleeper_scoring.Demand) -> frozenset[str] | None:
        """The nodes holding anything of interest to ``want`` (sleepers of its config key, launchers of its
        LauncherConfig, direct sleepers of its namespace); every other node scores ``sleeper_scoring.baseline``.
        None means "not known": judge every node."""
        ...


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a verb decided, for metrics and logs."""

    fma: bool
    """Whether the Pod is an FMA requester."""
    nodes: int
    """Candidate nodes judged."""
    best: sleeper_scoring.Placement
    """The class of the best node (``neutral`` for non-FMA Pods)."""


def _demand(args: protocol.ExtenderArgs, world: World) -> sleeper_scoring.Demand | None:
    return demand.of_pod(args.pod, world.server_config, world.launcher_config)


def filter_nodes(args: protocol.ExtenderArgs, world: World) -> tuple[protocol.ExtenderFilterResult, Outcome]:
    """Answer ``/filter``: drop only the nodes that certainly cannot host the requester."""
    names = args.candidate_names()
    want = _demand(args, world)
    failed: dict[str, str] = {}
    unresolvable: dict[str, str] = {}
    if want is not None and sleeper_scoring.node_check_needed(want):
        for name in names:
            rejected = sleeper_scoring.rejection(want, world.node(name))
            if rejected is not None:
                (unresolvable if rejected.unresolvable else failed)[name] = rejected.reason
    passing = [name for name in names if name not in failed and name not in unresolvable]
    if args.cache_capable:
        result = protocol.ExtenderFilterResult(
            node_names=passing, failed_nodes=failed, failed_and_unresolvable_nodes=unresolvable
        )
    else:
        assert args.nodes is not None
        keep = set(passing)
        kept = [item for item, name in zip(args.nodes.items, names, strict=True) if name in keep]
        result = protocol.ExtenderFilterResult(
            nodes=protocol.NodeList(items=kept), failed_nodes=failed, failed_and_unresolvable_nodes=unresolvable
        )
    return result, Outcome(fma=want is not None, nodes=len(names), best=sleeper_scoring.Placement.NEUTRAL)


def prioritize(
    args: protocol.ExtenderArgs, world: World, policy: sleeper_scoring.Policy | None = None
) -> tuple[list[tuple[str, int]], Outcome]:
    """Answer ``/prioritize``: one (host, 0-10 score) per candidate node, in the order sent.

    Plain pairs rather than ``protocol.HostPriority`` objects: building 1,000
    models per call costs more than the scoring; ``protocol.encode_priorities``
    writes the wire form.
    """
    names = args.candidate_names()
    want = _demand(args, world)
    if want is None:
        neutral = [(name, sleeper_scoring.NEUTRAL_SCORE) for name in names]
        return neutral, Outcome(fma=False, nodes=len(names), best=sleeper_scoring.Placement.NEUTRAL)
    answer: list[tuple[str, int]] = []
    best: sleeper_scoring.Assessment | None = None
    relevant = world.relevant_nodes(want)
    base = sleeper_scoring.baseline(want)
    for name in names:
        if relevant is not None and name not in relevant:
            judged = base
        else:
            judged = sleeper_scoring.assess(want, world.node(name), policy)
        answer.append((name, judged.score))
        if best is None or judged.score > best.score:
            best = judged
    return answer, Outcome(
        fma=True, nodes=len(names), best=best.placement if best is not None else sleeper_scoring.Placement.NEUTRAL
    )
