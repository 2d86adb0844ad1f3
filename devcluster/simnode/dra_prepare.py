"""Preparing a Pod's allocated ResourceClaims, as the kubelet and a DRA driver's plugin do.

The kubelet starts no container of a Pod with claims until every claim is
allocated and reserved for the Pod; it then asks each claim's driver to
prepare the allocated devices, and the container sees them (NVIDIA's driver
injects them by CDI, which sets ``NVIDIA_VISIBLE_DEVICES``).  simnode does
the same for the claims of its own driver: ``container_gpus`` maps each
container that lists a claim in ``resources.claims`` to the UUIDs of the
GPUs allocated on this node, and raises ``PodConfigError`` (the Pod waits in
``ContainerCreating``) while a claim is missing, unallocated, not reserved
for the Pod, or allocated on another node.  ``devices_for`` is pure;
``container_gpus`` reads the claims from the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kube
from crds import gpu_claims
from devcluster.simnode import errors, fleet, pod

__all__ = ["container_gpus", "devices_for", "has_claims"]

_REASON = "FailedPrepareDynamicResources"


def _extra(model: Any) -> Mapping[str, Any]:
    return getattr(model, "model_extra", None) or {}


def has_claims(the_pod: pod.Pod) -> bool:
    """Whether the Pod uses ResourceClaims at all."""
    return bool(_extra(the_pod.spec).get("resourceClaims"))


def _raw_pod(the_pod: pod.Pod) -> dict[str, Any]:
    return {
        "spec": {"resourceClaims": _extra(the_pod.spec).get("resourceClaims") or []},
        "status": {"resourceClaimStatuses": _extra(the_pod.status).get("resourceClaimStatuses") or []},
    }


def devices_for(
    the_pod: pod.Pod, claims: Mapping[str, Mapping[str, Any]], node: fleet.NodeIdentity, driver: str
) -> dict[str, list[str]]:
    """Container name → GPU UUIDs from the Pod's claims (``pod claim name → ResourceClaim``); pure.

    Raises ``PodConfigError`` when a claim of this driver is not ready for
    this Pod on this node.
    """
    node_gpus = dict(enumerate(node.gpu_uuids))
    per_claim: dict[str, list[tuple[str, str]]] = {}
    for pod_claim, claim in claims.items():
        reserved = (claim.get("status") or {}).get("reservedFor") or []
        if not any(isinstance(r, Mapping) and r.get("uid") == the_pod.metadata.uid for r in reserved):
            raise errors.PodConfigError(_REASON, f"claim {pod_claim!r} is not reserved for the pod yet")
        found: list[tuple[str, str]] = []
        for device in gpu_claims.allocated_devices(claim):
            if device.driver != driver:
                continue
            index = gpu_claims.device_index(device.device)
            if device.pool != node.name or index is None or index not in node_gpus:
                raise errors.PodConfigError(
                    _REASON, f"claim {pod_claim!r} holds {device.pool}/{device.device}, not a GPU of {node.name}"
                )
            found.append((device.request.partition("/")[0], node_gpus[index]))
        per_claim[pod_claim] = found
    result: dict[str, list[str]] = {}
    for container in [*the_pod.spec.init_containers, *the_pod.spec.containers]:
        uuids: list[str] = []
        for ref in _extra(container.resources).get("claims") or []:
            name = ref.get("name") if isinstance(ref, Mapping) else None
            if name not in per_claim:
                continue
            request = ref.get("request") or None
            uuids.extend(u for req, u in per_claim[name] if request is None or req == request)
        if uuids:
            result[container.name] = uuids
    return result


def container_gpus(
    api: kube.Client, the_pod: pod.Pod, node: fleet.NodeIdentity, driver: str = gpu_claims.DRIVER_DEFAULT
) -> dict[str, list[str]]:
    """Read the Pod's claims and return container → GPU UUIDs (empty for a Pod without claims).

    Raises ``PodConfigError`` while a claim is missing or not ready.
    """
    if not has_claims(the_pod):
        return {}
    raw = _raw_pod(the_pod)
    claims: dict[str, dict[str, Any]] = {}
    for entry in raw["spec"]["resourceClaims"]:
        pod_claim = str(entry.get("name") or "")
        name = gpu_claims.claim_name_of(raw, pod_claim)
        if name is None:
            if entry.get("resourceClaimTemplateName"):
                raise errors.PodConfigError(_REASON, f"claim {pod_claim!r} has not been generated yet")
            continue
        try:
            claims[pod_claim] = api.request("GET", gpu_claims.claim_path(the_pod.metadata.namespace, name))
        except kube.errors.NotFound as exc:
            raise errors.PodConfigError(_REASON, f"resourceclaim {name!r} not found") from exc
        except kube.errors.KubeError as exc:
            raise errors.PodConfigError(_REASON, f"resourceclaim {name!r} not readable: {exc}") from exc
    return devices_for(the_pod, claims, node, driver)
