"""The GPU UUID → CUDA index table and its sources (docs/launcher.md, "GPU table")."""

from __future__ import annotations

import json
import pathlib

import pytest

from launcher import errors, gpu_table
from launcher import settings as settings_mod


class _FakeNvml:
    def __init__(self, uuids: list[str] | None) -> None:
        self._uuids = uuids

    def device_uuids(self) -> list[str]:
        if self._uuids is None:
            raise errors.NvmlUnavailable("no driver")
        return self._uuids

    def memory_used_mib(self) -> dict[str, int]:
        return {}


def _settings(**values: object) -> settings_mod.LauncherSettings:
    return settings_mod.LauncherSettings(**values)  # type: ignore[arg-type]


def test_indices_keep_the_requested_order() -> None:
    table = gpu_table.GpuTable(mapping={"GPU-a": 0, "GPU-b": 1, "GPU-c": 2}, source="test")
    assert table.indices(["GPU-c", "GPU-a"]) == [2, 0]
    assert table.indices([]) == []


def test_unknown_uuid_names_it_and_the_known_ones() -> None:
    table = gpu_table.GpuTable(mapping={"GPU-a": 0, "GPU-b": 1}, source="test")
    with pytest.raises(errors.UnknownGpu) as info:
        table.indices(["GPU-a", "GPU-z"])
    assert str(info.value) == "GPU UUID 'GPU-z' not found. Available UUIDs: ['GPU-a', 'GPU-b']"
    assert info.value.http_status == 400


def test_nvml_wins_when_it_has_gpus(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"GPU-file": 5}))
    table = gpu_table.discover(_settings(gpu_map_file=path), lambda: _FakeNvml(["GPU-x", "GPU-y"]))
    assert table == gpu_table.GpuTable(mapping={"GPU-x": 0, "GPU-y": 1}, source="nvml")


def test_file_when_nvml_is_unavailable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"GPU-file": 5}))
    table = gpu_table.discover(_settings(gpu_map_file=path), lambda: _FakeNvml(None))
    assert table.mapping == {"GPU-file": 5}
    assert table.source == "file"


def test_malformed_file_is_an_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"GPU-file": "zero"}))
    with pytest.raises(ValueError, match="not a JSON object"):
        gpu_table.discover(_settings(gpu_map_file=path, use_nvml=False))


def test_mock_gpus_and_nothing() -> None:
    mock = gpu_table.discover(_settings(mock_gpus=True, mock_gpu_count=3), lambda: _FakeNvml(["GPU-real"]))
    assert mock.mapping == {"GPU-0": 0, "GPU-1": 1, "GPU-2": 2}
    empty = gpu_table.discover(_settings(), lambda: _FakeNvml(None))
    assert empty == gpu_table.GpuTable(mapping={}, source="none")


def _no_config_map(settings: settings_mod.LauncherSettings, namespace: str, name: str) -> dict[str, str]:
    raise errors.NotInPod("not in a Pod")


def test_config_map_entry_of_this_node() -> None:
    seen: list[tuple[str, str]] = []

    def fetch(settings: settings_mod.LauncherSettings, namespace: str, name: str) -> dict[str, str]:
        seen.append((namespace, name))
        return {"node-a": '{"GPU-a0": 0}', "node-b": '{"GPU-b0": 0, "GPU-b1": 1}'}

    settings = _settings(node_name="node-b", namespace="ns", use_nvml=False, mock_gpus=True)
    table = gpu_table.discover(settings, config_map_fetch=fetch)
    assert table == gpu_table.GpuTable(mapping={"GPU-b0": 0, "GPU-b1": 1}, source="configmap")
    assert seen == [("ns", "gpu-map")]
    other_ns = _settings(node_name="node-a", namespace="ns", gpu_map_namespace="fma-system", use_nvml=False)
    assert gpu_table.discover(other_ns, config_map_fetch=fetch).mapping == {"GPU-a0": 0}
    assert seen[-1] == ("fma-system", "gpu-map")


def test_config_map_failures_fall_through_to_mock() -> None:
    settings = _settings(node_name="node-z", namespace="ns", use_nvml=False, mock_gpus=True, mock_gpu_count=1)
    assert gpu_table.discover(settings, config_map_fetch=_no_config_map).source == "mock"
    assert gpu_table.discover(settings, config_map_fetch=lambda *_: {"node-z": "not json"}).source == "mock"
    assert gpu_table.discover(settings, config_map_fetch=lambda *_: {}).source == "mock"
