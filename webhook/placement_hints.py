"""Placement hints: node affinity that steers a requester to its sleepers without an extender.

With ``placement: hints`` (or ``hints+extender``) the webhook writes into
each converted requester what the extender would otherwise tell the
scheduler on every cycle:

* one ``preferredDuringSchedulingIgnoredDuringExecution`` term per node
  (``matchFields`` on ``metadata.name``, which takes one value per term) that
  ``crds.sleeper_scoring.rank`` puts above a cold node, weighted by that
  score (0-10, as the extender's prioritize answer), so the stock
  ``NodeAffinity`` plugin ranks the nodes as the extender would; the FMA
  scheduler profile weights that plugin so one point outweighs the others
  (``extender.scheduler_config.hint_weight``);
* the LauncherConfig template's ``nodeSelector`` as a required term, ANDed
  into every existing required term (or as the only one), so the filter verb
  is not needed: a node where no launcher can run is never picked.

With ``nominate: gate``, a requester whose best node is certain-hot also gets
a scheduling gate of ours (``keys.NOMINATE_GATE``, appended to the user's
gates) and that node in ``keys.NOMINATED_NODE_ANNOTATION``
(``gate_operations``): the controllers copy the node into
``status.nominatedNodeName`` and lift the gate, and kube-scheduler then
tries that node first and skips scoring when it fits.  With ``nominate:
plugin`` it gets the annotation alone: the NominatedNode plugin of FMA's
kube-scheduler build restricts the Pod's first attempt to that node when it
has room (``extender/scheduler_plugin``), with no gate and no extra write.

Hints never block: preferred terms only add score, so a Pod whose hinted
nodes are full schedules elsewhere (a nominated node that no longer fits is
only the first node tried).  A hint is computed at admission, so by
scheduling time a sleeper may be gone (docs/performance.md measures how
often).  Operations replace whole arrays computed from the raw object, never
insert into them, so the patch stays idempotent (``json_patch``).

Pure; no I/O.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Final

from crds import keys, sleeper_scoring, sleeper_view
from webhook import json_patch

__all__ = ["NODE_NAME_FIELD", "Hints", "compute", "gate_operations", "operations"]

NODE_NAME_FIELD: Final = "metadata.name"
"""The node field a preferred term matches (exact node names, whatever the nodes' labels)."""

_PREFERRED: Final = "preferredDuringSchedulingIgnoredDuringExecution"
_REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"


@dataclasses.dataclass(frozen=True)
class Hints:
    """What to write into one requester."""

    preferred: tuple[tuple[str, int], ...] = ()
    """(node, 1-10 weight), best first."""
    required: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Node labels every candidate node must have (the LauncherConfig's node selector)."""
    nominee: str | None = None
    """The best node when it is certain-hot (the one a ``nominate`` webhook nominates); None otherwise."""

    @property
    def empty(self) -> bool:
        """Whether there is nothing to write."""
        return not self.preferred and not self.required


def compute(
    want: sleeper_scoring.Demand,
    nodes: Sequence[sleeper_view.NodeView],
    policy: sleeper_scoring.Policy,
    *,
    limit: int,
) -> Hints:
    """The hints for ``want`` given the views of the nodes holding anything of interest to it."""
    ranked = sleeper_scoring.rank(want, nodes, policy, limit=limit)
    preferred = tuple((name, judged.score) for name, judged in ranked if judged.score > 0)
    nominee = ranked[0][0] if ranked and ranked[0][1].placement is sleeper_scoring.Placement.CERTAIN_HOT else None
    required: Mapping[str, str] = {}
    summary = want.launcher_config_summary
    if sleeper_scoring.node_check_needed(want) and summary is not None:
        required = dict(summary.node_selector)
    return Hints(preferred=preferred, required=required, nominee=nominee)


def _node_is(name: str) -> dict[str, Any]:
    return {"key": NODE_NAME_FIELD, "operator": "In", "values": [name]}


def _preferred_terms(hints: Hints) -> list[dict[str, Any]]:
    """One term per node, best first: a ``matchFields`` requirement with ``In`` takes exactly one value."""
    return [
        {
            "weight": weight,
            "preference": {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [name]}]},
        }
        for name, weight in hints.preferred
    ]


