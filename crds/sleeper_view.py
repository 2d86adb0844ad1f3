"""What placement knows about one node: GPUs, who holds them, sleepers and idle launchers.

Shared by the scheduler extender and the webhook's placement hints (both
feed it from ``kube.sleeper_cache``); moved here from ``extender/`` so that
one model serves both.

A ``NodeView`` is rebuilt from raw objects whenever something on the node
changes (``build``), so the scoring code reads a small immutable value instead
of walking Pods on every request.  The facts come only from the API server
(docs/protocol.md, "Annotations"; docs/extender.md, "The model"):

- the node's GPU UUIDs, in index order, from its ``gpu-map`` entry, and its GPU
  count from ``status.allocatable``;
- GPUs *held*: the ``accelerators`` annotation of each live Pod that requests
  GPUs (a requester once the controller knows its GPUs); a GPU-requesting Pod
  without it holds ``unknown_held`` GPUs that could be any free-looking ones;
- *launchers* that are unbound, not being deleted and not stuck, with their
  published inventory (``instances`` annotation); every running instance of an
  unbound launcher is asleep (``launcher_inventory.asleep``);
- sleeping *direct providers* that carry a ``config-key``.

Bound launchers are left out: the controller never picks one for another
requester.  Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from crds import accelerators, binding_record, gpu_claims, keys, launcher_inventory, pod_view, quantity
from crds import errors as crds_errors

__all__ = [
    "GPU_COUNT_LABEL",
    "GPU_RESOURCE",
    "HOSTNAME_LABEL",
    "Instance",
    "Launcher",
    "NodeView",
    "Sleeper",
    "build",
    "gpu_request",
    "interest_key",
    "interests",
    "inventory_malformed",
    "node_of_pod",
    "node_signature",
    "parse_gpu_map_entry",
    "pod_signature",
]

GPU_RESOURCE: Final = "nvidia.com/gpu"
"""The extended resource the device plugin hands out."""
GPU_COUNT_LABEL: Final = "nvidia.com/gpu.count"
"""The GPU feature discovery label with the node's GPU count (the capacity of a DRA-only node)."""

HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
"""The node selector key that pins providers to their node.

See docs/protocol.md, "Fixed names, containers and environment".
"""

_DONE_PHASES: Final = frozenset({"Succeeded", "Failed"})


@dataclasses.dataclass(frozen=True)
class Instance:
    """One engine instance of a launcher, as published in its inventory."""

    id: str
    config_key: str
    gpus: tuple[str, ...]
    port: int | None
    running: bool


@dataclasses.dataclass(frozen=True)
class Launcher:
    """An unbound launcher Pod that the controller may use for a requester of its LauncherConfig."""

    namespace: str
    name: str
    config_name: str
    instances: tuple[Instance, ...]

    def running(self) -> tuple[Instance, ...]:
        """The instances whose process is alive (asleep, since the launcher is unbound)."""
        return tuple(item for item in self.instances if item.running)


@dataclasses.dataclass(frozen=True)
class Sleeper:
    """A sleeping engine that a requester of the same config key could wake on the same GPUs."""

    namespace: str
    config_key: str
    gpus: frozenset[str]
    provider: str
    """``namespace/name`` of the launcher or direct provider that hosts it."""


