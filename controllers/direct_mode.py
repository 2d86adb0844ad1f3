"""Direct mode: one provider Pod per requester, built from the requester plus its server patch.

docs/controllers.md, "Direct mode".  The *nominal* provider is computed purely from the
requester, its patch, its node and its GPUs; its hash (``nominal``) names
the engine, so an unbound provider with the same hash is a sleeper that the
next requester on the same GPUs can wake instead of starting cold.  Each GPU
keeps at most ``--sleeper-limit`` sleepers; beyond that the least recently
used ones (by the controller's last write in managedFields) are deleted.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

import kube
from controllers import dpc_indexes, dpc_state, errors, pod_view, requester_side, strategic_merge
from crds import accelerators, binding_record, hashes, keys, names
from kube import resources

__all__ = [
    "DIRECT_NODE_INDEX",
    "NOMINAL_INDEX",
    "DirectMode",
    "expand_template",
    "gpu_indices",
    "last_used",
    "nominal_pod",
    "provider_body",
    "server_port",
    "sleepers_to_evict",
]

_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.(NodeName|LocalVolume)\s*\}\}")
_KUBE_API_ACCESS = re.compile(r"^kube-api-access-[a-z0-9]+$")
_INVALID_POD = re.compile(r'^Pod "[a-z0-9.-]*" is invalid')

NOMINAL_INDEX = dpc_indexes.NOMINAL
"""The Pod-cache index of providers by their ``nominal`` hash."""
DIRECT_NODE_INDEX = dpc_indexes.DIRECT_NODE
"""The Pod-cache index of direct providers by node."""


# --- pure parts --------------------------------------------------------------------------------------


def expand_template(template: str, node_name: str) -> str:
    """Expand ``{{.NodeName}}`` and ``{{.LocalVolume}}`` (always empty); refuse anything else (pure)."""
    expanded = _TEMPLATE_FIELD.sub(lambda m: node_name if m.group(1) == "NodeName" else "", template)
    leftover = re.search(r"\{\{.*?\}\}", expanded)
    if leftover:
        raise ValueError(f"unsupported template construct {leftover.group(0)!r}")
    return expanded


def _deindividualised(requester: Mapping[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(dict(requester.get("spec") or {}))
    spec.pop("ephemeralContainers", None)
    spec.pop("nodeName", None)
    # A DRA requester's ResourceClaim is its own (crds.gpu_claims); the provider gets its GPUs from the binding.
    spec.pop("resourceClaims", None)
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        (container.get("resources") or {}).pop("claims", None)
    dropped = {v["name"] for v in spec.get("volumes") or [] if _KUBE_API_ACCESS.match(str(v.get("name", "")))}
    if dropped:
        spec["volumes"] = [v for v in spec["volumes"] if v.get("name") not in dropped]
        if not spec["volumes"]:
            del spec["volumes"]
        for group in ("containers", "initContainers"):
            for container in spec.get(group) or []:
                mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") not in dropped]
                if mounts:
                    container["volumeMounts"] = mounts
                else:
                    container.pop("volumeMounts", None)
    meta = requester.get("metadata") or {}
    base: dict[str, Any] = {
        "apiVersion": requester.get("apiVersion", "v1"),
        "kind": requester.get("kind", "Pod"),
        "metadata": {"namespace": meta.get("namespace")},
        "spec": spec,
    }
    # The controller's own requester labels (dual, instance) are outputs, not
    # identity: keeping them would give the same requester a new nominal hash
    # once it is bound, and no sleeper would ever be found again.
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (keys.DUAL_LABEL, keys.INSTANCE_LABEL)}
    if labels:
        base["metadata"]["labels"] = labels
    return base


def nominal_pod(requester: Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """The requester with its server patch applied, before node and GPU specialisation (pure).

    Raises ``ValueError`` with a message for the requester's status.
    """
    template = pod_view.annotations_of(requester).get(keys.SERVER_PATCH_ANNOTATION, "")
    expanded = expand_template(template, node_name)
    try:
        patch = yaml.safe_load(expanded)
    except yaml.YAMLError as exc:
        raise ValueError(f"the server patch is not YAML or JSON: {exc}") from exc
    if not isinstance(patch, dict):
        raise ValueError("the server patch must be a mapping (a strategic merge patch for a Pod)")
    patched = strategic_merge.apply(_deindividualised(requester), patch)
    containers = (patched.get("spec") or {}).get("containers") or []
    if not any(c.get("name") == names.INFERENCE_SERVER_CONTAINER for c in containers):
        raise ValueError(f'the patched Pod has no "{names.INFERENCE_SERVER_CONTAINER}" container')
    return patched


def gpu_indices(gpu_map: Mapping[str, Any] | None, node: str, gpus: list[str]) -> list[int]:
    """Translate UUIDs to this node's indices through ``gpu-map`` (pure); raise ``ValueError`` with the status text."""
    if gpu_map is None:
        raise ValueError(f"GPU map ConfigMap {names.GPU_MAP_CONFIGMAP} is not available")
    tables: dict[str, dict[str, int]] = {}
    for key, value in (gpu_map.get("data") or {}).items():
        try:
            tables[str(key)] = {str(k): int(v) for k, v in json.loads(value).items()}
        except (ValueError, AttributeError):
            continue
    indices = []
    for uuid in gpus:
        if uuid in tables.get(node, {}):
            indices.append(tables[node][uuid])
            continue
        elsewhere = next((n for n, table in tables.items() if uuid in table), None)
        if elsewhere is not None:
            raise ValueError(f"UUID {uuid} is on Node {elsewhere}, not {node}")
        raise ValueError(f"UUID {uuid} is not known")
    return indices


