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
victims of a reclaim, or in direct mode the sleepers beyond the per-GPU sleeper
limit on the GPUs it would get (both in docs/controllers.md, "How the dual-pods
controller works").

How the device plugin picks GPUs is the ``Allocation`` setting of the
``Policy``: ``lowest-index`` (simnode, and the NVIDIA device plugin's default)
hands out the free GPUs of lowest index, so a node is certain-hot exactly when
the requester's share of the lowest-index free GPUs is a matching sleeper's
set; ``unknown`` models a uniform pick among the free GPUs, so a node is
certain-hot only when the free GPUs are exactly one sleeper's set.  GPUs held
by Pods whose GPUs are not known yet make the lowest-index pick uncertain, and
such a node is judged as under ``unknown``.

One implementation for both users: the extender's prioritize verb scores the
scheduler's candidate nodes with ``assess``, and the webhook's placement hints
name the nodes ``rank`` returns (the same scores, best first).

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from crds import sleeper_config, sleeper_view

__all__ = [
    "ALLOCATIONS",
    "CERTAIN_HOT_SCORE",
    "COLD_SCORE",
    "LIKELY_HOT_MAX",
    "LIKELY_HOT_MIN",
    "NEUTRAL_SCORE",
    "PENALTY_CAP",
    "RECLAIM_SCORE",
    "WARM_SCORE",
    "Allocation",
    "Assessment",
    "Demand",
    "Mode",
    "Placement",
    "Policy",
    "Rejection",
    "assess",
    "baseline",
    "demand",
    "hot_chance",
    "lowest_index_pick",
    "node_check_needed",
    "rank",
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


class Allocation(enum.StrEnum):
    """How the device plugin picks the GPUs it hands a Pod (the ``gpu-allocation`` setting)."""

    LOWEST_INDEX = "lowest-index"
    """The free GPUs of lowest index (``gpu-map`` order): simnode and the NVIDIA device plugin's default."""
    UNKNOWN = "unknown"
    """Any free GPUs: modelled as a uniform pick."""


ALLOCATIONS: Final = tuple(item.value for item in Allocation)
"""The accepted values of the ``gpu-allocation`` setting."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """Knobs of the scoring that mirror the controller's and the device plugin's behaviour."""

    sleeper_limit: int = 2
    """The controller's direct-mode ``--sleeper-limit`` (chart default 2)."""
    allocation: Allocation = Allocation.UNKNOWN
    """The device plugin's GPU pick; the pure default assumes nothing (the processes' settings default to
    ``lowest-index``)."""


class Mode(enum.StrEnum):
    """How a requester is served."""

    LAUNCHER = "launcher"
    DIRECT = "direct"


@dataclasses.dataclass(frozen=True)
class Demand:
    """One requester's wish, resolved against the ISC and LauncherConfig it names."""

    namespace: str
    pod: str
    mode: Mode
    gpus: int
    config_key: str | None
    """None when unknown (missing ISC, or a direct requester without ``config-key``)."""
    launcher_config: str | None = None
    port: int | None = None
    launcher_config_summary: sleeper_config.LauncherConfigSummary | None = None
    claims: bool = False
    """DRA: the requester's own ResourceClaim puts a free matching sleeper's GPUs first
    (``crds.gpu_claims``), so on a node with such a sleeper the hot start is certain."""


def demand(
    *,
    namespace: str,
    pod: str,
    gpus: int,
    isc_name: str | None,
    direct: bool,
    config_key: str | None,
    isc: Callable[[str, str], sleeper_config.ServerConfigSummary | None],
    lc: Callable[[str, str], sleeper_config.LauncherConfigSummary | None],
    claims: bool = False,
) -> Demand | None:
    """The demand of a requester, or None for a Pod that is not one (pure given the lookups).

    ``isc_name``: its ``inference-server-config`` annotation (launcher mode);
    ``direct``: whether it is a direct-mode requester (``server-patch``);
    ``config_key``: its ``config-key`` annotation (direct mode), if any;
    ``isc(namespace, name)`` and ``lc(namespace, name)`` look summaries up;
    ``claims``: it gets its GPUs through a DRA claim (``Demand.claims``).
    """
    if isc_name:
        summary = isc(namespace, isc_name)
        if summary is None:
            return Demand(namespace=namespace, pod=pod, mode=Mode.LAUNCHER, gpus=gpus, config_key=None, claims=claims)
        return Demand(
            namespace=namespace,
            pod=pod,
            mode=Mode.LAUNCHER,
            gpus=gpus,
            config_key=summary.config_key,
            launcher_config=summary.launcher_config_name,
            port=summary.port,
            launcher_config_summary=lc(namespace, summary.launcher_config_name),
            claims=claims,
        )
    if direct:
        return Demand(
            namespace=namespace, pod=pod, mode=Mode.DIRECT, gpus=gpus, config_key=config_key or None, claims=claims
        )
    return None


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


def lowest_index_pick(node: sleeper_view.NodeView, n: int) -> frozenset[str] | None:
    """The GPUs a ``lowest-index`` device plugin hands a Pod asking for ``n`` on ``node``, or None when
    that is not known: GPUs held by Pods whose GPUs are unknown, a ``gpu-map`` entry that does not cover
    the node's allocatable GPUs, or fewer than ``n`` free."""
    if node.unknown_held or n <= 0 or len(node.gpus) < node.gpu_capacity:
        return None
    free = [gpu for gpu in node.gpus if gpu not in node.held]
    if len(free) < n or node.free_count < n:
        return None
    return frozenset(free[:n])


def hot_chance(want: Demand, node: sleeper_view.NodeView, allocation: Allocation = Allocation.UNKNOWN) -> float:
    """Probability that the device plugin gives the requester exactly the GPUs of a matching sleeper.

    A sleeper matches when it is in the requester's namespace, has its config
    key and GPU count, and all its GPUs are free-looking.  Under
    ``lowest-index`` with every held GPU known, the pick is certain: 1 when it
    is a matching sleeper's set, else 0.  Otherwise (``unknown``): with f
    free-looking GPUs of which u are taken by Pods whose GPUs are unknown,
    m = f - u really free and n wanted, each distinct sleeper GPU set is still
    free with probability C(f-n, u)/C(f, u) and is then picked with
    probability 1/C(m, n).  A DRA requester (``want.claims``) gets a free
    matching set whenever there is one: 1.
    """
    n = want.gpus
    if want.config_key is None or n <= 0:
        return 0.0
    candidates = node.sleeper_gpu_sets(want.namespace, want.config_key)
    if not candidates:
        return 0.0
    free = node.free_uuids
    sets = [gpus for gpus in candidates if len(gpus) == n and gpus <= free]
    if not sets:
        return 0.0
    if want.claims:
        return 1.0
    if allocation is Allocation.LOWEST_INDEX:
        pick = lowest_index_pick(node, n)
        if pick is not None:
            return 1.0 if pick in sets else 0.0
    u = node.unknown_held
    m = min(node.free_count, len(free) - u)
    if m < n:
        return 0.0
    f = len(free)
    still_free = math.comb(f - n, u) / math.comb(f, u)
    return min(1.0, len(sets) * still_free / math.comb(m, n))


def _reclaim_evictions(launcher: sleeper_view.Launcher, want: Demand, max_instances: int) -> tuple[bool, int]:
    """(needs reclaiming, other models' sleepers deleted) for using ``launcher``.

    The controller's reclaim deletes every instance on the target port, plus least recently
    used others until a slot is free (at least one deletion).
    """
    running = launcher.running()
    max_others = max_instances - 1
    on_port = [item for item in running if want.port is not None and item.port == want.port]
    if not on_port and len(running) <= max_others:
        return False, 0
    victims = max(len(on_port), len(running) - max_others, 1)
    on_port_other = sum(1 for item in on_port if item.config_key != want.config_key)
    others = [item for item in running if item not in on_port and item.config_key != want.config_key]
    return True, on_port_other + min(victims - len(on_port), len(others))


def _direct_evictions(want: Demand, node: sleeper_view.NodeView, policy: Policy) -> int:
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


def assess(want: Demand, node: sleeper_view.NodeView | None, policy: Policy | None = None) -> Assessment:
    """Return the placement class and score of ``node`` for ``want`` (None: a node the model does not know)."""
    policy = policy or Policy()
    if node is None or (want.config_key is None and want.mode is Mode.LAUNCHER):
        return _NEUTRAL
    chance = hot_chance(want, node, policy.allocation)
    if chance >= _CERTAIN:
        return Assessment(placement=Placement.CERTAIN_HOT, score=CERTAIN_HOT_SCORE, hot_chance=1.0)
    if chance > 0.0:
        score = LIKELY_HOT_MIN + min(LIKELY_HOT_MAX - LIKELY_HOT_MIN, math.floor(4 * chance))
        return Assessment(placement=Placement.LIKELY_HOT, score=score, hot_chance=chance)
    if want.mode is Mode.DIRECT:
        return _penalised(Placement.COLD, COLD_SCORE, _direct_evictions(want, node, policy))
    return _launcher_assessment(want, node)


def _launcher_assessment(want: Demand, node: sleeper_view.NodeView) -> Assessment:
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


def node_check_needed(want: Demand) -> bool:
    """Whether filter must look at nodes at all: only a LauncherConfig with a node selector can rule one out."""
    summary = want.launcher_config_summary
    return want.mode is Mode.LAUNCHER and summary is not None and bool(summary.node_selector)


def rejection(want: Demand, node: sleeper_view.NodeView | None) -> Rejection | None:
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


def baseline(want: Demand) -> Assessment:
    """The assessment of a node that holds nothing of interest to ``want`` (no sleeper of its key, no
    launcher of its LauncherConfig, no direct sleepers of its namespace): cold, or neutral when the ISC is
    unknown.  Equal to what ``assess`` returns for such a node, so callers may skip reading it."""
    if want.config_key is None and want.mode is Mode.LAUNCHER:
        return _NEUTRAL
    return _COLD


def rank(
    want: Demand, nodes: Iterable[sleeper_view.NodeView], policy: Policy | None = None, *, limit: int = 16
) -> list[tuple[str, Assessment]]:
    """The nodes worth preferring for ``want``, best first: those that score above ``baseline`` (hot,
    warm or reclaim), at most ``limit``, ties broken by node name (pure).

    ``nodes`` need only be the ones holding anything of interest (the cache's
    ``relevant_nodes``): every other node scores ``baseline``.  The scores are
    those ``assess`` gives the extender, so hints and the extender rank alike.
    """
    policy = policy or Policy()
    floor = baseline(want).score
    judged = [(node.name, assess(want, node, policy)) for node in nodes]
    better = [(name, item) for name, item in judged if item.score > floor]
    better.sort(key=lambda pair: (-pair[1].score, pair[0]))
    return better[: max(0, limit)]
