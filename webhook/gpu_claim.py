"""DRA mode in the webhook: a requester gets a ResourceClaim of its own instead of ``nvidia.com/gpu``.

Admission must stay free of side effects (dry runs, a later webhook that
rejects the Pod, a Pod whose name is generated after admission), so the
webhook does not create the claim.  It writes into the Pod:

* ``spec.resourceClaims`` += ``{name: fma-gpus, resourceClaimName: <claim>}``
  where ``<claim>`` is derived from the Pod's (generate)name and the
  admission request's UID (unique per Pod, stable for the request);
* on the requester agent container, ``resources.claims: [{name: fma-gpus}]``
  in place of the user's ``nvidia.com/gpu`` quantities;
* the ``gpu-claim`` annotation: the ``crds.gpu_claims.ClaimPlan`` (count
  as the user asked, the DeviceClass and driver, and the GPUs of the best
  sleeper of the requester's config whose GPUs are all free, when the
  sleeper cache knows one).

The controllers' claim keeper then creates the claim, owned by the Pod
(``controllers.claim_keeper``).  Which requesters use DRA: the webhook's
``gpu_claims`` setting, overridden per Pod by the ``gpu-request``
annotation (``dra`` or ``device-plugin``), so one cluster can have both.

``operations`` and ``claim_name`` are pure; ``preference`` reads the
sleeper cache (memory only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from crds import gpu_claims, keys, names, sleeper_scoring, sleeper_view
from crds import pod_view as crds_pod_view
from kube import sleeper_cache
from webhook import errors, json_patch, pod_view

__all__ = [
    "GPU_REQUEST_ANNOTATION",
    "GpuClaims",
    "Preference",
    "apply_to_agent",
    "choose",
    "claim_name",
    "operations",
    "preference",
    "wanted",
]

logger = logging.getLogger(__name__)

GPU_REQUEST_ANNOTATION: Final = "dual-pods.llm-d.ai/gpu-request"
"""Per-Pod choice of the GPU path: ``dra`` or ``device-plugin`` (default: the webhook's ``gpu_claims``)."""
_VALUES: Final = {"dra": True, "device-plugin": False}
_MAX_BASE = 200


@dataclasses.dataclass(frozen=True)
class GpuClaims:
    """The webhook's DRA settings."""

    default: Literal["device-plugin", "dra"] = "device-plugin"
    device_class: str = gpu_claims.DEVICE_CLASS_DEFAULT
    driver: str = gpu_claims.DRIVER_DEFAULT


@dataclasses.dataclass(frozen=True)
class Preference:
    """The GPUs the claim prefers: a sleeper's, on one node."""

    node: str
    uuids: tuple[str, ...]


def wanted(annotations: Mapping[str, str], settings: GpuClaims) -> bool:
    """Whether this requester gets a claim; raises ``Denial`` on a bad annotation value."""
    value = annotations.get(GPU_REQUEST_ANNOTATION)
    if value is None:
        return settings.default == "dra"
    if value not in _VALUES:
        raise errors.Denial(f"{GPU_REQUEST_ANNOTATION} must be 'dra' or 'device-plugin', got {value!r}")
    return _VALUES[value]


def claim_name(pod: pod_view.PodView, request_uid: str) -> str:
    """``<pod name or generateName>gpus-<10 hex of the request UID>`` (pure)."""
    base = pod.metadata.name or pod.metadata.generate_name or "requester"
    base = base.rstrip("-")[:_MAX_BASE] or "requester"
    digest = hashlib.sha256(request_uid.encode()).hexdigest()[:10]
    return f"{base}-gpus-{digest}".lower()


def apply_to_agent(agent: dict[str, Any]) -> dict[str, Any]:
    """The agent container with ``resources.claims`` instead of GPU quantities (pure; returns a copy)."""
    resources = dict(agent.get("resources") or {})
    for section in ("limits", "requests"):
        resources[section] = {k: v for k, v in (resources.get(section) or {}).items() if k != names.GPU_RESOURCE}
    resources["claims"] = [{"name": gpu_claims.POD_CLAIM_NAME}]
    return {**agent, "resources": resources}


def operations(
    raw: Mapping[str, Any], name: str, count: int, settings: GpuClaims, chosen: Preference | None
) -> tuple[list[json_patch.Operation], dict[str, str]]:
    """JSON Patch ops adding the Pod's claim reference, and the annotations to add (pure).

    Raises ``Denial`` when the Pod already has a claim of FMA's name.
    """
    existing = list((raw.get("spec") or {}).get("resourceClaims") or [])
    if any(isinstance(e, Mapping) and e.get("name") == gpu_claims.POD_CLAIM_NAME for e in existing):
        raise errors.Denial(f"spec.resourceClaims already has an entry named {gpu_claims.POD_CLAIM_NAME!r}")
    plan = gpu_claims.ClaimPlan(
        count=count,
        deviceClass=settings.device_class,
        driver=settings.driver,
        preferredNode=chosen.node if chosen else None,
        preferred=chosen.uuids if chosen and len(chosen.uuids) == count else (),
    )
    entry = {"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": name}
    ops = [json_patch.add("/spec/resourceClaims", [*existing, entry])]
    return ops, {gpu_claims.CLAIM_ANNOTATION: gpu_claims.format_plan(plan)}


def _ordered(node: sleeper_view.NodeView, gpus: frozenset[str]) -> tuple[str, ...]:
    order = {uuid: i for i, uuid in enumerate(node.gpus)}
    return tuple(sorted(gpus, key=lambda u: (order.get(u, len(order)), u)))


def choose(want: sleeper_scoring.Demand, nodes: Sequence[sleeper_view.NodeView]) -> Preference | None:
    """The best free sleeper set of ``want``'s config: nodes in ``sleeper_scoring.rank`` order (pure)."""
    if want.config_key is None or want.gpus <= 0:
        return None
    ranked = sleeper_scoring.rank(want, nodes, sleeper_scoring.Policy(), limit=len(nodes) or 1)
    by_name = {n.name: n for n in nodes}
    for name, _ in ranked:
        node = by_name.get(name)
        if node is None:
            continue
        free = node.free_uuids
        for gpus in sorted(node.sleeper_gpu_sets(want.namespace, want.config_key), key=lambda s: _ordered(node, s)):
            if len(gpus) == want.gpus and gpus <= free:
                return Preference(node=name, uuids=_ordered(node, gpus))
    return None


def preference(
    cache: sleeper_cache.SleeperCache, namespace: str, pod: pod_view.PodView, count: int
) -> Preference | None:
    """The sleeper GPUs the Pod's claim should prefer, from the cache; None when none (or not synced)."""
    if not cache.synced or count <= 0:
        return None
    annotations = pod.metadata.annotations
    direct = crds_pod_view.has_server_patch(annotations) or keys.ACTUATION_ANNOTATION in annotations
    want = sleeper_scoring.demand(
        namespace=namespace,
        pod=pod.metadata.name or pod.metadata.generate_name,
        gpus=count,
        isc_name=annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION),
        direct=direct,
        config_key=annotations.get(keys.CONFIG_KEY_ANNOTATION),
        isc=cache.server_config,
        lc=cache.launcher_config,
        claims=True,
    )
    if want is None:
        return None
    relevant = cache.relevant_nodes(want) or frozenset()
    views = [view for view in (cache.node(name) for name in sorted(relevant)) if view is not None]
    return choose(want, views)
