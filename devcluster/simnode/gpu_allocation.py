"""GPU assignment for a Pod's containers, the way the NVIDIA device plugin does it.

Each container with ``limits: nvidia.com/gpu: k`` gets k GPUs of its node
that no other live Pod holds; init containers reuse their Pod's GPUs first
(the scheduler counts a Pod's GPUs as max(init, sum of app containers)).
The result is exposed as ``NVIDIA_VISIBLE_DEVICES``.  Pure; the random
choice gets its generator passed in.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

from devcluster.simnode import errors, fleet, pod, quantity

__all__ = ["allocate", "request_of", "visible_devices"]


def request_of(container: pod.Container) -> int:
    """How many GPUs the container asks for (its limit; requests must equal it)."""
    raw = container.resources.limits.get(fleet.GPU_RESOURCE, container.resources.requests.get(fleet.GPU_RESOURCE, 0))
    try:
        value = quantity.parse(raw)
    except ValueError as exc:
        message = f"invalid {fleet.GPU_RESOURCE} quantity {raw!r}"
        raise errors.PodConfigError("UnexpectedAdmissionError", message) from exc
    return int(value)


def _pick(free: Sequence[str], count: int, strategy: str, rng: random.Random) -> list[str]:
    if strategy == "random":
        return rng.sample(list(free), count)
    return list(free[:count])


def allocate(
    the_pod: pod.Pod,
    node_gpus: Sequence[str],
    in_use: Collection[str],
    *,
    strategy: str = "lowest",
    rng: random.Random | None = None,
) -> dict[str, list[str]]:
    """Map each GPU-using container (init and app) to its GPU UUIDs.

    ``node_gpus`` is in index order; ``in_use`` holds the GPUs of the node's
    other live Pods.  Raises ``InsufficientGpus`` when the node lacks free
    GPUs (the scheduler should have prevented it).  Pure.
    """
    generator = rng or random.Random()  # noqa: S311 - spreading GPUs, not security
    taken = set(in_use)
    result: dict[str, list[str]] = {}
    pod_gpus: list[str] = []
    for container in the_pod.spec.containers:
        count = request_of(container)
        if count <= 0:
            continue
        free = [g for g in node_gpus if g not in taken]
        if len(free) < count:
            raise errors.InsufficientGpus(
                "UnexpectedAdmissionError",
                f"container {container.name!r} needs {count} {fleet.GPU_RESOURCE}, node has {len(free)} free",
            )
        chosen = _pick(free, count, strategy, generator)
        taken.update(chosen)
        pod_gpus.extend(chosen)
        result[container.name] = chosen
    for container in the_pod.spec.init_containers:
        count = request_of(container)
        if count <= 0:
            continue
        reused = pod_gpus[:count]
        free = [g for g in node_gpus if g not in taken]
        missing = count - len(reused)
        if missing > len(free):
            raise errors.InsufficientGpus(
                "UnexpectedAdmissionError",
                f"init container {container.name!r} needs {count} {fleet.GPU_RESOURCE}, node has too few free",
            )
        extra = _pick(free, missing, strategy, generator) if missing > 0 else []
        taken.update(extra)
        pod_gpus.extend(extra)
        result[container.name] = reused + extra
    return result


def visible_devices(allocation: Mapping[str, Sequence[str]], container: str) -> str | None:
    """The ``NVIDIA_VISIBLE_DEVICES`` value for a container, or None when it has no GPUs."""
    uuids = allocation.get(container)
    return ",".join(uuids) if uuids else None
