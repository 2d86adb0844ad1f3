"""The simulated Nodes: their names, addresses, GPUs and API objects.

Everything about a Node that follows from simnode's options is derived here,
deterministically, so that a restarted simnode gets the same names, GPU
UUIDs and address blocks and can adopt what ran before.  Pure; no I/O.

Addresses: node *i* owns the loopback block 127.A.B.0/24 with
B = i % 256 and A = 1 + (offset + i // 256) % 127 for process-running nodes
(128 + ... for status-only ones), where the offset comes from a hash of the
node-name prefix, so that two simnodes with different prefixes on one
cluster normally get different blocks (the agent also avoids every Pod IP
it sees in the cluster).  The node's own address is .1 and its Pods get .2
to .254.  Linux routes all of 127.0.0.0/8 to ``lo``, so every such address
can be bound and reached, and none collides with 127.0.0.1 where the
control plane listens.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import uuid
from typing import Any

__all__ = [
    "GPU_MODE_LABEL",
    "GPU_RESOURCE",
    "LEASE_DURATION_SECONDS",
    "LEASE_NAMESPACE",
    "MANAGED_LABEL",
    "NodeIdentity",
    "gpu_map_data",
    "gpu_uuid",
    "lease_body",
    "micro_time",
    "node_body",
    "node_status_body",
    "plan",
    "rfc3339",
]

GPU_RESOURCE = "nvidia.com/gpu"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
MANAGED_LABEL = "devcluster.fma/simnode"
GPU_MODE_LABEL = "devcluster.fma/gpu-mode"
_UUID_NAMESPACE = uuid.UUID("6c1f0d52-52a3-4c55-9a57-3d7f4c7a0f10")
_STATUS_ONLY_FIRST_OCTET = 128


@dataclasses.dataclass(frozen=True)
class NodeIdentity:
    """One simulated Node."""

    name: str
    status_only: bool
    block: tuple[int, int]
    gpu_uuids: tuple[str, ...]
    gpu_product: str
    gpu_memory_mib: int
    cpu: str
    memory: str
    pods: int
    gpu_mode: str = "device-plugin"
    """``device-plugin``, ``dra`` or ``both`` (``options.GPU_MODES``): ``dra`` nodes offer no ``nvidia.com/gpu``."""

    @property
    def host_ip(self) -> str:
        """The node's own loopback address (its InternalIP and the Pods' hostIP)."""
        return f"127.{self.block[0]}.{self.block[1]}.1"

    @property
    def allocatable(self) -> dict[str, str]:
        """Capacity as the API wants it (allocatable is the same)."""
        values = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods), "ephemeral-storage": "100Gi"}
        if self.gpu_uuids and self.gpu_mode != "dra":
            values[GPU_RESOURCE] = str(len(self.gpu_uuids))
        return values

    @property
    def dra(self) -> bool:
        """Whether the node publishes its GPUs as DRA devices (``dra`` or ``both``)."""
        return self.gpu_mode != "device-plugin" and bool(self.gpu_uuids)


_A_VALUES = 127
_MAX_NODES = _A_VALUES * 256


def _offset(prefix: str) -> int:
    return int(hashlib.sha256(prefix.encode()).hexdigest(), 16) % _A_VALUES


def _block(first_octet: int, offset: int, index: int) -> tuple[int, int]:
    if index >= _MAX_NODES:
        raise ValueError(f"too many nodes for the loopback address plan: index {index}")
    return (first_octet + (offset + index // 256) % _A_VALUES, index % 256)


def gpu_uuid(node: str, index: int) -> str:
    """A stable GPU UUID in NVIDIA's ``GPU-xxxxxxxx-...`` form, unique per node and index."""
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node}/{index}')}"


