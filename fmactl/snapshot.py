"""One consistent-enough read of everything ``kubectl fma`` shows, through the ``kube`` adapter.

The builders (``status_report``, ``explanation``) are pure functions of a
``Snapshot``; this module is the only one that talks to the apiserver, and it
turns the adapter's errors into the operator-facing ``fmactl.errors``: an
unreachable cluster, missing FMA CRDs, a missing Pod.  One List per resource
type; nothing is watched.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

import yaml

from crds import decoding, inference_server_config, names
from crds import errors as crds_errors
from fmactl import errors
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources

__all__ = ["Snapshot", "connect", "find_pod", "read"]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The objects of one namespace (plus Nodes and the gpu-map) at ``taken_at``."""

    namespace: str
    taken_at: datetime.datetime
    pods: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    iscs: dict[str, inference_server_config.InferenceServerConfig]
    gpu_map: dict[str, dict[str, int]]
    """Node name -> GPU UUID -> index, from the ``gpu-map`` ConfigMap (empty when it is absent)."""


def connect(kubeconfig: str | None, context: str | None) -> kube_client.Client:
    """Build the API client the way kubectl would; raise ``ClusterUnreachable`` when there is no config."""
    try:
        return kube_client.connect(kubeconfig, context, field_manager="kubectl-fma")
    except kube_errors.ConfigError as exc:
        raise errors.ClusterUnreachable(f"no cluster to talk to: {exc}") from exc
    except yaml.YAMLError as exc:  # the client library lets a kubeconfig that is not YAML through
        raise errors.ClusterUnreachable(f"no cluster to talk to: kubeconfig is not valid YAML: {exc}") from exc


def _call(api: kube_client.Client, what: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except kube_errors.TransportError as exc:
        raise errors.ClusterUnreachable(f"cannot reach the cluster at {api.server} ({what}): {exc}") from exc
    except (kube_errors.Unauthorized, kube_errors.Forbidden) as exc:
        raise errors.ClusterUnreachable(f"the cluster at {api.server} refused {what}: {exc.message}") from exc


def find_pod(snap: Snapshot, pod_name: str) -> dict[str, Any]:
    """The Pod named ``pod_name`` in the snapshot; raise ``PodNotFound`` naming it and the namespace (pure)."""
    for pod in snap.pods:
        if (pod.get("metadata") or {}).get("name") == pod_name:
            return pod
    raise errors.PodNotFound(f'pod "{pod_name}" not found in namespace "{snap.namespace}"')


def read(
    api: kube_client.Client,
    namespace: str,
    *,
    gpu_map_namespace: str | None = None,
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> Snapshot:
    """List what the builders need.  Raises ``ClusterUnreachable`` or ``CrdsMissing``."""
    try:
        raw_iscs, _ = _call(
            api,
            "listing InferenceServerConfigs",
            lambda: api.list_all(resources.INFERENCE_SERVER_CONFIGS, namespace),
        )
    except kube_errors.NotFound as exc:
        raise errors.CrdsMissing(
            f"the cluster at {api.server} does not serve {resources.INFERENCE_SERVER_CONFIGS.api_version} "
            f"{resources.INFERENCE_SERVER_CONFIGS.plural}: the FMA CRDs are not installed"
        ) from exc
    iscs: dict[str, inference_server_config.InferenceServerConfig] = {}
    for raw in raw_iscs:
        try:
            parsed = decoding.decode(inference_server_config.InferenceServerConfig, raw)
        except crds_errors.InvalidObject:
            continue  # an invalid ISC is shown as unknown; the controller reports it on the ISC itself
        if parsed.metadata.name:
            iscs[parsed.metadata.name] = parsed
    pods, _ = _call(api, "listing Pods", lambda: api.list_all(resources.PODS, namespace))
    events, _ = _call(api, "listing Events", lambda: api.list_all(resources.EVENTS, namespace))
    try:
        nodes, _ = api.list_all(resources.NODES)
    except kube_errors.APIError:
        nodes = []  # a namespace-scoped operator may not list Nodes; GPUs then come from the Pods alone
    gpu_map: dict[str, dict[str, int]] = {}
    map_namespace = gpu_map_namespace or namespace
    try:
        config_map = api.get_or_none(resources.CONFIG_MAPS, names.GPU_MAP_CONFIGMAP, map_namespace)
    except kube_errors.KubeError:
        config_map = None
    for node, value in ((config_map or {}).get("data") or {}).items():
        try:
            table = json.loads(value)
        except ValueError:
            continue
        if isinstance(table, dict):
            gpu_map[str(node)] = {str(k): int(v) for k, v in table.items() if isinstance(v, int)}
    return Snapshot(
        namespace=namespace,
        taken_at=clock(),
        pods=pods,
        nodes=nodes,
        events=events,
        iscs=iscs,
        gpu_map=gpu_map,
    )
