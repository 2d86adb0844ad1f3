"""What placement (extender and webhook hints) needs from InferenceServerConfigs and LauncherConfigs.

A requester names an ISC; scoring needs only its config key (docs/protocol.md,
"Identity hashes"; computed by ``crds.config_key`` so that it equals the ``configKey`` the
launcher publishes), its LauncherConfig and its port.  From the LC it needs
``maxInstances`` and the template's node selector.  These summaries are small
and immutable, computed once per object version rather than per request.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import crds
from crds import errors as crds_errors
from crds import inference_server_config, launcher_config

__all__ = ["LauncherConfigSummary", "ServerConfigSummary", "summarize_isc", "summarize_lc"]


@dataclasses.dataclass(frozen=True)
class ServerConfigSummary:
    """An ISC as placement uses it."""

    config_key: str
    launcher_config_name: str
    port: int


@dataclasses.dataclass(frozen=True)
class LauncherConfigSummary:
    """A LauncherConfig as placement uses it."""

    max_instances: int
    node_selector: Mapping[str, str]
    """The template's ``spec.nodeSelector``: a node without these labels can never run its launchers."""


def summarize_isc(raw: Mapping[str, Any]) -> ServerConfigSummary | None:
    """Return the summary of an ISC, or ``None`` when the object does not decode."""
    try:
        isc = crds.decode(inference_server_config.InferenceServerConfig, raw)
    except crds_errors.InvalidObject:
        return None
    config = isc.spec.model_server_config
    return ServerConfigSummary(
        config_key=crds.config_key(config),
        launcher_config_name=isc.spec.launcher_config_name,
        port=config.port,
    )


def summarize_lc(raw: Mapping[str, Any]) -> LauncherConfigSummary | None:
    """Return the summary of a LauncherConfig, or ``None`` when the object does not decode."""
    try:
        lc = crds.decode(launcher_config.LauncherConfig, raw)
    except crds_errors.InvalidObject:
        return None
    selector = (lc.spec.pod_template.spec or {}).get("nodeSelector") or {}
    return LauncherConfigSummary(
        max_instances=lc.spec.max_instances,
        node_selector={str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) else {},
    )
