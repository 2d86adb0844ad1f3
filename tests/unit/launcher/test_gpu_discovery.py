"""The requester agent's GPU discovery order (docs/protocol.md, "Requester SPI")."""

from __future__ import annotations

import pytest

from launcher import errors, gpu_discovery


class _Nvml:
    def __init__(self, uuids: list[str] | None) -> None:
        self._uuids = uuids

    def device_uuids(self) -> list[str]:
        if self._uuids is None:
            raise errors.NvmlUnavailable("none here")
        return self._uuids

    def memory_used_mib(self) -> dict[str, int]:
        return {}


def _no_smi() -> list[str]:
    raise errors.GpuDiscoveryFailed("no nvidia-smi")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GPU-1,GPU-2", ["GPU-1", "GPU-2"]),
        (" GPU-1 , GPU-2 ,", ["GPU-1", "GPU-2"]),
        ("all", None),
        ("ALL", None),
        ("void", None),
        ("none", None),
        ("", None),
        (None, None),
    ],
)
def test_from_env(value: str | None, expected: list[str] | None) -> None:
    assert gpu_discovery.from_env(value) == expected


def test_env_first_then_nvml_then_smi() -> None:
    assert gpu_discovery.discover("GPU-e", lambda: _Nvml(["GPU-n"]), lambda: ["GPU-s"]) == (["GPU-e"], "env")
    assert gpu_discovery.discover("all", lambda: _Nvml(["GPU-n"]), lambda: ["GPU-s"]) == (["GPU-n"], "nvml")
    assert gpu_discovery.discover("void", lambda: _Nvml(None), lambda: ["GPU-s"]) == (["GPU-s"], "nvidia-smi")
    assert gpu_discovery.discover(None, lambda: _Nvml(None), _no_smi) == ([], "none")