def server_port(pod: Mapping[str, Any]) -> int:
    """The engine port: ``readinessProbe.httpGet.port`` of ``inference-server`` (pure).

    See docs/protocol.md, "Engine calls".
    """
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") != names.INFERENCE_SERVER_CONTAINER:
            continue
        port = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("port")
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        if isinstance(port, str) and port.lower() == "http":
            return 80
        raise ValueError(f"the inference-server readinessProbe port {port!r} is not a number or 'http'")
    raise ValueError(f'no "{names.INFERENCE_SERVER_CONTAINER}" container')


def _cuda_indices(pod: Mapping[str, Any]) -> set[int]:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") != names.INFERENCE_SERVER_CONTAINER:
            continue
        for env in container.get("env") or []:
            if env.get("name") == names.CUDA_VISIBLE_DEVICES_ENV:
                return {int(p) for p in str(env.get("value", "")).split(",") if p.strip().isdigit()}
    return set()


def last_used(pod: Mapping[str, Any]) -> tuple[str, str]:
    """Recency: the controller's managedFields time, else creationTimestamp; ties by name (pure)."""
    meta = pod.get("metadata") or {}
    stamp = str(meta.get("creationTimestamp") or "")
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") == names.DPC_FIELD_MANAGER and entry.get("time"):
            stamp = max(stamp, str(entry["time"]))
    return stamp, str(meta.get("name", ""))


def sleepers_to_evict(
    providers: Sequence[Mapping[str, Any]], indices: list[int], limit: int
) -> list[Mapping[str, Any]]:
    """Unbound providers to delete so no GPU in ``indices`` keeps more than ``limit`` sleepers (pure)."""
    victims: dict[str, Mapping[str, Any]] = {}
    for index in indices:
        on_gpu = [
            p
            for p in providers
            if index in _cuda_indices(p)
            and not pod_view.is_deleting(p)
            and binding_record.from_annotations(pod_view.annotations_of(p)) is None
            and pod_view.name(p) not in victims
        ]
        excess = len(on_gpu) - limit
        if excess > 0:
            for pod in sorted(on_gpu, key=last_used)[:excess]:
                victims[pod_view.name(pod)] = pod
    return list(victims.values())


