"""The node's GPU UUID → CUDA index table, and where it comes from.

The controller speaks GPU UUIDs; CUDA wants indices.  The table is built
once at launcher start-up from the first source that works (docs/launcher.md,
"GPU table"): NVML when a GPU is present, ``--gpu-map-file``, the
node's entry of the ``gpu-map`` ConfigMap when ``NODE_NAME`` and
``NAMESPACE`` are set, or upstream's ``--mock-gpus``.  Translation is pure and fails with a 400-class
error naming the unknown UUID and the known ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pydantic

from crds import names, validation_paths
from launcher import apiserver, errors, nvml
from launcher import settings as settings_mod

__all__ = ["GpuTable", "discover"]

logger = logging.getLogger(__name__)

_FileTable = pydantic.TypeAdapter(dict[str, int])


class GpuTable(pydantic.BaseModel):
    """UUID → index, plus the name of the source it came from (for logs)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    mapping: dict[str, int]
    source: str

    def indices(self, uuids: list[str]) -> list[int]:
        """The indices of ``uuids`` in the same order (pure); raises ``UnknownGpu``."""
        out = []
        for uuid in uuids:
            if uuid not in self.mapping:
                raise errors.UnknownGpu(f"GPU UUID '{uuid}' not found. Available UUIDs: {list(self.mapping)}")
            out.append(self.mapping[uuid])
        return out


def _from_nvml(loader: Callable[[], nvml.Nvml]) -> GpuTable | None:
    try:
        uuids = loader().device_uuids()
    except errors.NvmlUnavailable as exc:
        logger.info("NVML unavailable for the GPU table", extra={"reason": str(exc)})
        return None
    return GpuTable(mapping={uuid: index for index, uuid in enumerate(uuids)}, source="nvml")


ConfigMapFetch = Callable[[settings_mod.LauncherSettings, str, str], dict[str, str]]


def _from_config_map(settings: settings_mod.LauncherSettings, fetch: ConfigMapFetch) -> GpuTable | None:
    if not (settings.node_name and settings.namespace):
        return None
    namespace = settings.gpu_map_namespace or settings.namespace
    try:
        entry = fetch(settings, namespace, names.GPU_MAP_CONFIGMAP).get(settings.node_name)
    except errors.ApiServerError as exc:
        logger.warning("gpu-map ConfigMap unavailable", extra={"reason": str(exc)})
        return None
    if entry is None:
        logger.warning("gpu-map has no entry for this node", extra={"node": settings.node_name})
        return None
    try:
        return GpuTable(mapping=_FileTable.validate_json(entry), source="configmap")
    except pydantic.ValidationError as exc:
        logger.warning(
            "gpu-map entry is malformed", extra={"node": settings.node_name, "error": validation_paths.summary(exc)}
        )
        return None


def discover(
    settings: settings_mod.LauncherSettings,
    nvml_loader: Callable[[], nvml.Nvml] = nvml.load,
    config_map_fetch: ConfigMapFetch = apiserver.config_map_data,
) -> GpuTable:
    """Build the table from the first working source (reads NVML, a file or the apiserver).

    A ``--gpu-map-file`` that exists but is malformed is an error rather than
    a silent fall-through: the operator asked for it explicitly.
    """
    if settings.use_nvml and not settings.mock_gpus:
        table = _from_nvml(nvml_loader)
        if table is not None:
            return table
    if settings.gpu_map_file is not None:
        raw = settings.gpu_map_file.read_bytes()
        try:
            mapping = _FileTable.validate_json(raw)
        except pydantic.ValidationError as exc:
            raise ValueError(
                f"--gpu-map-file {str(settings.gpu_map_file)!r} is not a JSON object UUID → index: "
                + validation_paths.summary(exc)
            ) from exc
        return GpuTable(mapping=mapping, source="file")
    table = _from_config_map(settings, config_map_fetch)
    if table is not None:
        return table
    if settings.mock_gpus:
        return GpuTable(mapping={f"GPU-{i}": i for i in range(settings.mock_gpu_count)}, source="mock")
    return GpuTable(mapping={}, source="none")
