"""The ``vllm-config`` annotation: the create body of the bound instance (docs/protocol.md, "Launcher API").

The controller records on the launcher the exact VllmConfig it sent (or will
send) for the bound instance, so that after a restart it can re-create a
missing instance with the same body.  The controller and the launcher cannot
import each other, so this shared shape lives in the API package.  The JSON is
compact, in the field order of upstream's Go struct, with empty optional fields
omitted, matching what upstream's DPC writes.

Pure; no I/O.
"""

from __future__ import annotations

import json

import pydantic

from crds import errors, keys, validation_paths

__all__ = ["VllmConfig", "parse"]


class VllmConfig(pydantic.BaseModel):
    """What the DPC sends to ``PUT /v2/vllm/instances/{id}``."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    options: str
    """vLLM serve arguments: the ISC options plus ``" --port <port>"``."""
    gpu_uuids: list[str] | None = None
    """The requester's GPU UUIDs in SPI order."""
    env_vars: dict[str, str] | None = None
    """The instance's environment."""
    annotations: dict[str, str] | None = None
    """Opaque, echoed back: ``isc-name``, ``inference-port`` and (ours) ``config-key``."""

    def format(self) -> str:
        """Return the compact annotation value, empty optional fields omitted, map keys sorted."""
        payload: dict[str, object] = {"options": self.options}
        if self.gpu_uuids:
            payload["gpu_uuids"] = list(self.gpu_uuids)
        if self.env_vars:
            payload["env_vars"] = dict(sorted(self.env_vars.items()))
        if self.annotations:
            payload["annotations"] = dict(sorted(self.annotations.items()))
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def parse(value: str) -> VllmConfig:
    """Return the config in ``value``; raise ``errors.InvalidAnnotation`` when it is not the contracted JSON."""
    try:
        return VllmConfig.model_validate_json(value)
    except pydantic.ValidationError as exc:
        raise errors.InvalidAnnotation(keys.VLLM_CONFIG_ANNOTATION, value, validation_paths.summary(exc)) from exc
