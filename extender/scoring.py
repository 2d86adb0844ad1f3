"""How good a node is for a requester: the placement class and its 0-10 score.

The classes, best first (docs/extender.md has the table and the reasoning):

=============  =====  ==========================================================
class          score  when
=============  =====  ==========================================================
certain_hot     10    a sleeper of the requester's config key sits on GPUs that
                      are free, and the free GPUs are exactly as many as the
                      requester asks for: the device plugin must hand out the
                      sleeper's GPUs, so the controller will wake it.
likely_hot     6..9   a matching sleeper's GPUs are free but the device plugin
                      may pick others: 6 + min(3, floor(4 x chance)), chance =
                      probability that it picks exactly a sleeper's GPU set.
warm             5    an unbound launcher of the ISC's LauncherConfig has a
                      free instance slot and no instance on the ISC's port.
reclaim          4    an unbound launcher of that LauncherConfig exists, but
                      the controller must delete instances in it first.
cold             3    nothing to reuse (new launcher or new direct provider);
                      also the neutral score (non-FMA Pods, unknown nodes, an
                      unknown ISC), so neutral never changes the ranking.
=============  =====  ==========================================================

Then ``min(evictions, 3)`` is subtracted, where evictions counts the other
models' sleepers that this placement forces the controller to delete: the
victims of a reclaim (CONTRACT.md §7.7), or in direct mode the sleepers beyond
the per-GPU sleeper limit on the GPUs it would get (§7.6 step 3).

The device plugin is modelled as picking uniformly among the free GPUs; GPUs
held by Pods whose GPUs are not known yet are modelled the same way.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Final

from extender import demand as demand_mod
from extender import node_view

__all__ = [
    "CERTAIN_HOT_SCORE",
    "COLD_SCORE",
    "LIKELY_HOT_MAX",
    "LIKELY_HOT_MIN",
    "NEUTRAL_SCORE",
    "PENALTY_CAP",
    "RECLAIM_SCORE",
    "WARM_SCORE",
    "Assessment",
    "Placement",
    "Policy",
    "Rejection",
    "assess",
    "baseline",
    "hot_chance",
    "node_check_needed",
    "rejection",
]

CERTAIN_HOT_SCORE: Final = 10
LIKELY_HOT_MIN: Final = 6
LIKELY_HOT_MAX: Final = 9
WARM_SCORE: Final = 5
RECLAIM_SCORE: Final = 4
COLD_SCORE: Final = 3
NEUTRAL_SCORE: Final = COLD_SCORE
"""The score of "nothing known": every node gets it for a non-FMA Pod, so the default plugins decide alone."""
PENALTY_CAP: Final = 3
"""At most this much is subtracted for evictions, so a reclaim never sinks below a useless node's 0."""

_CERTAIN: Final = 1.0 - 1e-9


class Placement(enum.StrEnum):
    """The placement class of a node for a requester (also the metric label ``placement``)."""

    CERTAIN_HOT = "certain_hot"
    LIKELY_HOT = "likely_hot"
    WARM = "warm"
    RECLAIM = "reclaim"
    COLD = "cold"
    NEUTRAL = "neutral"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Knobs of the scoring that mirror the controller's settings."""

    sleeper_limit: int = 2
    """The controller's direct-mode ``--sleeper-limit`` (chart default 2)."""