@dataclasses.dataclass(frozen=True)
class NodeView:
    """Everything the scoring needs about one node."""

    name: str
    labels: Mapping[str, str]
    gpu_capacity: int
    """Allocatable ``nvidia.com/gpu``."""
    gpus: tuple[str, ...]
    """GPU UUIDs from ``gpu-map``, in index order (empty when the node has no entry)."""
    held: frozenset[str]
    """UUIDs held by live GPU-requesting Pods whose GPUs are known."""
    unknown_held: int
    """GPUs held by live Pods whose GPUs are not known yet (counted from their requests)."""
    launchers: tuple[Launcher, ...] = ()
    direct_sleepers: tuple[Sleeper, ...] = ()

    _free_uuids: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _sleeper_sets: Mapping[tuple[str, str], tuple[frozenset[str], ...]] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    _by_config: Mapping[tuple[str, str], tuple[Launcher, ...]] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Indexes computed once per view, so that judging a node is a few dict lookups.
        sets: dict[tuple[str, str], set[frozenset[str]]] = {}
        for sleeper in self.sleepers():
            sets.setdefault((sleeper.namespace, sleeper.config_key), set()).add(sleeper.gpus)
        by_config: dict[tuple[str, str], list[Launcher]] = {}
        for launcher in self.launchers:
            by_config.setdefault((launcher.namespace, launcher.config_name), []).append(launcher)
        object.__setattr__(self, "_free_uuids", frozenset(self.gpus) - self.held)
        object.__setattr__(self, "_sleeper_sets", {k: tuple(sorted(v, key=sorted)) for k, v in sets.items()})
        object.__setattr__(self, "_by_config", {k: tuple(v) for k, v in by_config.items()})

    @property
    def free_uuids(self) -> frozenset[str]:
        """GPUs not known to be held (``unknown_held`` of them may still be taken)."""
        return self._free_uuids

    @property
    def free_count(self) -> int:
        """How many GPUs the device plugin can still hand out."""
        return max(0, self.gpu_capacity - len(self.held) - self.unknown_held)

    def sleeper_gpu_sets(self, namespace: str, config_key: str) -> tuple[frozenset[str], ...]:
        """The distinct GPU sets of the sleepers of ``config_key`` in ``namespace`` on this node."""
        return self._sleeper_sets.get((namespace, config_key), ())

    def launchers_of(self, namespace: str, config_name: str) -> tuple[Launcher, ...]:
        """The usable launchers of LauncherConfig ``namespace/config_name`` on this node."""
        return self._by_config.get((namespace, config_name), ())

    def sleepers(self) -> list[Sleeper]:
        """Every sleeping engine on the node: running instances of unbound launchers, then direct sleepers."""
        found = [
            Sleeper(
                namespace=launcher.namespace,
                config_key=item.config_key,
                gpus=frozenset(item.gpus),
                provider=f"{launcher.namespace}/{launcher.name}",
            )
            for launcher in self.launchers
            for item in launcher.running()
            if item.config_key and item.gpus
        ]
        found.extend(self.direct_sleepers)
        return found


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _count(raw: object) -> int:
    if raw is None:
        return 0
    try:
        return int(quantity.parse(raw if isinstance(raw, int | str) else str(raw)))
    except ValueError:
        return 0


def gpu_request(spec: Mapping[str, Any]) -> int:
    """GPUs a PodSpec asks for, as the scheduler counts them: max(sum of containers, largest init container)."""

    def of(container: object) -> int:
        if not isinstance(container, Mapping):
            return 0
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        return _count(limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE)))

    app = sum(of(c) for c in spec.get("containers") or [])
    init = max((of(c) for c in spec.get("initContainers") or []), default=0)
    return max(app, init)


def node_of_pod(pod: Mapping[str, Any]) -> str | None:
    """The node a Pod is on: ``spec.nodeName``, else (providers) its hostname node selector or node-name label."""
    spec = _spec(pod)
    name = spec.get("nodeName")
    if isinstance(name, str) and name:
        return name
    selector = spec.get("nodeSelector") or {}
    pinned = selector.get(HOSTNAME_LABEL) if isinstance(selector, Mapping) else None
    if isinstance(pinned, str) and pinned:
        return pinned
    if pod_view.is_launcher(pod):
        value = (_meta(pod).get("labels") or {}).get(keys.NODE_NAME_LABEL)
        return str(value) if value else None
    return None


