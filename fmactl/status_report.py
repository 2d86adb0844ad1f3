"""``kubectl fma status``: who holds each GPU, what each launcher hosts, how each ISC is served.

Built from a ``Snapshot`` only, so every rule here is unit-tested on raw Pod
dicts.  The sources, all written by FMA's own components:

- a **bound** GPU: a provider whose ``requester`` annotation names a requester
  (the binding record), with the requester's ``accelerators`` GPUs; the path
  comes from the requester's ``Actuated*`` Event;
- an **assigned** GPU: a scheduled requester whose GPUs are known but that no
  provider is bound to yet;
- a **sleeping** instance: a launcher's inventory annotation (every running
  instance except the awake bound one, ``crds.launcher_inventory.asleep``), or
  an unbound direct provider labelled ``sleeping=true``.  How long it has slept
  is measured from the dual-pods controller's last write to that provider
  (its managedFields time, which for an unbound provider is the unbind that put
  its last awake engine to sleep), so it is a lower bound for instances that
  fell asleep earlier on the same launcher;
- a **free** GPU: none of the above.

Pure; no I/O.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from crds import keys, launcher_inventory, names, quantity, sleeper_view
from fmactl import pod_events, pod_facts, snapshot

__all__ = [
    "BoundHolder",
    "GpuStatus",
    "IscStatus",
    "LauncherStatus",
    "NodeStatus",
    "PathCounts",
    "Sleeper",
    "StatusReport",
    "build",
]

_MODEL = pydantic.ConfigDict(extra="forbid", frozen=True)


class BoundHolder(pydantic.BaseModel):
    """The requester <-> provider pair that holds a GPU."""

    model_config = _MODEL

    requester: str
    provider: str
    """The provider Pod ("" while the requester only has its GPUs assigned)."""
    instance_id: str = ""
    isc: str = ""
    model: str = ""
    path: str = ""
    """hot, warm or cold from the controller's Event ("" until actuated)."""
    ready: bool = False


class Sleeper(pydantic.BaseModel):
    """A sleeping engine on a GPU."""

    model_config = _MODEL

    provider: str
    instance_id: str = ""
    isc: str = ""
    model: str = ""
    asleep_since: datetime.datetime | None = None
    asleep_seconds: float | None = None
    """At least this long (see the module docstring)."""


class GpuStatus(pydantic.BaseModel):
    """One GPU and what holds it."""

    model_config = _MODEL

    uuid: str
    index: int | None = None
    state: Literal["bound", "assigned", "sleeping", "free"]
    holder: BoundHolder | None = None
    sleepers: list[Sleeper] = pydantic.Field(default_factory=list)


class LauncherStatus(pydantic.BaseModel):
    """One launcher Pod and its instances."""

    model_config = _MODEL

    name: str
    launcher_config: str
    bound_to: str = ""
    ready: bool = False
    stuck: bool = False
    instances: int = 0
    running: int = 0
    asleep: int = 0
    stopped: int = 0


class NodeStatus(pydantic.BaseModel):
    """One GPU node."""

    model_config = _MODEL

    name: str
    gpu_capacity: int
    gpus: list[GpuStatus]
    launchers: list[LauncherStatus]


class PathCounts(pydantic.BaseModel):
    """Actuations by path."""

    model_config = pydantic.ConfigDict(extra="forbid")

    hot: int = 0
    warm: int = 0
    cold: int = 0


class IscStatus(pydantic.BaseModel):
    """One InferenceServerConfig and its requesters."""

    model_config = _MODEL

    name: str
    model: str = ""
    exists: bool = True
    ready: int = 0
    pending: int = 0
    paths: PathCounts
    """Paths of the requesters that exist now, from their ``Actuated*`` Events."""


class StatusReport(pydantic.BaseModel):
    """Everything ``kubectl fma status`` shows."""

    model_config = _MODEL

    namespace: str
    taken_at: datetime.datetime
    nodes: list[NodeStatus]
    iscs: list[IscStatus]
    actuations: PathCounts
    """Every ``Actuated*`` Event still kept in the namespace, including those of requesters now gone."""