def _set_env(container: dict[str, Any], name: str, value: str, *, keep_existing: bool = False) -> None:
    env = container.setdefault("env", [])
    for item in env:
        if item.get("name") == name:
            if not keep_existing:
                item.clear()
                item.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def provider_body(
    nominal: Mapping[str, Any],
    *,
    requester: Mapping[str, Any],
    node: str,
    indices: list[int],
    gpus: list[str],
) -> dict[str, Any]:
    """The provider to create: the nominal Pod specialised to node and GPUs and bound (pure)."""
    nominal_hash = hashes.nominal_hash(nominal, indices, node)
    body = copy.deepcopy(dict(nominal))
    spec = body.setdefault("spec", {})
    spec.setdefault("nodeSelector", {})[names.HOSTNAME_NODE_SELECTOR] = node
    for container in spec.get("containers") or []:
        if container.get("name") != names.INFERENCE_SERVER_CONTAINER:
            continue
        _set_env(container, names.CUDA_VISIBLE_DEVICES_ENV, ",".join(str(i) for i in indices))
        _set_env(container, names.CUDA_DEVICE_ORDER_ENV, "PCI_BUS_ID", keep_existing=True)
        for section in ("limits", "requests"):
            values = (container.get("resources") or {}).get(section)
            if isinstance(values, dict) and names.GPU_RESOURCE in values:
                values[names.GPU_RESOURCE] = "0"
    meta = body.setdefault("metadata", {})
    meta.pop("name", None)
    meta["generateName"] = f"{pod_view.name(requester)}-dual-"
    meta["finalizers"] = [keys.PROVIDER_FINALIZER]
    meta["annotations"] = {
        keys.NOMINAL_ANNOTATION: nominal_hash,
        keys.REQUESTER_ANNOTATION: binding_record.format_record(pod_view.uid(requester), pod_view.name(requester)),
        keys.ACCELERATORS_ANNOTATION: accelerators.format_uuids(gpus),
        keys.CONFIG_KEY_ANNOTATION: hashes.direct_config_key(nominal),
    }
    labels = meta.setdefault("labels", {})
    labels[keys.DUAL_LABEL] = pod_view.name(requester)
    labels[keys.SLEEPING_LABEL] = keys.SLEEPING_FALSE
    return body


# --- the reconcile --------------------------------------------------------------------------------------


