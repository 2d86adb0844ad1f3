"""Which GPUs and Pod addresses of one node are held, and by which Pod.

Shared by the node's Pod runners (thread-safe) and seeded from the runtime
records after a restart, so that adopted Pods keep their GPUs and addresses
and new Pods never get them twice.  The decisions themselves are made by
the pure ``gpu_allocation`` and ``loopback_address`` modules.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Mapping, Sequence

from devcluster.simnode import errors, fleet, gpu_allocation, loopback_address, pod

__all__ = ["NodeLedger"]


class NodeLedger:
    """GPU and address assignments of one node's live Pods."""

    def __init__(self, node: fleet.NodeIdentity, strategy: str = "lowest", rng: random.Random | None = None) -> None:
        self.node = node
        self._strategy = strategy
        self._rng = rng or random.Random()  # noqa: S311 - spreading GPUs, not security
        self._lock = threading.Lock()
        self._gpus: dict[str, dict[str, list[str]]] = {}
        self._ips: dict[str, str] = {}

    def restore(self, uid: str, pod_ip: str | None, gpus: dict[str, list[str]]) -> None:
        """Record what a Pod held before a restart."""
        with self._lock:
            if pod_ip:
                self._ips[uid] = pod_ip
            if gpus:
                self._gpus[uid] = {k: list(v) for k, v in gpus.items()}

    def assign(
        self,
        the_pod: pod.Pod,
        current_ip: str | None,
        *,
        with_gpus: bool = True,
        foreign_ips: Collection[str] = (),
        claimed: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[str, dict[str, list[str]]]:
        """The Pod's address and GPUs (existing ones are kept).  Raises ``PodConfigError``.

        ``claimed`` holds the GPUs of the Pod's allocated DRA claims per
        container (``dra_prepare``); they are recorded with the device-plugin
        GPUs, so that neither path hands them to another Pod.

        Status-only nodes pass ``with_gpus=False``: nothing runs, so only
        the address matters.  ``foreign_ips`` are addresses of other Pods in
        the cluster (another simnode's), which are avoided too.
        """
        uid = the_pod.metadata.uid
        with self._lock:
            others_ips = {ip for other, ip in self._ips.items() if other != uid}
            others_ips.update(foreign_ips)
            ip = loopback_address.assign(self.node.block, self._ips.get(uid, current_ip), others_ips)
            gpus = self._gpus.get(uid)
            if gpus is None and not with_gpus:
                gpus = {}
            if gpus is None:
                in_use = {g for other, held in self._gpus.items() if other != uid for gs in held.values() for g in gs}
                clash = sorted(in_use.intersection(g for gs in (claimed or {}).values() for g in gs))
                if clash:
                    # A "both" node: the scheduler does not know that a device-plugin GPU and a DRA device are one.
                    raise errors.InsufficientGpus(
                        "UnexpectedAdmissionError", f"claimed GPUs {clash} are held by another Pod of this node"
                    )
                in_use.update(g for gs in (claimed or {}).values() for g in gs)
                gpus = gpu_allocation.allocate(
                    the_pod, self.node.gpu_uuids, in_use, strategy=self._strategy, rng=self._rng
                )
                for container, uuids in (claimed or {}).items():
                    gpus[container] = [*gpus.get(container, []), *uuids]
            self._ips[uid] = ip
            self._gpus[uid] = gpus
            return ip, gpus

    def release_gpus(self, uid: str) -> None:
        """The Pod terminated: its GPUs are free again (it keeps its address until deleted)."""
        with self._lock:
            self._gpus.pop(uid, None)

    def release(self, uid: str) -> None:
        """The Pod is gone: free its GPUs and address."""
        with self._lock:
            self._gpus.pop(uid, None)
            self._ips.pop(uid, None)

    def holders(self) -> set[str]:
        """UIDs that hold something."""
        with self._lock:
            return set(self._gpus) | set(self._ips)
