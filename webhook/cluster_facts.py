"""What the mutation needs to know about the cluster, gathered before it runs.

``mutation.mutate`` is pure; the few facts it uses that live in the cluster
(does the referenced InferenceServerConfig exist, which label keys does the
Pod's owning set select on) are read here first and handed in as ``Facts``.
Lookups are best-effort: when the cluster cannot answer in time, the fact
is ``None`` (unknown) and the mutation skips the check rather than failing
the admission.

* ISC existence comes from a watch-fed cache (no apiserver round trip per
  admission); until the cache has synced it is unknown.
* The owner's selector is read with one GET, only for direct-mode Pods that
  name ``provider-labels`` (rare), bounded by a short timeout.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from crds import keys
from kube import cache as kube_cache
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources
from webhook import pod_view

__all__ = ["ClusterLookups", "FactSource", "Facts", "NoLookups", "selector_keys"]

logger = logging.getLogger(__name__)

_OWNER_RESOURCES: dict[tuple[str, str], resources.Resource] = {
    ("apps/v1", "ReplicaSet"): resources.custom("apps", "v1", "replicasets", "ReplicaSet"),
    ("apps/v1", "StatefulSet"): resources.custom("apps", "v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "DaemonSet"): resources.custom("apps", "v1", "daemonsets", "DaemonSet"),
    ("batch/v1", "Job"): resources.custom("batch", "v1", "jobs", "Job"),
}


@dataclasses.dataclass(frozen=True)
class Facts:
    """Cluster facts for one admission; ``None`` means unknown."""

    isc_exists: bool | None = None
    owner: str | None = None
    owner_selector_keys: frozenset[str] | None = None


class FactSource(Protocol):
    """Gathers ``Facts`` for a Pod being admitted into ``namespace``."""

    def blocks(self, pod: pod_view.PodView) -> bool:
        """Whether ``gather`` would wait on the network for ``pod`` (then it runs in a worker thread)."""
        ...

    def gather(self, namespace: str, pod: pod_view.PodView) -> Facts:
        """Read what the mutation of ``pod`` needs; never raises for lookup failures."""
        ...


class NoLookups:
    """A fact source for webhooks without cluster access: everything is unknown."""

    def blocks(self, pod: pod_view.PodView) -> bool:
        """Never."""
        return False

    def gather(self, namespace: str, pod: pod_view.PodView) -> Facts:
        """Unknown facts."""
        return Facts()


def selector_keys(owner: dict[str, Any]) -> frozenset[str]:
    """The label keys a set's ``spec.selector`` constrains (pure)."""
    selector = (owner.get("spec") or {}).get("selector") or {}
    found = set((selector.get("matchLabels") or {}).keys())
    found.update(str(e.get("key")) for e in selector.get("matchExpressions") or [] if e.get("key"))
    return frozenset(found)


class ClusterLookups:
    """Facts from the apiserver: a cache of InferenceServerConfigs plus on-demand owner reads."""

    def __init__(self, api: kube_client.Client, *, timeout: float) -> None:
        self._api = api
        self._timeout = timeout
        self._iscs = kube_cache.WatchCache(api, resources.INFERENCE_SERVER_CONFIGS)

    def start(self) -> None:
        """Start the ISC cache (its thread lists and watches in the background)."""
        self._iscs.start()

    def stop(self) -> None:
        """Stop the cache and close the client."""
        self._iscs.stop()
        self._api.close()

    @property
    def synced(self) -> bool:
        """Whether the ISC cache has listed once."""
        return self._iscs.synced

    def blocks(self, pod: pod_view.PodView) -> bool:
        """Only the owner lookup (direct mode with ``provider-labels``) goes to the apiserver."""
        return bool(pod.metadata.annotations.get(keys.PROVIDER_LABELS_ANNOTATION, "").strip())

    def gather(self, namespace: str, pod: pod_view.PodView) -> Facts:
        """ISC existence from the cache, the owner's selector keys from one GET when needed."""
        annotations = pod.metadata.annotations
        isc_exists: bool | None = None
        isc = annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION)
        if isc and self._iscs.synced:
            isc_exists = self._iscs.get(f"{namespace}/{isc}") is not None
        owner_name: str | None = None
        owner_keys: frozenset[str] | None = None
        if self.blocks(pod):
            owner_name, owner_keys = self._owner_selector(namespace, pod)
        return Facts(isc_exists=isc_exists, owner=owner_name, owner_selector_keys=owner_keys)

    def _owner_selector(self, namespace: str, pod: pod_view.PodView) -> tuple[str | None, frozenset[str] | None]:
        for reference in pod.metadata.owner_references:
            if not reference.controller:
                continue
            resource = _OWNER_RESOURCES.get((reference.api_version, reference.kind))
            described = f"{reference.kind}/{reference.name}"
            if resource is None:
                return described, None
            try:
                owner = self._api.request("GET", resource.path(namespace, reference.name), timeout=self._timeout)
            except kube_errors.KubeError as exc:
                logger.warning("owner lookup failed", extra={"owner": described, "error": str(exc)})
                return described, None
            return described, selector_keys(owner)
        return None, None
