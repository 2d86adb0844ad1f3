"""NVML behind a small interface: which GPUs this node has, and how much memory each uses.

nvidia-ml-py is optional (there is none on CI machines), so it is imported
only when ``load()`` is called, and every failure becomes ``NvmlUnavailable``
for the caller to fall back on another source.  Tests pass their own ``Nvml``.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from launcher import errors

__all__ = ["Nvml", "load"]


class Nvml(Protocol):
    """What the node agents need from NVML."""

    def device_uuids(self) -> list[str]:
        """GPU UUIDs in NVML index order (which is PCI bus order)."""
        ...

    def memory_used_mib(self) -> dict[str, int]:
        """MiB in use per GPU UUID, measured now."""
        ...


class _Pynvml:
    """``Nvml`` over nvidia-ml-py's ``pynvml`` module."""

    def __init__(self, module: Any) -> None:
        self._nv = module

    def _handles(self) -> list[tuple[str, Any]]:
        out = []
        for index in range(int(self._nv.nvmlDeviceGetCount())):
            handle = self._nv.nvmlDeviceGetHandleByIndex(index)
            uuid = self._nv.nvmlDeviceGetUUID(handle)
            out.append((uuid.decode() if isinstance(uuid, bytes) else str(uuid), handle))
        return out

    def device_uuids(self) -> list[str]:
        try:
            return [uuid for uuid, _ in self._handles()]
        except Exception as exc:
            raise errors.NvmlUnavailable(f"NVML enumeration failed: {exc!r}") from exc

    def memory_used_mib(self) -> dict[str, int]:
        try:
            return {uuid: int(self._nv.nvmlDeviceGetMemoryInfo(h).used) // (1024 * 1024) for uuid, h in self._handles()}
        except Exception as exc:
            raise errors.NvmlUnavailable(f"NVML memory query failed: {exc!r}") from exc


def load() -> Nvml:
    """Initialise NVML; raises ``NvmlUnavailable`` without nvidia-ml-py, a driver or a GPU."""
    try:
        module = importlib.import_module("pynvml")
    except ImportError as exc:
        raise errors.NvmlUnavailable("nvidia-ml-py is not installed") from exc
    try:
        module.nvmlInit()
    except Exception as exc:
        raise errors.NvmlUnavailable(f"NVML could not be initialised: {exc!r}") from exc
    nvml = _Pynvml(module)
    if not nvml.device_uuids():
        raise errors.NvmlUnavailable("NVML reports no GPUs")
    return nvml