def parse_gpu_map_entry(value: str | None) -> tuple[str, ...]:
    """The UUIDs of one ``gpu-map`` value (JSON UUID -> index), in index order; () when absent or malformed."""
    if not value:
        return ()
    try:
        table = json.loads(value)
    except json.JSONDecodeError:
        return ()
    if not isinstance(table, dict):
        return ()
    pairs = [(index, uuid) for uuid, index in table.items() if isinstance(index, int) and isinstance(uuid, str)]
    return tuple(uuid for _, uuid in sorted(pairs))


def _live(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase not in _DONE_PHASES


def _launcher(pod: Mapping[str, Any]) -> Launcher | None:
    meta = _meta(pod)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if meta.get("deletionTimestamp") or binding_record.from_annotations(annotations) is not None:
        return None
    if labels.get(keys.LAUNCHER_STUCK_LABEL) == keys.STUCK_TRUE:
        return None
    try:
        inventory = launcher_inventory.parse(annotations.get(keys.INSTANCES_ANNOTATION))
    except crds_errors.InvalidAnnotation:
        # Ignored here; ``kube.sleeper_cache`` counts it (a metric) once per change of the annotation.
        inventory = None
    instances = tuple(
        Instance(
            id=item.id,
            config_key=item.config_key,
            gpus=tuple(item.gpus),
            port=item.port,
            running=item.status == "running",
        )
        for item in (inventory.instances if inventory is not None else [])
    )
    return Launcher(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        config_name=str(labels.get(keys.LAUNCHER_CONFIG_NAME_LABEL) or ""),
        instances=instances,
    )


def inventory_malformed(pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` is a launcher whose ``instances`` annotation is present but does not parse (pure).

    Such a launcher counts as one without instances: it is never a sleeper
    host, and nothing fails because of it.
    """
    meta = _meta(pod)
    if not pod_view.is_launcher(pod):
        return False
    value = (meta.get("annotations") or {}).get(keys.INSTANCES_ANNOTATION)
    if value is None:
        return False
    try:
        launcher_inventory.parse(value)
    except crds_errors.InvalidAnnotation:
        return True
    return False


def _direct_sleeper(pod: Mapping[str, Any]) -> Sleeper | None:
    meta = _meta(pod)
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    if meta.get("deletionTimestamp") or binding_record.from_annotations(annotations) is not None:
        return None
    if labels.get(keys.SLEEPING_LABEL) != keys.SLEEPING_TRUE:
        return None
    config_key = annotations.get(keys.CONFIG_KEY_ANNOTATION)
    try:
        gpus = accelerators.parse(annotations.get(keys.ACCELERATORS_ANNOTATION))
    except crds_errors.InvalidAnnotation:
        return None
    if not config_key or not gpus:
        return None
    namespace = str(meta.get("namespace") or "")
    return Sleeper(
        namespace=namespace,
        config_key=config_key,
        gpus=frozenset(gpus),
        provider=f"{namespace}/{meta.get('name')}",
    )


_VIEW_ANNOTATIONS: Final = (
    keys.ACCELERATORS_ANNOTATION,
    keys.INSTANCES_ANNOTATION,
    keys.REQUESTER_ANNOTATION,
    keys.CONFIG_KEY_ANNOTATION,
    keys.NOMINAL_ANNOTATION,
    gpu_claims.CLAIM_ANNOTATION,
)
_VIEW_LABELS: Final = (keys.LAUNCHER_CONFIG_NAME_LABEL, keys.SLEEPING_LABEL, keys.LAUNCHER_STUCK_LABEL)


def pod_signature(pod: Mapping[str, Any]) -> tuple[object, ...]:
    """Everything of a Pod that ``build`` and ``interests`` read (pure).

    Two versions with equal signatures give equal views, so a change that
    leaves it alone (status, conditions, IPs: most updates) needs no rebuild.
    """
    meta = _meta(pod)
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return (
        node_of_pod(pod),
        _live(pod),
        bool(meta.get("deletionTimestamp")),
        meta.get("namespace"),
        tuple(annotations.get(key) for key in _VIEW_ANNOTATIONS),
        tuple(labels.get(key) for key in _VIEW_LABELS),
        gpu_request(_spec(pod)),
    )


def node_signature(node: Mapping[str, Any]) -> tuple[object, ...]:
    """Everything of a Node that ``build`` reads: its labels and allocatable GPUs (pure)."""
    labels = _meta(node).get("labels") or {}
    status = node.get("status") or {}
    return (tuple(sorted(labels.items())), (status.get("allocatable") or {}).get(GPU_RESOURCE))


def interest_key(kind: str, namespace: str, value: str = "") -> str:
    """An index value of ``interests``: ``key/<ns>/<configKey>``, ``lc/<ns>/<lc>`` or ``direct/<ns>/``."""
    return f"{kind}/{namespace}/{value}"


def interests(pod: Mapping[str, Any]) -> list[str]:
    """What a Pod offers to requesters, as index values (pure; the live model indexes Pods with it).

    A usable launcher offers its LauncherConfig and the config keys of its
    sleeping instances; a sleeping direct provider offers its config key and
    its namespace's sleeper budget.  Everything else offers nothing, so a node
    without any of these scores ``scoring.baseline`` without being looked at.
    Consistent with ``build``: a Pod offers something here iff it adds a
    launcher or sleeper to its node's view.
    """
    if not _live(pod):
        return []
    meta = _meta(pod)
    namespace = str(meta.get("namespace") or "")
    if pod_view.is_launcher(pod):
        launcher = _launcher(pod)
        if launcher is None:
            return []
        found = {interest_key("lc", namespace, launcher.config_name)}
        found.update(
            interest_key("key", namespace, item.config_key)
            for item in launcher.running()
            if item.config_key and item.gpus
        )
        return sorted(found)
    if keys.NOMINAL_ANNOTATION in (meta.get("annotations") or {}):
        sleeper = _direct_sleeper(pod)
        if sleeper is not None:
            return [interest_key("key", namespace, sleeper.config_key), interest_key("direct", namespace)]
    return []


def build(
    name: str,
    node: Mapping[str, Any] | None,
    pods: Iterable[Mapping[str, Any]],
    gpu_map_entry: str | None,
) -> NodeView:
    """Return the view of node ``name`` from its Node object, the Pods on it and its ``gpu-map`` value (pure)."""
    labels: Mapping[str, str] = {}
    capacity = 0
    if node is not None:
        labels = _meta(node).get("labels") or {}
        status = node.get("status") or {}
        allocatable = (status.get("allocatable") or {}).get(GPU_RESOURCE)
        # A DRA-only node offers no nvidia.com/gpu; its GPU count label says how many it has.
        capacity = _count(allocatable if allocatable is not None else labels.get(GPU_COUNT_LABEL))
    held: set[str] = set()
    unknown = 0
    launchers: list[Launcher] = []
    direct: list[Sleeper] = []
    for pod in pods:
        if not _live(pod):
            continue
        meta = _meta(pod)
        annotations = meta.get("annotations") or {}
        if pod_view.is_launcher(pod):
            launcher = _launcher(pod)
            if launcher is not None:
                launchers.append(launcher)
        elif keys.NOMINAL_ANNOTATION in annotations:
            sleeper = _direct_sleeper(pod)
            if sleeper is not None:
                direct.append(sleeper)
        wanted = gpu_claims.pod_gpu_count(pod, gpu_request(_spec(pod)))
        if wanted <= 0:
            continue
        try:
            known = accelerators.parse(annotations.get(keys.ACCELERATORS_ANNOTATION))
        except crds_errors.InvalidAnnotation:
            known = []
        if known and len(known) == wanted:
            held.update(known)
        else:
            unknown += wanted
    return NodeView(
        name=name,
        labels=dict(labels),
        gpu_capacity=capacity,
        gpus=parse_gpu_map_entry(gpu_map_entry),
        held=frozenset(held),
        unknown_held=unknown,
        launchers=tuple(sorted(launchers, key=lambda item: (item.namespace, item.name))),
        direct_sleepers=tuple(direct),
    )