class DirectMode:
    """Direct-mode reconcile steps for the dual-pods controller."""

    def __init__(
        self,
        side: requester_side.RequesterSide,
        *,
        pods: kube.WatchCache,
        gpu_maps: kube.WatchCache,
        gpu_map_namespace: str,
        sleeper_limit: int,
    ) -> None:
        self._side = side
        self._pods = pods
        self._gpu_maps = gpu_maps
        self._gpu_map_namespace = gpu_map_namespace
        self._sleeper_limit = sleeper_limit

    def reconcile(
        self,
        requester: Mapping[str, Any],
        provider: Mapping[str, Any] | None,
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        """Bind (reuse a sleeper or create a provider) or drive the bound pair."""
        side = self._side
        node = str(requester["spec"]["nodeName"])
        if provider is not None:
            return self._bound(requester, provider, gpus, memo)
        gpu_map = self._gpu_maps.get_by_name(names.GPU_MAP_CONFIGMAP, self._gpu_map_namespace)
        try:
            indices = gpu_indices(gpu_map, node, gpus)
            nominal = nominal_pod(requester, node)
        except ValueError as exc:
            message = str(exc)
            if not message.startswith(("GPU map", "UUID")):
                message = f"failed to construct the nominal server-providing Pod: {message}"
            side.report(requester, message, gpus=gpus)
            return None
        body = provider_body(nominal, requester=requester, node=node, indices=indices, gpus=gpus)
        nominal_hash = body["metadata"]["annotations"][keys.NOMINAL_ANNOTATION]
        sleepers = [
            p
            for p in self._pods.by_index(NOMINAL_INDEX, nominal_hash)
            if not pod_view.is_deleting(p)
            and not pod_view.is_failed(p)
            and binding_record.from_annotations(pod_view.annotations_of(p)) is None
            and pod_view.node_of_provider(p) == node
        ]
        if sleepers:
            chosen = max(sleepers, key=last_used)
            self._bind_sleeper(requester, chosen)
            memo.path = "hot"
            memo.pending_provider, memo.pending_since = pod_view.name(chosen), side.monotonic()
            return None
        on_node = self._pods.by_index(DIRECT_NODE_INDEX, node)
        victims = sleepers_to_evict(on_node, indices, self._sleeper_limit)
        if victims:
            for victim in victims:
                side.delete_pod(victim)
            return 0.5  # created once the deletions show in the cache
        try:
            created = side.api.create(resources.PODS, body, side.namespace)
        except kube.errors.Invalid as exc:
            if _INVALID_POD.match(exc.message):
                side.report(requester, f"the nominal server-providing {exc.message}", gpus=gpus)
                return None
            raise
        memo.path = "cold"
        memo.provider = pod_view.name(created)
        memo.pending_provider, memo.pending_since = pod_view.name(created), side.monotonic()
        return None

    def _bind_sleeper(self, requester: Mapping[str, Any], sleeper: Mapping[str, Any]) -> None:
        side = self._side
        fins = pod_view.finalizers(sleeper)
        try:
            side.api.patch(
                resources.PODS,
                pod_view.name(sleeper),
                {
                    "metadata": {
                        "resourceVersion": sleeper["metadata"]["resourceVersion"],
                        "annotations": {
                            keys.REQUESTER_ANNOTATION: binding_record.format_record(
                                pod_view.uid(requester), pod_view.name(requester)
                            )
                        },
                        "labels": {keys.DUAL_LABEL: pod_view.name(requester)},
                        "finalizers": fins if keys.PROVIDER_FINALIZER in fins else [*fins, keys.PROVIDER_FINALIZER],
                    }
                },
                side.namespace,
            )
        except kube.errors.Conflict as exc:
            raise errors.RetryableError(f"binding sleeper {pod_view.name(sleeper)!r} conflicted") from exc

    def _bound(
        self,
        requester: Mapping[str, Any],
        provider: Mapping[str, Any],
        gpus: list[str],
        memo: dpc_state.RequesterMemo,
    ) -> float | None:
        side = self._side
        memo.provider = pod_view.name(provider)
        side.set_duality(requester, provider, "", gpus, 1)
        requester = side.write(
            requester, dual=pod_view.name(provider), instance=None, gpus=gpus, problems=[], finalizer=True
        )
        if pod_view.labels_of(provider).get(keys.SLEEPING_LABEL) == keys.SLEEPING_TRUE:
            ip = pod_view.pod_ip(provider)
            if ip is None:
                return None
            try:
                port = server_port(provider)
            except ValueError as exc:
                side.report(requester, str(exc), gpus=gpus)
                return None
            side.agents.wake(ip, port)
            if side.agents.is_sleeping(ip, port):
                return 0.25
            try:
                side.api.patch(
                    resources.PODS,
                    pod_view.name(provider),
                    {
                        "metadata": {
                            "resourceVersion": provider["metadata"]["resourceVersion"],
                            "labels": {keys.SLEEPING_LABEL: keys.SLEEPING_FALSE},
                        }
                    },
                    side.namespace,
                )
            except kube.errors.Conflict as exc:
                raise errors.RetryableError("marking the provider awake conflicted") from exc
            if memo.path is None:
                memo.path = "hot"
            return None
        if memo.path is None:
            memo.path = "hot"
        return side.relay(requester, ready=pod_view.is_ready(provider), memo=memo, isc_name="")

    def unbind(self, provider: Mapping[str, Any], memo: dpc_state.RequesterMemo | None) -> None:
        """Sleep the engine and release the provider, keeping it as a sleeper.

        A provider whose engine has not started yet would come up awake while
        unbound, so it is deleted instead; a running one is put to sleep (and
        the sleep confirmed) whatever its ``sleeping`` label says, because a
        wake may have happened without the label write.
        """
        side = self._side
        ip = pod_view.pod_ip(provider)
        if not pod_view.is_deleting(provider) and not pod_view.server_running(provider):
            side.delete_pod(provider)
        elif ip is not None and not pod_view.is_deleting(provider) and not pod_view.is_failed(provider):
            try:
                port: int | None = server_port(provider)
            except ValueError:
                port = None
            if port is not None:
                side.agents.sleep(ip, port)
                if not side.agents.is_sleeping(ip, port):
                    raise errors.RetryableError("the engine does not report sleeping yet")
        notes = pod_view.annotations_of(provider)
        fins = pod_view.finalizers(provider)
        release: dict[str, Any] = {
            "resourceVersion": provider["metadata"]["resourceVersion"],
            "labels": {keys.SLEEPING_LABEL: keys.SLEEPING_TRUE, keys.DUAL_LABEL: None},
            "annotations": {keys.REQUESTER_ANNOTATION: None} if keys.REQUESTER_ANNOTATION in notes else {},
        }
        if keys.PROVIDER_FINALIZER in fins:
            release["finalizers"] = [f for f in fins if f != keys.PROVIDER_FINALIZER]
        try:
            side.api.patch(resources.PODS, pod_view.name(provider), {"metadata": release}, side.namespace)
        except kube.errors.NotFound:
            pass
        except kube.errors.Conflict as exc:
            raise errors.RetryableError("releasing the provider conflicted") from exc
