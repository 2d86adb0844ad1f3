"""The hot-hit benchmark (``hot_hit_rate.py``) with one more judgement: could the device plugin hand out a sleeper?

``hot_hit_rate.py`` counts an actuation as "sleeper free" when a matching
sleeper's GPUs are all free.  Under a ``lowest-index`` device plugin (simnode,
the NVIDIA device plugin's default) that is not enough: a requester placed on
the sleeper's node gets the lowest-index free GPUs, and when those are not the
sleeper's, no placement can make the actuation hot.  This script runs
``hot_hit_rate.main`` unchanged, and before each scale-up also judges, from
the Pods and the ``gpu-map`` alone (independently of the extender's model),
whether some matching sleeper's GPUs are exactly the lowest-index pick on its
node (``sleeper_deliverable``).  Each row then gets ``with_sleeper_deliverable``
and ``hot_fraction_sleeper_deliverable``: the hot-hit rate over the actuations
a scheduler could have made hot, the figure the extender's ``>= 0.98`` target
with the allocation policy set refers to.

Arguments are ``hot_hit_rate.py``'s; the result goes to ``--out`` (default
``benchmarks/results/hot_hit_rate_deliverable.json``).
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import hot_hit_rate

from crds import accelerators, binding_record, keys, launcher_inventory
from kube import resources

RESULT = pathlib.Path(__file__).resolve().parent / "results" / "hot_hit_rate_deliverable.json"
_DONE = ("Succeeded", "Failed")


def deliverable(pods: Iterable[Mapping[str, Any]], isc: str, index: Mapping[str, Mapping[str, int]]) -> bool:
    """Whether some running sleeper of ``isc`` on an unbound launcher sits on exactly the GPUs a
    lowest-index device plugin hands a requester of that size on its node (pure).

    ``index``: node -> GPU UUID -> index (``gpu-map``).  GPUs are held by the
    ``accelerators`` annotation of every live non-launcher Pod.
    """
    held: set[str] = set()
    sleepers: list[tuple[str, frozenset[str]]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in _DONE:
            continue
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        if labels.get(keys.COMPONENT_LABEL) != keys.COMPONENT_LAUNCHER:
            held.update(accelerators.parse(annotations.get(keys.ACCELERATORS_ANNOTATION)))
            continue
        if binding_record.from_annotations(annotations) is not None:
            continue
        inventory = launcher_inventory.parse(annotations.get(keys.INSTANCES_ANNOTATION))
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        for item in inventory.instances if inventory is not None else []:
            if item.isc == isc and item.status == "running" and item.gpus:
                sleepers.append((node, frozenset(item.gpus)))
    for node, gpus in sleepers:
        order = index.get(node) or {}
        free = sorted((uuid for uuid in order if uuid not in held), key=lambda uuid: order[uuid])
        if gpus <= set(free) and frozenset(free[: len(gpus)]) == gpus:
            return True
    return False


def _index(api: Any) -> dict[str, dict[str, int]]:
    data = api.get(resources.CONFIG_MAPS, "gpu-map", "default").get("data") or {}
    return {node: {str(k): int(v) for k, v in json.loads(value).items()} for node, value in data.items()}


_actuate = hot_hit_rate.Phase.actuate
_summarise = hot_hit_rate.summarise
_indexes: dict[int, dict[str, dict[str, int]]] = {}


def _judged_actuate(self: hot_hit_rate.Phase, round_index: int, app: str) -> dict[str, Any]:
    index = _indexes.setdefault(id(self.api), _index(self.api))
    judged = deliverable(self.pods(), app, index)
    record = _actuate(self, round_index, app)
    record["sleeper_deliverable"] = judged
    return record


def _judged_summarise(scheduler: str, actuations: list[dict[str, Any]]) -> dict[str, Any]:
    row = _summarise(scheduler, actuations)
    rows = [r for r in actuations if r.get("sleeper_deliverable")]
    row["with_sleeper_deliverable"] = len(rows)
    row["hot_fraction_sleeper_deliverable"] = (
        round(sum(r["path"] == "hot" for r in rows) / len(rows), 3) if rows else None
    )
    return row


def main(argv: list[str] | None = None) -> int:
    """Run ``hot_hit_rate.main`` with the deliverable judgement added; print the extra columns."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in args:
        args += ["--out", str(RESULT)]
    out = pathlib.Path(args[args.index("--out") + 1])
    hot_hit_rate.Phase.actuate = _judged_actuate  # type: ignore[method-assign]
    hot_hit_rate.summarise = _judged_summarise
    code = hot_hit_rate.main(args)
    rows = json.loads(out.read_text())["rows"]
    print(f"\n{'models':>6}  {'scheduler':<19}{'sleeper deliverable':>21}{'hot frac there':>16}")
    for row in rows:
        fraction = row["hot_fraction_sleeper_deliverable"]
        shown = "-" if fraction is None else f"{fraction:.2f}"
        print(f"{row['models']:>6}  {row['scheduler']:<19}{row['with_sleeper_deliverable']:>21}{shown:>16}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
