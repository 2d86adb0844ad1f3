"""How the dual-pods controller behaves: one frozen model built from ``fma-controllers`` flags.

Its own module so that the controller's parts (``dual_pods``, the launcher-mode
modules, ``direct_mode``) can all take it without importing each other.
"""

from __future__ import annotations

import pydantic

from controllers import settings as process_settings

__all__ = ["DPCSettings"]


class DPCSettings(pydantic.BaseModel):
    """How the dual-pods controller behaves (set from ``fma-controllers`` flags)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    namespace: str
    gpu_map_namespace: str | None = None
    """Where the ``gpu-map`` ConfigMap lives (default: the controllers' namespace)."""
    sleeper_limit: int = pydantic.Field(default=process_settings.SLEEPER_LIMIT_DEFAULT, ge=0)
    num_workers: int = pydantic.Field(default=process_settings.NUM_WORKERS_DEFAULT, ge=1)
    debug_accelerator_memory: bool = process_settings.DEBUG_ACCELERATOR_MEMORY_DEFAULT
    start_deadline_seconds: float = pydantic.Field(default=process_settings.START_DEADLINE_DEFAULT, gt=0)
    launcher_token: str | None = None
    launcher_token_secret: str | None = None
    http_timeout_seconds: float = 30.0