def _gpu_capacity(node: Mapping[str, Any]) -> int:
    status = node.get("status") if isinstance(node.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    capacity = status.get("capacity") if isinstance(status.get("capacity"), Mapping) else {}
    assert isinstance(capacity, Mapping)
    value = capacity.get(names.GPU_RESOURCE)
    if value is None:
        # A DRA-only node offers no nvidia.com/gpu: its GPU count label says how many it has.
        value = ((node.get("metadata") or {}).get("labels") or {}).get(sleeper_view.GPU_COUNT_LABEL)
    if value is None:
        return 0
    try:
        return int(quantity.parse(str(value)))
    except ValueError:
        return 0


def _model(snap: snapshot.Snapshot, isc: str) -> str:
    found = snap.iscs.get(isc) if isc else None
    return pod_facts.model_of_options(found.spec.model_server_config.options) if found else ""


def _asleep_for(snap: snapshot.Snapshot, provider: Mapping[str, Any]) -> tuple[datetime.datetime | None, float | None]:
    since = pod_facts.dpc_last_write(provider)
    if since is None:
        return None, None
    return since, max(0.0, (snap.taken_at - since).total_seconds())


@dataclasses.dataclass
class _Holdings:
    """What the provider and requester passes found, per GPU and per node."""

    holders: dict[str, BoundHolder] = dataclasses.field(default_factory=dict)
    sleepers: dict[str, list[Sleeper]] = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
    launchers: dict[str, list[LauncherStatus]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    seen: dict[str, set[str]] = dataclasses.field(default_factory=lambda: collections.defaultdict(set))
    bound_requesters: set[str] = dataclasses.field(default_factory=set)


def _bound(
    snap: snapshot.Snapshot,
    provider: Mapping[str, Any],
    requesters: Mapping[str, Mapping[str, Any]],
    actuations: Mapping[str, pod_events.Actuation | None],
    found: _Holdings,
) -> None:
    record = pod_facts.binding(provider)
    if record is None:
        return
    where = pod_facts.node_of(provider) or ""
    bound_instance = pod_facts.annotations_of(provider).get(keys.INSTANCE_ID_ANNOTATION, "")
    requester = requesters.get(record.uid)
    isc = (pod_facts.isc_name(requester) or "") if requester is not None else ""
    done = actuations.get(record.uid)
    holder = BoundHolder(
        requester=record.name,
        provider=pod_facts.name(provider),
        instance_id=bound_instance,
        isc=isc,
        model=_model(snap, isc),
        path=done.path if done else "",
        ready=pod_facts.is_ready(requester) if requester is not None else False,
    )
    gpus = pod_facts.gpus(requester) if requester is not None else pod_facts.gpus(provider)
    inventory = pod_facts.inventory(provider)
    if not gpus and inventory is not None and bound_instance:
        instance = inventory.find(bound_instance)
        gpus = list(instance.gpus) if instance else []
    for gpu in gpus:
        found.holders[gpu] = holder
        found.seen[where].add(gpu)
    found.bound_requesters.add(record.uid)


def _launcher(snap: snapshot.Snapshot, pod: Mapping[str, Any], found: _Holdings) -> None:
    where = pod_facts.node_of(pod) or ""
    notes, labels = pod_facts.annotations_of(pod), pod_facts.labels_of(pod)
    record = pod_facts.binding(pod)
    bound_instance = notes.get(keys.INSTANCE_ID_ANNOTATION) if record else None
    inventory = pod_facts.inventory(pod)
    instances = inventory.instances if inventory is not None else []
    asleep_ids = (
        set(launcher_inventory.asleep(inventory, bound_instance, labels.get(keys.SLEEPING_LABEL)))
        if inventory is not None
        else set()
    )
    since, slept = _asleep_for(snap, pod) if record is None else (None, None)
    for item in instances:
        if item.id not in asleep_ids:
            continue
        sleeper = Sleeper(
            provider=pod_facts.name(pod),
            instance_id=item.id,
            isc=item.isc,
            model=_model(snap, item.isc),
            asleep_since=since,
            asleep_seconds=slept,
        )
        for gpu in item.gpus:
            found.sleepers[gpu].append(sleeper)
            found.seen[where].add(gpu)
    found.launchers[where].append(
        LauncherStatus(
            name=pod_facts.name(pod),
            launcher_config=labels.get(keys.LAUNCHER_CONFIG_NAME_LABEL, ""),
            bound_to=record.name if record else "",
            ready=pod_facts.is_ready(pod),
            stuck=labels.get(keys.LAUNCHER_STUCK_LABEL) == keys.STUCK_TRUE,
            instances=len(instances),
            running=sum(1 for i in instances if i.status == "running"),
            asleep=len(asleep_ids),
            stopped=sum(1 for i in instances if i.status == "stopped"),
        )
    )


def _direct_sleeper(snap: snapshot.Snapshot, pod: Mapping[str, Any], found: _Holdings) -> None:
    if pod_facts.binding(pod) is not None or pod_facts.labels_of(pod).get(keys.SLEEPING_LABEL) != keys.SLEEPING_TRUE:
        return
    since, slept = _asleep_for(snap, pod)
    sleeper = Sleeper(provider=pod_facts.name(pod), asleep_since=since, asleep_seconds=slept)
    for gpu in pod_facts.gpus(pod):
        found.sleepers[gpu].append(sleeper)
        found.seen[pod_facts.node_of(pod) or ""].add(gpu)


def _assigned(snap: snapshot.Snapshot, requesters: Mapping[str, Mapping[str, Any]], found: _Holdings) -> None:
    """Scheduled requesters that hold GPUs but no provider yet."""
    for uid, requester in requesters.items():
        where = pod_facts.node_of(requester)
        if uid in found.bound_requesters or pod_facts.is_deleting(requester) or where is None:
            continue
        isc = pod_facts.isc_name(requester) or ""
        for gpu in pod_facts.gpus(requester):
            found.holders.setdefault(
                gpu,
                BoundHolder(
                    requester=pod_facts.name(requester),
                    provider="",
                    isc=isc,
                    model=_model(snap, isc),
                    ready=pod_facts.is_ready(requester),
                ),
            )
            found.seen[where].add(gpu)


def _nodes(snap: snapshot.Snapshot, found: _Holdings, only: str | None) -> list[NodeStatus]:
    capacities = {pod_facts.name(n): _gpu_capacity(n) for n in snap.nodes}
    candidates = {n for n, c in capacities.items() if c > 0} | {n for n in snap.gpu_map if n in capacities}
    node_names = sorted(n for n in candidates | set(found.launchers) if n and (only is None or n == only))
    nodes = []
    for name in node_names:
        table = snap.gpu_map.get(name, {})
        uuids = sorted(set(table) | found.seen.get(name, set()), key=lambda u: (table.get(u, 1 << 30), u))
        gpus = []
        for gpu in uuids:
            holder = found.holders.get(gpu)
            asleep = sorted(found.sleepers.get(gpu, []), key=lambda s: (s.provider, s.instance_id))
            state: Literal["bound", "assigned", "sleeping", "free"]
            if holder is not None:
                state = "bound" if holder.provider else "assigned"
            else:
                state = "sleeping" if asleep else "free"
            gpus.append(GpuStatus(uuid=gpu, index=table.get(gpu), state=state, holder=holder, sleepers=asleep))
        nodes.append(
            NodeStatus(
                name=name,
                gpu_capacity=capacities.get(name, len(uuids)),
                gpus=gpus,
                launchers=sorted(found.launchers.get(name, []), key=lambda item: item.name),
            )
        )
    return nodes


def _iscs(
    snap: snapshot.Snapshot,
    requesters: Mapping[str, Mapping[str, Any]],
    actuations: Mapping[str, pod_events.Actuation | None],
) -> list[IscStatus]:
    ready: collections.Counter[str] = collections.Counter()
    pending: collections.Counter[str] = collections.Counter()
    paths: dict[str, PathCounts] = {name: PathCounts() for name in snap.iscs}
    for uid, requester in requesters.items():
        isc = pod_facts.isc_name(requester)
        if isc is None or pod_facts.is_deleting(requester):
            continue
        (ready if pod_facts.is_ready(requester) else pending)[isc] += 1
        counts = paths.setdefault(isc, PathCounts())
        done = actuations.get(uid)
        if done is not None:
            setattr(counts, done.path, getattr(counts, done.path) + 1)
    return [
        IscStatus(
            name=name,
            model=_model(snap, name),
            exists=name in snap.iscs,
            ready=ready[name],
            pending=pending[name],
            paths=paths[name],
        )
        for name in sorted(paths)
    ]


def build(snap: snapshot.Snapshot, *, node: str | None = None) -> StatusReport:
    """Compute the status report; ``node`` limits the node section to that node."""
    pods = [p for p in snap.pods if pod_facts.role(p) is not pod_facts.Role.OTHER]
    requesters = {pod_facts.uid(p): p for p in pods if pod_facts.role(p) is pod_facts.Role.REQUESTER}
    actuations = {uid: pod_events.actuation(pod_events.for_pod(snap.events, pod)) for uid, pod in requesters.items()}
    found = _Holdings()
    for pod in pods:
        role = pod_facts.role(pod)
        if role is pod_facts.Role.REQUESTER:
            continue
        _bound(snap, pod, requesters, actuations, found)
        if role is pod_facts.Role.LAUNCHER:
            _launcher(snap, pod, found)
        else:
            _direct_sleeper(snap, pod, found)
    _assigned(snap, requesters, found)
    totals = PathCounts()
    for raw in snap.events:
        event = pod_events.parse(raw)
        path = pod_events.ACTUATION_REASONS.get(event.reason) if event is not None else None
        if path is not None:
            setattr(totals, path, getattr(totals, path) + 1)
    return StatusReport(
        namespace=snap.namespace,
        taken_at=snap.taken_at,
        nodes=_nodes(snap, found, node),
        iscs=_iscs(snap, requesters, actuations),
        actuations=totals,
    )