def plan(
    *,
    prefix: str,
    nodes: int,
    status_only_nodes: int,
    gpus_per_node: int,
    gpu_product: str,
    gpu_memory_mib: int,
    cpu: str = "16",
    memory: str = "128Gi",
    pods: int = 110,
    gpu_mode: str = "device-plugin",
) -> list[NodeIdentity]:
    """The Nodes for these options: ``PREFIX-i`` run processes, ``PREFIX-so-j`` only report status."""
    result: list[NodeIdentity] = []
    offset = _offset(prefix)
    for status_only, count, first in ((False, nodes, 1), (True, status_only_nodes, _STATUS_ONLY_FIRST_OCTET)):
        for i in range(count):
            name = f"{prefix}-so-{i}" if status_only else f"{prefix}-{i}"
            result.append(
                NodeIdentity(
                    name=name,
                    status_only=status_only,
                    block=_block(first, offset, i),
                    gpu_uuids=tuple(gpu_uuid(name, g) for g in range(gpus_per_node)),
                    gpu_product=gpu_product,
                    gpu_memory_mib=gpu_memory_mib,
                    cpu=cpu,
                    memory=memory,
                    pods=pods,
                    gpu_mode=gpu_mode,
                )
            )
    return result


def rfc3339(now: datetime.datetime) -> str:
    """Seconds-precision UTC time as the API writes ``Time`` fields."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(now: datetime.datetime) -> str:
    """Microsecond UTC time as the API writes ``MicroTime`` fields (Lease renewTime)."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _labels(node: NodeIdentity) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        MANAGED_LABEL: "status-only" if node.status_only else "process",
        GPU_MODE_LABEL: node.gpu_mode,
    }
    if node.gpu_uuids:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": node.gpu_product,
            "nvidia.com/gpu.count": str(len(node.gpu_uuids)),
            "nvidia.com/gpu.memory": str(node.gpu_memory_mib),
        }
    return labels


def node_body(node: NodeIdentity, now: datetime.datetime) -> dict[str, Any]:
    """The Node object to create, Ready from the start (as the kubelet registers it).

    A Node created without a Ready condition gets the ``not-ready`` taint
    from the node lifecycle controller, which then removes it at the
    controller's own pace; at a thousand nodes that takes minutes.
    """
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": _labels(node), "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {},
        **node_status_body(node, now),
    }


def node_status_body(node: NodeIdentity, now: datetime.datetime, *, transition: bool = True) -> dict[str, Any]:
    """A status patch that reports the Node Ready with its capacity and address.

    ``transition=False`` (periodic heartbeats) leaves each condition's
    ``lastTransitionTime`` as it is: a strategic merge keys conditions by type.
    """
    stamp = rfc3339(now)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        result = {"type": kind, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": stamp}
        if transition:
            result["lastTransitionTime"] = stamp
        return result

    return {
        "status": {
            "capacity": node.allocatable,
            "allocatable": node.allocatable,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "simnode has sufficient memory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "simnode has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "simnode has sufficient PID"),
                condition("Ready", "True", "KubeletReady", "simnode is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": node.host_ip}, {"type": "Hostname", "address": node.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": node.name,
                "systemUUID": str(uuid.uuid5(_UUID_NAMESPACE, node.name)),
                "bootID": "simnode",
                "kernelVersion": "simnode",
                "osImage": "simnode",
                "containerRuntimeVersion": "simnode://1",
                "kubeletVersion": "v1.35.4",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    }


def lease_body(node: NodeIdentity, node_uid: str | None, now: datetime.datetime) -> dict[str, Any]:
    """The node's heartbeat Lease, owned by its Node so that it goes with it."""
    metadata: dict[str, Any] = {"name": node.name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(now),
        },
    }


def gpu_map_data(nodes: list[NodeIdentity]) -> dict[str, str]:
    """The ``gpu-map`` ConfigMap data: node name → JSON of UUID → index.

    See docs/protocol.md, "Fixed names, containers and environment".
    """
    result: dict[str, str] = {}
    for node in nodes:
        if node.gpu_uuids:
            pairs = ", ".join(f'"{u}": {i}' for i, u in enumerate(node.gpu_uuids))
            result[node.name] = "{" + pairs + "}"
    return result
