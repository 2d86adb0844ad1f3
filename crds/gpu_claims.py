"""GPUs through Dynamic Resource Allocation: the requester's claim, its plan, and reading it back.

With device-plugin GPUs (``nvidia.com/gpu: N``) the kubelet picks which GPUs
a requester gets, so a requester on its sleeper's node may still miss the
sleeper's GPUs.  In DRA mode a requester instead references a ResourceClaim
of its own (``resource.k8s.io/v1``) whose one request lists prioritized
alternatives (``firstAvailable``): the exact GPUs of the best sleeper of its
config first (subrequest ``sleeper``), then any N devices of the FMA
DeviceClass (subrequest ``any``).  The scheduler's DRA plugin allocates the
first alternative it can satisfy, so a free sleeper set is taken whenever
the requester lands on its node: a hot start by construction.

Who does what (docs/install.md, "DRA clusters"):

* the webhook (admission, no side effects) writes into the Pod the claim
  reference (``spec.resourceClaims`` by ``resourceClaimName``), the
  container's ``resources.claims`` in place of ``nvidia.com/gpu``, and the
  ``gpu-claim`` annotation: this module's ``ClaimPlan`` (count, class,
  driver and the preferred GPUs computed from the sleepers at admission);
* the controllers create the ResourceClaim from that plan, owned by the Pod
  (garbage-collected with it), and recreate it while the Pod is unscheduled;
* the scheduler allocates it, the kubelet (simnode; a real DRA driver on
  GPU nodes) prepares it, and the container sees the GPUs as
  ``NVIDIA_VISIBLE_DEVICES``.

The shared reader ``pod_gpu_count`` / ``claimed_uuids`` is what the
controllers, the scorer and ``kubectl fma`` use for "the GPUs of this Pod"
alongside the device-plugin path.

Pure; no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pydantic

from crds import errors, validation_paths

__all__ = [
    "API_VERSION",
    "CLAIM_ANNOTATION",
    "DEVICE_CLASS_DEFAULT",
    "DEVICE_NAME_PREFIX",
    "DRIVER_DEFAULT",
    "POD_CLAIM_NAME",
    "REQUEST_NAME",
    "SUBREQUEST_ANY",
    "SUBREQUEST_SLEEPER",
    "AllocatedDevice",
    "ClaimPlan",
    "allocated_devices",
    "claim_body",
    "claim_name_of",
    "claim_path",
    "claimed_uuids",
    "device_class_body",
    "device_index",
    "device_name",
    "format_plan",
    "parse_plan",
    "plan_of",
    "pod_gpu_count",
    "uuid_selector",
]

API_VERSION: Final = "resource.k8s.io/v1"
DRIVER_DEFAULT: Final = "gpu.nvidia.com"
"""The DRA driver whose devices FMA claims: NVIDIA's (simnode publishes its GPUs under the same name)."""
DEVICE_CLASS_DEFAULT: Final = "fma-gpu"
"""The DeviceClass FMA requesters claim from: every device of ``type: gpu`` of the driver."""
DEVICE_NAME_PREFIX: Final = "gpu-"
"""NVIDIA's driver names a full GPU ``gpu-<index>``; simnode does the same."""
POD_CLAIM_NAME: Final = "fma-gpus"
"""The name of the claim inside the Pod (``spec.resourceClaims[].name``, ``resources.claims[].name``)."""
REQUEST_NAME: Final = "gpus"
SUBREQUEST_SLEEPER: Final = "sleeper"
SUBREQUEST_ANY: Final = "any"
CLAIM_ANNOTATION: Final = "dual-pods.llm-d.ai/gpu-claim"
"""The requester's ``ClaimPlan`` as JSON, written by the webhook, read by the claim's creator."""

_MAX_NAME = 253
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ClaimPlan(pydantic.BaseModel):
    """What the requester's claim asks for (the ``gpu-claim`` annotation)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    count: int = pydantic.Field(ge=1, le=64)
    device_class: str = pydantic.Field(default=DEVICE_CLASS_DEFAULT, alias="deviceClass", min_length=1)
    driver: str = pydantic.Field(default=DRIVER_DEFAULT, min_length=1)
    preferred_node: str | None = pydantic.Field(default=None, alias="preferredNode")
    preferred: tuple[str, ...] = ()
    """The GPU UUIDs of the best sleeper (exactly ``count`` of them), or empty when there is none."""

    @pydantic.model_validator(mode="after")
    def _preferred_matches_count(self) -> ClaimPlan:
        if self.preferred and len(self.preferred) != self.count:
            raise ValueError(f"preferred names {len(self.preferred)} GPUs, count is {self.count}")
        for uuid in self.preferred:
            if not uuid or '"' in uuid or "\\" in uuid:
                raise ValueError(f"bad GPU UUID {uuid!r}")
        return self


def format_plan(plan: ClaimPlan) -> str:
    """The annotation value (compact JSON, camelCase keys)."""
    return json.dumps(plan.model_dump(by_alias=True, exclude_defaults=True, mode="json"), separators=(",", ":"))


def parse_plan(value: str | None) -> ClaimPlan | None:
    """The plan in an annotation value; None when absent.  Raises ``InvalidAnnotation`` when malformed."""
    if value is None:
        return None
    try:
        return ClaimPlan.model_validate_json(value)
    except pydantic.ValidationError as exc:
        raise errors.InvalidAnnotation(CLAIM_ANNOTATION, value, validation_paths.summary(exc)) from exc


def plan_of(pod: Mapping[str, Any]) -> ClaimPlan | None:
    """The Pod's plan, or None when it has none or a malformed one (readers that must not fail)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return parse_plan(annotations.get(CLAIM_ANNOTATION))
    except errors.InvalidAnnotation:
        return None