def _required_expressions(hints: Hints) -> list[dict[str, Any]]:
    return [{"key": key, "operator": "In", "values": [value]} for key, value in sorted(hints.required.items())]


def operations(raw: Mapping[str, Any], hints: Hints) -> list[json_patch.Operation]:
    """JSON Patch operations writing ``hints`` into the raw Pod ``raw``.

    An affinity of a shape the Kubernetes API would refuse anyway (not an
    object, a term list that is not a list) is left alone: no hint, and the
    apiserver reports the user's error.
    """
    if hints.empty:
        return []
    spec = raw.get("spec")
    if not isinstance(spec, Mapping):
        return []
    preferred = _preferred_terms(hints)
    expressions = _required_expressions(hints)
    affinity = spec.get("affinity")
    if affinity is None:
        return [json_patch.add("/spec/affinity", {"nodeAffinity": _fresh(preferred, expressions)})]
    if not isinstance(affinity, Mapping):
        return []
    node_affinity = affinity.get("nodeAffinity")
    if node_affinity is None:
        return [json_patch.add("/spec/affinity/nodeAffinity", _fresh(preferred, expressions))]
    if not isinstance(node_affinity, Mapping):
        return []
    return _merge_ops(node_affinity, preferred, expressions)


def gate_operations(raw: Mapping[str, Any]) -> list[json_patch.Operation]:
    """JSON Patch operations appending ``keys.NOMINATE_GATE`` to the raw Pod's ``spec.schedulingGates``
    (the user's gates stay, the whole array is replaced); none when the gate is there already or the
    field has a shape the API would refuse (then no nomination either)."""
    spec = raw.get("spec")
    if not isinstance(spec, Mapping):
        return []
    gate = {"name": keys.NOMINATE_GATE}
    existing = spec.get("schedulingGates")
    if existing is None:
        return [json_patch.add("/spec/schedulingGates", [gate])]
    if not isinstance(existing, list) or not all(isinstance(item, Mapping) for item in existing):
        return []
    if any(item.get("name") == keys.NOMINATE_GATE for item in existing):
        return []
    return [json_patch.replace("/spec/schedulingGates", [*copy.deepcopy(existing), gate])]


def _merge_ops(
    node_affinity: Mapping[str, Any], preferred: list[dict[str, Any]], expressions: list[dict[str, Any]]
) -> list[json_patch.Operation]:
    """Ops adding the terms to an existing ``nodeAffinity``: whole arrays replaced, never inserted into."""
    ops: list[json_patch.Operation] = []
    base = json_patch.pointer("spec", "affinity", "nodeAffinity")
    if preferred:
        existing = node_affinity.get(_PREFERRED)
        if existing is None:
            ops.append(json_patch.add(f"{base}/{_PREFERRED}", preferred))
        elif isinstance(existing, list):
            ops.append(json_patch.replace(f"{base}/{_PREFERRED}", [*copy.deepcopy(existing), *preferred]))
    if expressions:
        required = node_affinity.get(_REQUIRED)
        if required is None:
            terms = [{"matchExpressions": expressions}]
            ops.append(json_patch.add(f"{base}/{_REQUIRED}", {"nodeSelectorTerms": terms}))
        elif isinstance(required, Mapping) and isinstance(required.get("nodeSelectorTerms"), list):
            anded = _and_into(required, expressions)
            if anded is not None:
                ops.append(json_patch.replace(f"{base}/{_REQUIRED}", anded))
    return ops


def _fresh(preferred: list[dict[str, Any]], expressions: list[dict[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if expressions:
        value[_REQUIRED] = {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
    if preferred:
        value[_PREFERRED] = preferred
    return value


def _and_into(required: Mapping[str, Any], expressions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The required node affinity with ``expressions`` added to every term (terms are ORed, expressions
    within a term ANDed); None when a term has a shape the API would refuse."""
    result = copy.deepcopy(dict(required))
    terms = result["nodeSelectorTerms"]
    if not terms:
        terms.append({"matchExpressions": list(expressions)})
        return result
    for term in terms:
        if not isinstance(term, dict):
            return None
        current = term.get("matchExpressions")
        if current is None:
            term["matchExpressions"] = list(expressions)
        elif isinstance(current, list):
            term["matchExpressions"] = [*current, *expressions]
        else:
            return None
    return result