@dataclasses.dataclass(frozen=True)
class Assessment:
    """One node judged for one requester."""

    placement: Placement
    score: int
    hot_chance: float = 0.0
    evictions: int = 0


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why filter removes a node; ``unresolvable`` means preemption cannot help."""

    reason: str
    unresolvable: bool


_NEUTRAL: Final = Assessment(placement=Placement.NEUTRAL, score=NEUTRAL_SCORE)
_COLD: Final = Assessment(placement=Placement.COLD, score=COLD_SCORE)
_WARM: Final = Assessment(placement=Placement.WARM, score=WARM_SCORE)


def hot_chance(want: demand_mod.Demand, node: node_view.NodeView) -> float:
    """Probability that the device plugin gives the requester exactly the GPUs of a matching sleeper.

    A sleeper matches when it is in the requester's namespace, has its config
    key and GPU count, and all its GPUs are free-looking.  With f free-looking
    GPUs of which u are taken by Pods whose GPUs are unknown, m = f - u really
    free and n wanted: each distinct sleeper GPU set is still free with
    probability C(f-n, u)/C(f, u) and is then picked with probability 1/C(m, n).
    """
    n = want.gpus
    if want.config_key is None or n <= 0:
        return 0.0
    candidates = node.sleeper_gpu_sets(want.namespace, want.config_key)
    if not candidates:
        return 0.0
    free = node.free_uuids
    u = node.unknown_held
    m = min(node.free_count, len(free) - u)
    if m < n:
        return 0.0
    sets = [gpus for gpus in candidates if len(gpus) == n and gpus <= free]
    if not sets:
        return 0.0
    f = len(free)
    still_free = math.comb(f - n, u) / math.comb(f, u)
    return min(1.0, len(sets) * still_free / math.comb(m, n))


def _reclaim_evictions(launcher: node_view.Launcher, want: demand_mod.Demand, max_instances: int) -> tuple[bool, int]:
    """(needs reclaiming, other models' sleepers deleted) for using ``launcher`` (CONTRACT.md §7.7)."""
    running = launcher.running()
    max_others = max_instances - 1
    on_port = [item for item in running if want.port is not None and item.port == want.port]
    if not on_port and len(running) <= max_others:
        return False, 0
    victims = max(len(on_port), len(running) - max_others, 1)
    on_port_other = sum(1 for item in on_port if item.config_key != want.config_key)
    others = [item for item in running if item not in on_port and item.config_key != want.config_key]
    return True, on_port_other + min(victims - len(on_port), len(others))


def _direct_evictions(want: demand_mod.Demand, node: node_view.NodeView, policy: Policy) -> int:
    """Sleepers the controller must delete before it creates a direct provider on the best free GPUs."""
    per_gpu: dict[str, int] = dict.fromkeys(node.free_uuids, 0)
    for sleeper in node.direct_sleepers:
        if sleeper.namespace != want.namespace:
            continue
        for gpu in sleeper.gpus:
            if gpu in per_gpu:
                per_gpu[gpu] += 1
    excess = sorted(max(0, count - policy.sleeper_limit) for count in per_gpu.values())
    return sum(excess[: max(0, want.gpus)])


def _penalised(placement: Placement, base: int, evictions: int, chance: float = 0.0) -> Assessment:
    score = max(0, base - min(evictions, PENALTY_CAP))
    return Assessment(placement=placement, score=score, hot_chance=chance, evictions=evictions)


def assess(want: demand_mod.Demand, node: node_view.NodeView | None, policy: Policy | None = None) -> Assessment:
    """Return the placement class and score of ``node`` for ``want`` (None: a node the model does not know)."""
    policy = policy or Policy()
    if node is None or (want.config_key is None and want.mode is demand_mod.Mode.LAUNCHER):
        return _NEUTRAL
    chance = hot_chance(want, node)
    if chance >= _CERTAIN:
        return Assessment(placement=Placement.CERTAIN_HOT, score=CERTAIN_HOT_SCORE, hot_chance=1.0)
    if chance > 0.0:
        score = LIKELY_HOT_MIN + min(LIKELY_HOT_MAX - LIKELY_HOT_MIN, math.floor(4 * chance))
        return Assessment(placement=Placement.LIKELY_HOT, score=score, hot_chance=chance)
    if want.mode is demand_mod.Mode.DIRECT:
        return _penalised(Placement.COLD, COLD_SCORE, _direct_evictions(want, node, policy))
    return _launcher_assessment(want, node)


def _launcher_assessment(want: demand_mod.Demand, node: node_view.NodeView) -> Assessment:
    """Warm, reclaim or cold for a launcher-mode requester that cannot be hot here."""
    summary = want.launcher_config_summary
    max_instances = summary.max_instances if summary is not None else 1
    best_reclaim: int | None = None
    if want.launcher_config is None:
        return _COLD
    for launcher in node.launchers_of(want.namespace, want.launcher_config):
        needs_reclaim, evictions = _reclaim_evictions(launcher, want, max_instances)
        if not needs_reclaim:
            return _WARM
        best_reclaim = evictions if best_reclaim is None else min(best_reclaim, evictions)
    if best_reclaim is not None:
        return _penalised(Placement.RECLAIM, RECLAIM_SCORE, best_reclaim)
    return _COLD


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def node_check_needed(want: demand_mod.Demand) -> bool:
    """Whether filter must look at nodes at all: only a LauncherConfig with a node selector can rule one out."""
    summary = want.launcher_config_summary
    return want.mode is demand_mod.Mode.LAUNCHER and summary is not None and bool(summary.node_selector)


def rejection(want: demand_mod.Demand, node: node_view.NodeView | None) -> Rejection | None:
    """Return why ``node`` certainly cannot host ``want``, or None (also for unknown nodes).

    The one certainty beyond the scheduler's own filters (which already ran:
    resources, taints, affinity): in launcher mode, a node without a usable
    launcher of the LauncherConfig whose labels do not match the LauncherConfig
    template's node selector, where no launcher could ever run.
    """
    if node is None or not node_check_needed(want):
        return None
    summary = want.launcher_config_summary
    assert summary is not None
    if node.launchers_of(want.namespace, want.launcher_config or ""):
        return None
    if _matches(summary.node_selector, node.labels):
        return None
    return Rejection(
        reason=f"launchers of LauncherConfig {want.launcher_config!r} cannot run here: "
        f"node labels do not match its nodeSelector {dict(summary.node_selector)!r}",
        unresolvable=True,
    )


def baseline(want: demand_mod.Demand) -> Assessment:
    """The assessment of a node that holds nothing of interest to ``want`` (no sleeper of its key, no
    launcher of its LauncherConfig, no direct sleepers of its namespace): cold, or neutral when the ISC is
    unknown.  Equal to what ``assess`` returns for such a node, so callers may skip reading it."""
    if want.config_key is None and want.mode is demand_mod.Mode.LAUNCHER:
        return _NEUTRAL
    return _COLD
