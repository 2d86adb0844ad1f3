"""Launcher mode, bookkeeping outside a binding: unbound launchers and obsolete instances.

See docs/controllers.md, "Obsolete instances" and "Unbound launchers".

An unbound launcher is synced on every visit (stopped instances deleted,
the LRU table rebuilt) and its node's waiting requesters are woken; after an
ISC spec change, sleeping instances whose ID no longer matches the spec are
deleted.  ``recomputed_id`` — what an instance's ID would be now — is shared
with unbinding, which deletes an obsolete instance instead of putting it to
sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

import kube
from controllers import dpc_indexes, errors, pod_view, requester_side
from crds import binding_record, hashes, inference_server_config, names

__all__ = ["LauncherSync", "recomputed_id"]

logger = logging.getLogger(__name__)

Enqueue = Callable[[str, str], None]
"""Enqueue a requester item: (node, requester UID)."""


def recomputed_id(iscs: kube.WatchCache, namespace: str, state: Mapping[str, Any]) -> str | None:
    """The ID an instance would have now under its ISC, ``"<isc-gone>"``, or None if unknowable."""
    isc_name = (state.get("annotations") or {}).get(names.INSTANCE_ISC_NAME)
    gpus = list(state.get("gpu_uuids") or [])
    if not isc_name or not gpus:
        return None
    raw = iscs.get_by_name(str(isc_name), namespace)
    if raw is None:
        return "<isc-gone>"
    try:
        isc = inference_server_config.InferenceServerConfig.model_validate(raw)
    except pydantic.ValidationError:
        return None
    return hashes.instance_id(isc.spec.model_server_config, gpus)


class LauncherSync:
    """Syncs unbound launchers and collects obsolete sleeping instances."""

    def __init__(
        self,
        side: requester_side.RequesterSide,
        *,
        namespace: str,
        pods: kube.WatchCache,
        iscs: kube.WatchCache,
        enqueue_requester: Enqueue,
    ) -> None:
        self._side = side
        self._namespace = namespace
        self._pods = pods
        self._iscs = iscs
        self._enqueue_requester = enqueue_requester

    def reconcile_unbound_launcher(self, node: str, name: str) -> float | None:
        """Sync an unbound launcher; wake the requesters waiting on its node."""
        pod = self._pods.get_by_name(name, self._namespace)
        if pod is None:
            self._side.state.forget_launcher(name)
        elif binding_record.from_annotations(pod_view.annotations_of(pod)) is None:
            self._sync(pod)
        for requester in self._pods.by_index(dpc_indexes.REQUESTER_NODE, node):
            if not self._pods.by_index(dpc_indexes.BOUND_TO, pod_view.uid(requester)):
                self._enqueue_requester(node, pod_view.uid(requester))
        return None

    def _sync(self, pod: Mapping[str, Any]) -> None:
        ip = pod_view.pod_ip(pod)
        if ip is None or not pod_view.is_ready(pod) or pod_view.is_deleting(pod):
            return
        name = pod_view.name(pod)
        agents = self._side.agents
        alive = []
        for state in agents.list_instances(ip).get("instances") or []:
            if state.get("status") != "stopped":
                alive.append(str(state["instance_id"]))
                continue
            try:
                agents.delete_instance(ip, str(state["instance_id"]))
            except errors.EngineHTTPError as exc:
                logger.warning("deleting a stopped instance failed", extra={"launcher": name, "error": str(exc)})
        self._side.state.discover(name, alive, self._side.monotonic())

    def _obsolete(self, ip: str, state: Mapping[str, Any], isc_name: str) -> bool:
        """A sleeping instance of ``isc_name`` whose ID no longer matches its spec."""
        notes = state.get("annotations") or {}
        if notes.get(names.INSTANCE_ISC_NAME) != isc_name or not state.get("gpu_uuids"):
            return False
        recomputed = recomputed_id(self._iscs, self._namespace, state)
        if recomputed is None or recomputed == state.get("instance_id"):
            return False
        try:
            return self._side.agents.is_sleeping(ip, int(str(notes.get(names.INSTANCE_INFERENCE_PORT))))
        except (ValueError, errors.EngineHTTPError):
            return False

    def collect_obsolete(self, node: str, isc_name: str) -> float | None:
        """Delete sleeping instances of ``isc_name`` whose ID no longer matches its spec."""
        for pod in self._pods.by_index(dpc_indexes.LAUNCHER_NODE, node):
            ip = pod_view.pod_ip(pod)
            if ip is None or pod_view.is_deleting(pod):
                continue
            for state in self._side.agents.list_instances(ip).get("instances") or []:
                if self._obsolete(ip, state, isc_name):
                    self._side.agents.delete_instance(ip, str(state["instance_id"]))
                    logger.info("deleted obsolete instance", extra={"launcher": pod_view.name(pod), "isc": isc_name})
        return None
