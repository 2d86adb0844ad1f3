"""simnode as a DRA driver: the ResourceSlices of its nodes and the FMA DeviceClass.

A real DRA driver (NVIDIA's ``gpu.nvidia.com``) runs a kubelet plugin per
node that publishes the node's GPUs as devices of one ResourceSlice and, when
a Pod with an allocated claim starts, prepares the devices (CDI) so that the
container sees them.  simnode plays that part for its ``dra`` and ``both``
nodes: this module builds the slices (devices ``gpu-<index>`` with the
attributes NVIDIA's driver publishes: ``type``, ``uuid``, ``index``,
``minor``, ``productName``, ``brand``, ``architecture`` and the ``memory``
capacity) and publishes them with the DeviceClass; ``dra_prepare`` reads the
allocated claims of a Pod.  Building is pure; ``publish`` does the I/O.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kube
from crds import gpu_claims
from devcluster.simnode import fleet

__all__ = ["publish", "slice_body", "slice_name"]

logger = logging.getLogger(__name__)

_SLICES = f"/apis/{gpu_claims.API_VERSION}/resourceslices"
_CLASSES = f"/apis/{gpu_claims.API_VERSION}/deviceclasses"


def slice_name(node: str, driver: str = gpu_claims.DRIVER_DEFAULT) -> str:
    """The name of the node's slice (one per node and driver)."""
    return f"{node}-{driver}"


def _architecture(product: str) -> str:
    for marker, name in (("H100", "Hopper"), ("H200", "Hopper"), ("A100", "Ampere"), ("L40", "Ada Lovelace")):
        if marker in product:
            return name
    return "Unknown"


def slice_body(
    node: fleet.NodeIdentity, node_uid: str | None, driver: str = gpu_claims.DRIVER_DEFAULT, generation: int = 1
) -> dict[str, Any]:
    """The node's ResourceSlice: one device per GPU, in index order, owned by the Node (pure)."""
    devices = [
        {
            "name": gpu_claims.device_name(index),
            "attributes": {
                "type": {"string": "gpu"},
                "uuid": {"string": uuid},
                "index": {"int": index},
                "minor": {"int": index},
                "productName": {"string": node.gpu_product},
                "brand": {"string": "Nvidia"},
                "architecture": {"string": _architecture(node.gpu_product)},
            },
            "capacity": {"memory": {"value": f"{node.gpu_memory_mib}Mi"}},
        }
        for index, uuid in enumerate(node.gpu_uuids)
    ]
    metadata: dict[str, Any] = {"name": slice_name(node.name, driver)}
    if node_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node_uid}]
    return {
        "apiVersion": gpu_claims.API_VERSION,
        "kind": "ResourceSlice",
        "metadata": metadata,
        "spec": {
            "driver": driver,
            "nodeName": node.name,
            "pool": {"name": node.name, "generation": generation, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def _put(api: kube.Client, collection: str, body: Mapping[str, Any]) -> None:
    name = str(body["metadata"]["name"])
    try:
        api.request("POST", collection, body=body)
        return
    except kube.errors.Conflict:
        pass
    current = api.request("GET", f"{collection}/{name}")
    replaced = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
    api.request("PUT", f"{collection}/{name}", body=replaced)


def publish(
    api: kube.Client,
    nodes: Sequence[fleet.NodeIdentity],
    node_uids: Mapping[str, str],
    *,
    device_class: str = gpu_claims.DEVICE_CLASS_DEFAULT,
    driver: str = gpu_claims.DRIVER_DEFAULT,
) -> int:
    """Create or replace the slices of the DRA nodes and the DeviceClass; returns how many slices.

    The DeviceClass is created only when missing (an installed chart may own it).
    """
    dra_nodes = [n for n in nodes if n.dra]
    if not dra_nodes:
        return 0
    with contextlib.suppress(kube.errors.Conflict):
        api.request("POST", _CLASSES, body=gpu_claims.device_class_body(device_class, driver))
    for node in dra_nodes:
        _put(api, _SLICES, slice_body(node, node_uids.get(node.name), driver))
    logger.info("resource slices published", extra={"slices": len(dra_nodes), "driver": driver})
    return len(dra_nodes)
