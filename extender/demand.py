"""What a Pod being scheduled asks of a node: FMA mode, GPU count and the engine it wants.

A Pod is a requester iff it has a non-empty ``inference-server-config``
(launcher mode) or ``server-patch`` (direct mode) annotation (CONTRACT.md §1);
anything else gets neutral scores without looking at any node.  For launcher
mode the ISC gives the config key, LauncherConfig and port.  For direct mode
the config key comes from the requester's own ``config-key`` annotation when
someone (e.g. the webhook) put it there; otherwise only the sleeper budget
(eviction penalty) can be judged.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from crds import keys
from extender import config_summary, node_view, protocol

__all__ = ["Demand", "Mode", "of_pod"]


class Mode(enum.StrEnum):
    """How a requester is served."""

    LAUNCHER = "launcher"
    DIRECT = "direct"


@dataclasses.dataclass(frozen=True)
class Demand:
    """One requester's wish, resolved against the ISC and LauncherConfig it names."""

    namespace: str
    pod: str
    mode: Mode
    gpus: int
    config_key: str | None
    """None when unknown (missing ISC, or a direct requester without ``config-key``)."""
    launcher_config: str | None = None
    port: int | None = None
    launcher_config_summary: config_summary.LauncherConfigSummary | None = None


def _resources(container: protocol.ContainerArgs) -> dict[str, object]:
    if container.resources is None:
        return {}
    return {"resources": {"limits": container.resources.limits or {}, "requests": container.resources.requests or {}}}


def of_pod(
    pod: protocol.PodArgs,
    isc: Callable[[str, str], config_summary.ServerConfigSummary | None],
    lc: Callable[[str, str], config_summary.LauncherConfigSummary | None],
) -> Demand | None:
    """Return the Pod's demand, or ``None`` for a Pod that is not an FMA requester.

    ``isc(namespace, name)`` and ``lc(namespace, name)`` look summaries up in
    the cluster model.
    """
    annotations = pod.metadata.annotations or {}
    isc_name = annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION)
    patch = annotations.get(keys.SERVER_PATCH_ANNOTATION)
    namespace = pod.metadata.namespace
    gpus = node_view.gpu_request(
        {
            "containers": [_resources(c) for c in pod.spec.containers],
            "initContainers": [_resources(c) for c in pod.spec.init_containers or []],
        }
    )
    name = pod.metadata.name or pod.metadata.generate_name or ""
    if isc_name:
        summary = isc(namespace, isc_name)
        if summary is None:
            return Demand(namespace=namespace, pod=name, mode=Mode.LAUNCHER, gpus=gpus, config_key=None)
        return Demand(
            namespace=namespace,
            pod=name,
            mode=Mode.LAUNCHER,
            gpus=gpus,
            config_key=summary.config_key,
            launcher_config=summary.launcher_config_name,
            port=summary.port,
            launcher_config_summary=lc(namespace, summary.launcher_config_name),
        )
    if patch:
        return Demand(
            namespace=namespace,
            pod=name,
            mode=Mode.DIRECT,
            gpus=gpus,
            config_key=annotations.get(keys.CONFIG_KEY_ANNOTATION) or None,
        )
    return None
