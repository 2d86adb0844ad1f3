"""Reading custom resources from the raw dicts that clients and files give us.

The kubernetes client returns custom objects as plain JSON dicts.  They are
parsed once, here, at the boundary, and a failure names every
bad field by its JSON path and the object by ``namespace/name``, so that the
message can go straight into a status or an Event.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from crds import (
    errors,
    inference_server_config,
    kinds,
    launcher_config,
    launcher_population_policy,
    schema_base,
    validation_paths,
)

__all__ = ["CustomResource", "decode", "decode_any", "model_for_kind"]

_T = TypeVar("_T", bound=schema_base.SchemaModel)

CustomResource = (
    inference_server_config.InferenceServerConfig
    | launcher_config.LauncherConfig
    | launcher_population_policy.LauncherPopulationPolicy
)
"""Any of the three FMA custom resources."""

_MODELS: dict[str, type[CustomResource]] = {
    kinds.INFERENCE_SERVER_CONFIG.kind: inference_server_config.InferenceServerConfig,
    kinds.LAUNCHER_CONFIG.kind: launcher_config.LauncherConfig,
    kinds.LAUNCHER_POPULATION_POLICY.kind: launcher_population_policy.LauncherPopulationPolicy,
}


def _ref(raw: Mapping[str, Any]) -> str:
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        return ""
    name = metadata.get("name") or metadata.get("generateName") or ""
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def decode(model: type[_T], raw: Mapping[str, Any]) -> _T:
    """Return ``raw`` parsed as ``model``; raise ``errors.InvalidObject`` naming each bad field path."""
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise errors.InvalidObject(model.__name__, _ref(raw), validation_paths.problems(exc)) from exc


def model_for_kind(kind: str) -> type[CustomResource]:
    """Return the model class of ``kind``; raise ``KeyError`` for a kind that is not ours."""
    return _MODELS[kind]


def decode_any(raw: Mapping[str, Any]) -> CustomResource:
    """Parse ``raw`` as whichever FMA kind its ``apiVersion`` and ``kind`` name."""
    kind = raw.get("kind")
    if raw.get("apiVersion") != kinds.API_VERSION or not isinstance(kind, str) or kind not in _MODELS:
        raise errors.InvalidObject(
            str(kind or "object"),
            _ref(raw),
            [("", f"not an FMA custom resource: apiVersion {raw.get('apiVersion')!r}, kind {kind!r}")],
        )
    return decode(_MODELS[kind], raw)
