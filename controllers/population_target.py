"""The desired launcher count of one (node, LauncherConfig) pair (docs/populator.md, "How it works").

Policies and LauncherConfigs are read here once into small views, leniently:
a policy with an unparsable selector, a negative count or a reference to a
missing or malformed LauncherConfig must still be *read*, because the
populator reports those problems in the policy's status and must keep every
other pair working.  The rules:

- PopulationPolicy(node, LC) is the maximum ``launcherCount`` over the
  policies that match the node and list the LC, 0 if none;
- a node matches when the label selector matches its labels and every
  ``allocatableResources`` range contains its allocatable amount (inclusive);
- an unparsable selector (or an otherwise invalid node selector) matches
  nothing;
- hands-off: the populator neither creates nor deletes launchers of an LC
  that is missing, malformed or being deleted, nor of a pair for which a
  matching policy gives a negative count (our CRD forbids those; objects
  stored under upstream's schema may still have them, and the count is read
  as 0 for the maximum).

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic

from controllers import launcher_template
from crds import launcher_population_policy, validation_paths

__all__ = [
    "ConfigView",
    "CountEntry",
    "PolicyView",
    "Target",
    "node_matches",
    "read_config",
    "read_policy",
    "referenced_configs",
    "target",
]


@dataclasses.dataclass(frozen=True)
class CountEntry:
    """One ``countForLauncher`` entry as read."""

    launcher_config_name: str
    count: int
    """The count used for the maximum (a negative count reads as 0)."""
    negative: bool = False
    """The stored count was negative: the pairs this entry covers are hands-off."""


@dataclasses.dataclass(frozen=True)
class PolicyView:
    """A LauncherPopulationPolicy as the populator uses it."""

    name: str
    generation: int | None
    selector: launcher_population_policy.EnhancedNodeSelector | None
    """None when the node selector is unusable: the policy matches no node."""
    selector_problem: str | None
    """Why the label selector cannot be parsed (reason ``InvalidSelector``)."""
    spec_problems: tuple[str, ...]
    """Other problems with the spec (reason ``InvalidSpec``)."""
    entries: tuple[CountEntry, ...]

    def matches(self, node: Mapping[str, Any]) -> bool:
        """Whether this policy selects ``node`` (a raw Node)."""
        return self.selector is not None and node_matches(self.selector, node)


@dataclasses.dataclass(frozen=True)
class ConfigView:
    """A LauncherConfig as the populator uses it."""

    name: str
    uid: str
    generation: int | None
    malformation: str | None
    """Why no launcher can be built from it (the LC status error), or None."""
    template_hash: str | None
    """The current template hash; None when malformed."""
    deleting: bool = False
    """It has a ``deletionTimestamp``."""

    @property
    def usable(self) -> bool:
        """Whether launchers may be created and deleted for it."""
        return self.malformation is None and not self.deleting


@dataclasses.dataclass(frozen=True)
class Target:
    """What the populator should do for one pair."""

    count: int
    """The desired number of launchers (bound ones included)."""
    hands_off: bool = False
    """Neither create nor delete anything for this pair."""


def _meta(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = raw.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _generation(raw: Mapping[str, Any]) -> int | None:
    value = _meta(raw).get("generation")
    return value if isinstance(value, int) else None


def read_config(raw: Mapping[str, Any]) -> ConfigView:
    """Read a raw LauncherConfig (pure)."""
    meta = _meta(raw)
    problem = launcher_template.malformation(raw)
    digest = launcher_template.template_hash(raw) if problem is None else None
    return ConfigView(
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        generation=_generation(raw),
        malformation=problem,
        template_hash=digest,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _read_entries(raw_entries: object, problems: list[str]) -> tuple[CountEntry, ...]:
    if not isinstance(raw_entries, list):
        problems.append("spec.countForLauncher: must be a list")
        return ()
    entries: list[CountEntry] = []
    for index, item in enumerate(raw_entries):
        where = f"spec.countForLauncher[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be an object")
            continue
        name = item.get("launcherConfigName")
        count = item.get("launcherCount")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.launcherConfigName: must be a non-empty string")
            continue
        if isinstance(count, bool) or not isinstance(count, int):
            problems.append(f"{where}.launcherCount: must be an integer, got {count!r}")
            continue
        if count < 0:
            problems.append(f"{where}.launcherCount: must not be negative, got {count}")
            entries.append(CountEntry(name, 0, negative=True))
            continue
        entries.append(CountEntry(name, count))
    return tuple(entries)


def read_policy(raw: Mapping[str, Any]) -> PolicyView:
    """Read a raw LauncherPopulationPolicy leniently, collecting its problems (pure)."""
    spec = raw.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    problems: list[str] = []
    selector: launcher_population_policy.EnhancedNodeSelector | None = None
    selector_problem: str | None = None
    try:
        selector = launcher_population_policy.EnhancedNodeSelector.model_validate(spec.get("enhancedNodeSelector"))
    except pydantic.ValidationError as exc:
        problems.append(validation_paths.summary(exc, "spec.enhancedNodeSelector"))
    if selector is not None:
        found = selector.label_selector.problems()
        if found:
            selector_problem = "; ".join(found)
            selector = None
    entries = _read_entries(spec.get("countForLauncher"), problems)
    names = [entry.launcher_config_name for entry in entries]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"spec.countForLauncher: launcherConfigName {name!r} appears more than once")
    return PolicyView(
        name=str(_meta(raw).get("name") or ""),
        generation=_generation(raw),
        selector=selector,
        selector_problem=selector_problem,
        spec_problems=tuple(problems),
        entries=entries,
    )


def node_matches(selector: launcher_population_policy.EnhancedNodeSelector, node: Mapping[str, Any]) -> bool:
    """Whether ``selector`` selects the raw ``node`` (labels and inclusive allocatable ranges) (pure)."""
    labels = _meta(node).get("labels") or {}
    status = node.get("status")
    allocatable = (status.get("allocatable") if isinstance(status, Mapping) else None) or {}
    return selector.matches(labels, allocatable)


def referenced_configs(policies: Iterable[PolicyView]) -> set[str]:
    """The names of every LauncherConfig some policy lists (pure)."""
    return {entry.launcher_config_name for policy in policies for entry in policy.entries}


def target(
    node: Mapping[str, Any],
    launcher_config_name: str,
    policies: Sequence[PolicyView],
    configs: Mapping[str, ConfigView],
) -> Target:
    """The desired count of ``launcher_config_name`` on ``node`` (pure; see the module docstring)."""
    config = configs.get(launcher_config_name)
    if config is None or not config.usable:
        return Target(count=0, hands_off=True)
    count = 0
    hands_off = False
    for policy in policies:
        if not policy.matches(node):
            continue
        for entry in policy.entries:
            if entry.launcher_config_name != launcher_config_name:
                continue
            count = max(count, entry.count)
            hands_off = hands_off or entry.negative
    return Target(count=count, hands_off=hands_off)
