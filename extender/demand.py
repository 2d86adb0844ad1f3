"""What a Pod being scheduled asks of a node, read from the scheduler's ExtenderArgs.

Which Pods are requesters, and in which mode, is the one rule of
``crds.pod_view`` (docs/protocol.md, "Roles of Pods"); anything else, and a launcher-mode
requester whose ISC name is empty (the controller reports it, nothing can
serve it), gets neutral scores without looking at any node.  For launcher
mode the ISC gives the config key, LauncherConfig and port.  For direct mode
the config key comes from the requester's own ``config-key`` annotation when
someone (e.g. the webhook) put it there; otherwise only the sleeper budget
(eviction penalty) can be judged.  The ``Demand`` value itself is the shared
one of ``crds.sleeper_scoring`` (the webhook's hints build it too); this
module only reads it off the wire form.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from crds import gpu_claims, keys, pod_view, sleeper_config, sleeper_scoring, sleeper_view
from extender import protocol

__all__ = ["of_pod"]


def _resources(container: protocol.ContainerArgs) -> dict[str, object]:
    if container.resources is None:
        return {}
    return {"resources": {"limits": container.resources.limits or {}, "requests": container.resources.requests or {}}}


def of_pod(
    pod: protocol.PodArgs,
    isc: Callable[[str, str], sleeper_config.ServerConfigSummary | None],
    lc: Callable[[str, str], sleeper_config.LauncherConfigSummary | None],
) -> sleeper_scoring.Demand | None:
    """Return the Pod's demand, or ``None`` for a Pod that is not an FMA requester.

    ``isc(namespace, name)`` and ``lc(namespace, name)`` look summaries up in
    the cluster model.
    """
    annotations = pod.metadata.annotations or {}
    mode = pod_view.requester_mode(annotations)
    gpus = sleeper_view.gpu_request(
        {
            "containers": [_resources(c) for c in pod.spec.containers],
            "initContainers": [_resources(c) for c in pod.spec.init_containers or []],
        }
    )
    # DRA requesters ask for no nvidia.com/gpu: their claim's plan holds the count.
    claimed = {
        "metadata": {"annotations": annotations},
        "spec": {"resourceClaims": (pod.spec.model_extra or {}).get("resourceClaims") or []},
    }
    claims = gpus == 0 and gpu_claims.pod_gpu_count(claimed, 0) > 0
    gpus = gpu_claims.pod_gpu_count(claimed, gpus)
    return sleeper_scoring.demand(
        namespace=pod.metadata.namespace,
        pod=pod.metadata.name or pod.metadata.generate_name or "",
        gpus=gpus,
        isc_name=annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION) if mode == pod_view.LAUNCHER else None,
        direct=mode == pod_view.DIRECT,
        config_key=annotations.get(keys.CONFIG_KEY_ANNOTATION),
        isc=isc,
        lc=lc,
        claims=claims,
    )
