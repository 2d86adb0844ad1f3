"""Which GPUs this requester Pod was given, discovered once at start-up (docs/protocol.md, "Requester SPI").

``NVIDIA_VISIBLE_DEVICES`` first: the device plugin (and simnode) sets it to
the allocated UUIDs, and reading it needs no driver.  ``all``, ``void``,
``none`` and empty are not UUID lists and fall through to NVML, then to
``nvidia-smi``.  Each source is injectable so the order is unit tested.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

from launcher import errors, nvml

__all__ = ["discover", "from_env", "nvidia_smi"]

logger = logging.getLogger(__name__)

_NOT_A_LIST = frozenset({"", "all", "void", "none"})


def from_env(value: str | None) -> list[str] | None:
    """The UUIDs in an ``NVIDIA_VISIBLE_DEVICES`` value, or None if it is not a UUID list (pure)."""
    if value is None or value.strip().lower() in _NOT_A_LIST:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def nvidia_smi() -> list[str]:
    """The UUIDs ``nvidia-smi`` lists; raises ``GpuDiscoveryFailed`` when it cannot run."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.GpuDiscoveryFailed(f"nvidia-smi failed: {exc!r}") from exc
    return [line.strip() for line in out.splitlines() if line.strip()]


def discover(
    visible_devices: str | None,
    nvml_loader: Callable[[], nvml.Nvml] = nvml.load,
    smi: Callable[[], list[str]] = nvidia_smi,
) -> tuple[list[str], str]:
    """The GPU UUIDs in SPI order and the source's name; an empty list when no source works."""
    uuids = from_env(visible_devices)
    if uuids is not None:
        return uuids, "env"
    try:
        return nvml_loader().device_uuids(), "nvml"
    except errors.NvmlUnavailable as exc:
        logger.info("NVML unavailable for GPU discovery", extra={"reason": str(exc)})
    try:
        return smi(), "nvidia-smi"
    except errors.GpuDiscoveryFailed as exc:
        logger.warning("no GPU discovery source worked", extra={"reason": str(exc)})
    return [], "none"
