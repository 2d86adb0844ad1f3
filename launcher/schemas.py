"""Wire models of the launcher HTTP API.

See docs/protocol.md, "Launcher API", and docs/launcher.md, "API additions and limits".

The API is the launcher's boundary, so every body that enters or leaves it is
a pydantic model here, with ``extra="forbid"`` on what we accept.  The input
limits (options length, env var names, list sizes) live on the models so that
FastAPI answers 422 naming the bad field before any handler runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import pydantic

__all__ = [
    "MAX_OPTIONS_LENGTH",
    "MAX_OPTIONS_TOKENS",
    "DeleteAllResult",
    "IdsView",
    "InstanceState",
    "ListView",
    "Status",
    "VllmConfig",
    "WatchEvent",
    "WatchEventType",
    "is_valid_instance_id",
]

MAX_OPTIONS_LENGTH = 16 * 1024
"""Longest accepted ``options`` string; real vLLM command lines are far shorter."""

MAX_OPTIONS_TOKENS = 512
"""Most whitespace-separated words accepted in ``options``."""

_MAX_ENV_VARS = 256
_MAX_ENV_VALUE = 32 * 1024
_MAX_GPUS = 64
_MAX_ANNOTATIONS = 64
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

Status = Literal["running", "stopped"]
WatchEventType = Literal["CREATED", "STOPPED", "DELETED"]

GpuUuid = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s,]+$")]


def _encodable(what: str, value: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``value`` cannot be written as UTF-8 (a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} holds a lone UTF-16 surrogate at position {exc.start}, which cannot be encoded"
        ) from None


def is_valid_instance_id(value: str) -> bool:
    """Whether ``value`` can be an instance ID: a non-empty Kubernetes label value (pure)."""
    return len(value) <= 63 and _LABEL_VALUE.match(value) is not None


class VllmConfig(pydantic.BaseModel):
    """The create body: how to run one engine instance."""

    model_config = pydantic.ConfigDict(extra="forbid")

    options: Annotated[str, pydantic.StringConstraints(max_length=MAX_OPTIONS_LENGTH)]
    gpu_uuids: Annotated[list[GpuUuid], pydantic.Field(max_length=_MAX_GPUS)] | None = None
    env_vars: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    @pydantic.field_validator("options")
    @classmethod
    def _no_nul_in_options(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("options must not contain NUL characters")
        _encodable("options", value)
        words = len(value.split())
        if words > MAX_OPTIONS_TOKENS:
            raise ValueError(f"options has {words} words; at most {MAX_OPTIONS_TOKENS} are accepted")
        return value

    @pydantic.field_validator("gpu_uuids")
    @classmethod
    def _distinct_gpus(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: set[str] = set()
        for uuid in value:
            _encodable("a GPU UUID", uuid)
            if uuid in seen:
                raise ValueError(f"GPU UUID {uuid!r} is listed twice; each GPU can be given once")
            seen.add(uuid)
        return value

    @pydantic.field_validator("env_vars")
    @classmethod
    def _valid_env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > _MAX_ENV_VARS:
            raise ValueError(f"at most {_MAX_ENV_VARS} environment variables are accepted, got {len(value)}")
        for name, item in value.items():
            _encodable("an environment variable name", name)
            _encodable(f"environment variable {name!r}", item)
            if not _ENV_NAME.match(name):
                raise ValueError(f"invalid environment variable name {name!r}: use letters, digits and '_'")
            if "\x00" in item or len(item) > _MAX_ENV_VALUE:
                raise ValueError(f"invalid value of environment variable {name!r}: NUL or longer than {_MAX_ENV_VALUE}")
        return value

    @pydantic.field_validator("annotations")
    @classmethod
    def _bounded_annotations(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(value) > _MAX_ANNOTATIONS:
            raise ValueError(f"at most {_MAX_ANNOTATIONS} annotations are accepted, got {len(value)}")
        if value is not None:
            for key, item in value.items():
                _encodable("an annotation key", key)
                _encodable(f"annotation {key!r}", item)
                if len(key) > 253 or len(item) > 4096:
                    raise ValueError(f"annotation {key[:64]!r} is too long (key > 253 or value > 4096 characters)")
        return value


class InstanceState(pydantic.BaseModel):
    """What the launcher says about one instance; VllmConfig fields with nulls omitted when dumped."""

    model_config = pydantic.ConfigDict(extra="forbid")

    status: Status
    instance_id: str
    revision: int
    options: str
    gpu_uuids: list[str] | None = None
    env_vars: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    exit_code: int | None = None
    ready: bool | None = None
    """True once the engine answered ``GET /health`` (ours; absent before, so the upstream shape is unchanged)."""

    def wire(self) -> dict[str, object]:
        """The JSON object on the wire: unset optional fields are left out, as upstream does."""
        return self.model_dump(exclude_none=True)


class ListView(pydantic.BaseModel):
    """``GET /v2/vllm/instances`` (detail): every instance in creation order."""

    model_config = pydantic.ConfigDict(extra="forbid")

    revision: int
    total_instances: int
    running_instances: int
    instances: list[InstanceState]


class IdsView(pydantic.BaseModel):
    """``GET /v2/vllm/instances?detail=false``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    revision: int
    instance_ids: list[str]
    count: int


class DeleteAllResult(pydantic.BaseModel):
    """``DELETE /v2/vllm/instances``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    status: Literal["all_stopped"] = "all_stopped"
    stopped_instances: list[InstanceState]
    total_stopped: int


class WatchEvent(pydantic.BaseModel):
    """One NDJSON line of the watch stream; the revision lives only in ``object.revision``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    type: WatchEventType
    object: InstanceState

    def line(self) -> bytes:
        """The compact JSON line, newline-terminated, with nulls omitted from the object."""
        return self.model_dump_json(exclude_none=True).encode() + b"\n"
