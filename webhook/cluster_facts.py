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
* Placement hints (``placement: hints``) come from ``SleeperHints``, which
  reads a ``kube.sleeper_cache.SleeperCache`` (memory only) and ranks with the
  extender's own scoring (``crds.sleeper_scoring``); until that cache has
  synced, or if hinting fails, there is no hint and the admission goes on.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from crds import keys, sleeper_scoring, sleeper_view
from crds import pod_view as crds_pod_view
from kube import cache as kube_cache
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources, sleeper_cache
from webhook import errors, gpu_claim, placement_hints, pod_view

__all__ = ["ClusterLookups", "FactSource", "Facts", "NoLookups", "SleeperHints", "selector_keys"]

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
    hints: placement_hints.Hints | None = None
    """Placement hints for the requester; None when hints are off, unknown or the Pod is no requester."""
    request_uid: str = ""
    """The admission request's UID (names a DRA requester's claim)."""
    claim_preference: gpu_claim.Preference | None = None
    """DRA mode: the sleeper GPUs the requester's claim prefers; None when none is known."""


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


class SleeperHints:
    """Placement hints read from a sleeper cache: memory reads only, never the network."""

    def __init__(self, cache: sleeper_cache.SleeperCache, policy: sleeper_scoring.Policy, *, limit: int) -> None:
        self.cache = cache
        self._policy = policy
        self._limit = limit

    def hints(self, namespace: str, pod: pod_view.PodView, *, claims: bool = False) -> placement_hints.Hints | None:
        """The hints for ``pod`` being admitted into ``namespace``; None for a non-requester or before the
        cache has synced.  Never raises: a failure to hint must not fail the admission."""
        if not self.cache.synced:
            return None
        try:
            return self._compute(namespace, pod, claims=claims)
        except Exception:  # supervising: hints are best-effort, the admission goes on without them
            logger.exception("placement hint failed", extra={"pod": f"{namespace}/{pod.metadata.name}"})
            return None

    def _compute(self, namespace: str, pod: pod_view.PodView, *, claims: bool) -> placement_hints.Hints | None:
        annotations = pod.metadata.annotations
        direct = crds_pod_view.has_server_patch(annotations) or keys.ACTUATION_ANNOTATION in annotations
        containers = [
            {"resources": {"limits": dict(c.resources.limits), "requests": dict(c.resources.requests)}}
            for c in pod.spec.containers
        ]
        want = sleeper_scoring.demand(
            namespace=namespace,
            pod=pod.metadata.name or pod.metadata.generate_name,
            gpus=sleeper_view.gpu_request({"containers": containers}),
            isc_name=annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION),
            direct=direct,
            config_key=annotations.get(keys.CONFIG_KEY_ANNOTATION),
            isc=self.cache.server_config,
            lc=self.cache.launcher_config,
            claims=claims,
        )
        if want is None:
            return None
        relevant = self.cache.relevant_nodes(want) or frozenset()
        views = [view for view in (self.cache.node(name) for name in sorted(relevant)) if view is not None]
        return placement_hints.compute(want, views, self._policy, limit=self._limit)


class ClusterLookups:
    """Facts from the apiserver: a cache of InferenceServerConfigs plus on-demand owner reads (and, when
    placement hints are on, the sleeper cache behind them)."""

    def __init__(
        self,
        api: kube_client.Client,
        *,
        timeout: float,
        hints: SleeperHints | None = None,
        gpu_claims: gpu_claim.GpuClaims | None = None,
    ) -> None:
        self._api = api
        self._gpu_claims = gpu_claims
        self._timeout = timeout
        self._iscs = kube_cache.WatchCache(api, resources.INFERENCE_SERVER_CONFIGS)
        self._hints = hints

    def start(self) -> None:
        """Start the ISC cache (its thread lists and watches in the background) and the sleeper cache."""
        self._iscs.start()
        if self._hints is not None:
            self._hints.cache.start()

    def stop(self) -> None:
        """Stop the caches and close the client."""
        self._iscs.stop()
        if self._hints is not None:
            self._hints.cache.stop()
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
        hints = self._hints.hints(namespace, pod, claims=self._claims(pod)) if self._hints is not None else None
        return Facts(
            isc_exists=isc_exists,
            owner=owner_name,
            owner_selector_keys=owner_keys,
            hints=hints,
            claim_preference=self._claim_preference(namespace, pod),
        )

    def _claims(self, pod: pod_view.PodView) -> bool:
        """Whether the Pod will get its GPUs through a claim (its hints then count a free sleeper as hot)."""
        if self._gpu_claims is None:
            return False
        try:
            return gpu_claim.wanted(pod.metadata.annotations, self._gpu_claims)
        except errors.Denial:
            return False

    def _claim_preference(self, namespace: str, pod: pod_view.PodView) -> gpu_claim.Preference | None:
        if self._gpu_claims is None or self._hints is None:
            return None
        try:
            if not gpu_claim.wanted(pod.metadata.annotations, self._gpu_claims):
                return None
            containers = [
                {"resources": {"limits": dict(c.resources.limits), "requests": dict(c.resources.requests)}}
                for c in pod.spec.containers
            ]
            count = sleeper_view.gpu_request({"containers": containers})
            return gpu_claim.preference(self._hints.cache, namespace, pod, count)
        except Exception:  # supervising: a preference is best-effort, the claim falls back to any GPU
            logger.exception("gpu claim preference failed", extra={"pod": f"{namespace}/{pod.metadata.name}"})
            return None

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