def device_name(index: int) -> str:
    """The device name of the GPU of this index."""
    return f"{DEVICE_NAME_PREFIX}{index}"


def device_index(name: str) -> int | None:
    """The GPU index of a device name, or None for a device that is not a whole GPU."""
    if not name.startswith(DEVICE_NAME_PREFIX):
        return None
    rest = name[len(DEVICE_NAME_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def uuid_selector(driver: str, uuids: Sequence[str]) -> str:
    """The CEL expression that matches exactly the devices with these UUIDs."""
    quoted = ", ".join(json.dumps(u) for u in uuids)
    return f"device.attributes[{json.dumps(driver)}].uuid in [{quoted}]"


def device_class_body(name: str = DEVICE_CLASS_DEFAULT, driver: str = DRIVER_DEFAULT) -> dict[str, Any]:
    """The DeviceClass of FMA GPUs: the whole GPUs of ``driver``."""
    expression = f"device.driver == {json.dumps(driver)} && device.attributes[{json.dumps(driver)}].type == 'gpu'"
    return {
        "apiVersion": API_VERSION,
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": expression}}]},
    }


def claim_path(namespace: str, name: str | None = None) -> str:
    """The API path of the namespace's ResourceClaims (or of one)."""
    base = f"/apis/{API_VERSION}/namespaces/{namespace}/resourceclaims"
    return f"{base}/{name}" if name else base


def claim_body(name: str, namespace: str, plan: ClaimPlan, owner: tuple[str, str] | None) -> dict[str, Any]:
    """The requester's ResourceClaim; ``owner`` is the Pod's (name, uid), so the claim goes with it."""
    if len(name) > _MAX_NAME or not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid ResourceClaim name")
    alternatives: list[dict[str, Any]] = []
    if plan.preferred:
        alternatives.append(
            {
                "name": SUBREQUEST_SLEEPER,
                "deviceClassName": plan.device_class,
                "selectors": [{"cel": {"expression": uuid_selector(plan.driver, plan.preferred)}}],
                "allocationMode": "ExactCount",
                "count": plan.count,
            }
        )
    alternatives.append(
        {
            "name": SUBREQUEST_ANY,
            "deviceClassName": plan.device_class,
            "allocationMode": "ExactCount",
            "count": plan.count,
        }
    )
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": owner[0],
                "uid": owner[1],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceClaim",
        "metadata": metadata,
        "spec": {"devices": {"requests": [{"name": REQUEST_NAME, "firstAvailable": alternatives}]}},
    }


def claim_name_of(pod: Mapping[str, Any], pod_claim: str = POD_CLAIM_NAME) -> str | None:
    """The ResourceClaim the Pod's claim ``pod_claim`` refers to: by name, or as generated from a template."""
    spec = pod.get("spec") or {}
    for entry in spec.get("resourceClaims") or []:
        if isinstance(entry, Mapping) and entry.get("name") == pod_claim:
            named = entry.get("resourceClaimName")
            if isinstance(named, str) and named:
                return named
            break
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if isinstance(status, Mapping) and status.get("name") == pod_claim:
            generated = status.get("resourceClaimName")
            return generated if isinstance(generated, str) and generated else None
    return None


class AllocatedDevice(pydantic.BaseModel):
    """One entry of ``status.allocation.devices.results``."""

    model_config = pydantic.ConfigDict(extra="allow", frozen=True)

    request: str
    driver: str
    pool: str
    device: str

    @property
    def subrequest(self) -> str | None:
        """The chosen alternative of a ``firstAvailable`` request (``gpus/sleeper`` → ``sleeper``)."""
        _, sep, sub = self.request.partition("/")
        return sub if sep else None


def allocated_devices(claim: Mapping[str, Any]) -> list[AllocatedDevice]:
    """The devices allocated to the claim (empty while it is unallocated); malformed entries are skipped."""
    allocation = (claim.get("status") or {}).get("allocation") or {}
    results = (allocation.get("devices") or {}).get("results") or []
    found: list[AllocatedDevice] = []
    for item in results:
        try:
            found.append(AllocatedDevice.model_validate(item))
        except pydantic.ValidationError:
            continue
    return found


def claimed_uuids(
    claim: Mapping[str, Any], node_gpus: Mapping[int, str], driver: str = DRIVER_DEFAULT
) -> list[str] | None:
    """The UUIDs of the GPUs allocated to the claim, given the node's index → UUID map.

    None when the claim is unallocated or names a device the map lacks.
    """
    devices = [d for d in allocated_devices(claim) if d.driver == driver]
    if not devices:
        return None
    uuids: list[str] = []
    for item in devices:
        index = device_index(item.device)
        if index is None or index not in node_gpus:
            return None
        uuids.append(node_gpus[index])
    return uuids


def pod_gpu_count(pod: Mapping[str, Any], device_plugin_count: int) -> int:
    """The GPUs a Pod holds or asks for: its device-plugin count, or its claim plan's count (DRA)."""
    if device_plugin_count > 0:
        return device_plugin_count
    plan = plan_of(pod)
    return plan.count if plan is not None and claim_name_of(pod) is not None else 0
