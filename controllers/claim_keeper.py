"""The claim keeper: each DRA-mode requester's ResourceClaim exists exactly while it is needed.

The webhook (admission, no side effects) only writes into a DRA requester
the name of its claim and the claim's plan (``crds.gpu_claims``); this
controller makes the claim exist, owned by the Pod so that the garbage
collector removes it with the Pod.  The scheduler does not schedule a Pod
whose claim is missing, so until the claim is created the requester waits
in the scheduling queue and never runs without GPUs.

Decisions (``decide``, pure) for a requester with a ``gpu-claim`` plan:

* claim missing, Pod unscheduled → **create** it from the plan;
* claim missing or being deleted, Pod scheduled (someone deleted an
  allocated claim) → **replace** the requester: delete the Pod, its owner
  makes a new one with a new claim; the GPUs it had are never handed to
  another Pod while it still runs, because an allocated claim keeps its
  ``delete-protection`` finalizer until the Pod stops;
* claim present and ours → nothing.

A claim of the same name owned by another Pod is left alone and reported.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Mapping
from typing import Any

import kube
from controllers import errors
from controllers import work_queue as wq
from controllers import workers as workers_mod
from crds import gpu_claims
from kube import errors as kube_errors
from kube import resources

__all__ = ["RESOURCE_CLAIMS", "Action", "ClaimKeeper", "decide"]

logger = logging.getLogger(__name__)

RESOURCE_CLAIMS = resources.custom("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim")
_EVENT_REASON = "GpuClaimLost"


class Action(enum.StrEnum):
    """What the keeper does for one requester."""

    NONE = "none"
    CREATE = "create"
    REPLACE = "replace"
    FOREIGN = "foreign"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The action and what it needs."""

    action: Action
    claim_name: str | None = None
    plan: gpu_claims.ClaimPlan | None = None


def decide(pod: Mapping[str, Any] | None, claim: Mapping[str, Any] | None) -> Decision:
    """What to do for ``pod`` given its claim as cached (pure; no I/O)."""
    if pod is None:
        return Decision(Action.NONE)
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Decision(Action.NONE)
    plan = gpu_claims.plan_of(pod)
    name = gpu_claims.claim_name_of(pod)
    if plan is None or name is None:
        return Decision(Action.NONE)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return Decision(Action.NONE)
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    if claim is not None:
        owners = (claim.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("uid") == meta.get("uid") for o in owners):
            return Decision(Action.FOREIGN, name, plan)
        if scheduled and (claim.get("metadata") or {}).get("deletionTimestamp"):
            return Decision(Action.REPLACE, name, plan)
        return Decision(Action.NONE, name, plan)
    if scheduled:
        return Decision(Action.REPLACE, name, plan)
    return Decision(Action.CREATE, name, plan)


class ClaimKeeper:
    """Watches requesters and their claims in one namespace and applies ``decide``."""

    def __init__(
        self,
        api: kube.Client,
        *,
        namespace: str,
        pods: kube.WatchCache,
        events: kube.EventRecorder,
        workers: int = 2,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._pods = pods
        self._events = events
        self.claims = kube.WatchCache(api, RESOURCE_CLAIMS, namespace=namespace)
        self._queue: wq.GroupedQueue[str, str] = wq.GroupedQueue()
        self._workers = workers_mod.Workers(self._queue, self.reconcile, name="claim-keeper", count=workers)

    def register_handlers(self) -> None:
        """Queue a requester on its own changes and on its claim's."""
        self._pods.add_handler(self._on_pod)
        self.claims.add_handler(self._on_claim)

    def _on_pod(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        obj = new or old
        if obj is not None and gpu_claims.CLAIM_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
            self._queue.add(key, key)

    def _on_claim(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        obj = new or old or {}
        for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("kind") == "Pod" and owner.get("name"):
                pod_key = f"{self._namespace}/{owner['name']}"
                self._queue.add(pod_key, pod_key)

    def start(self) -> None:
        """Start reconciling (the caches are started by their owner)."""
        for pod in self._pods.items():
            self._on_pod(kube.cache.object_key(pod), None, pod)
        self._workers.start()

    def stop(self) -> None:
        """Stop the workers."""
        self._workers.stop()

    def _still_there(self, name: str) -> bool:
        try:
            found = self._api.get_or_none(RESOURCE_CLAIMS, name, self._namespace)
        except kube_errors.APIError:
            return True  # unsure: do not replace on a failed read
        return found is not None and not (found.get("metadata") or {}).get("deletionTimestamp")

    def reconcile(self, group: str, key: str) -> float | None:
        """Apply ``decide`` to one requester."""
        pod = self._pods.get(key)
        name = gpu_claims.claim_name_of(pod) if pod is not None else None
        claim = self.claims.get(f"{self._namespace}/{name}") if name else None
        decision = decide(pod, claim)
        if pod is None or decision.action is Action.NONE:
            return None
        meta = pod["metadata"]
        extra = {"pod": key, "claim": decision.claim_name, "action": decision.action.value}
        if decision.action is Action.FOREIGN:
            logger.warning("claim belongs to another pod", extra=extra)
            raise errors.TerminalError(f"ResourceClaim {decision.claim_name!r} belongs to another Pod")
        if decision.action is Action.CREATE and decision.plan is not None and decision.claim_name is not None:
            body = gpu_claims.claim_body(
                decision.claim_name, self._namespace, decision.plan, owner=(meta["name"], meta["uid"])
            )
            try:
                self._api.create(RESOURCE_CLAIMS, body, namespace=self._namespace)
            except kube_errors.Conflict:
                return 1.0  # the cache has not seen it yet; look again
            logger.info("gpu claim created", extra=extra)
            return None
        if decision.action is not Action.REPLACE:
            return None
        if claim is None and self._still_there(str(decision.claim_name)):
            return 1.0  # the claim cache lags behind the Pod's; look again
        message = f"ResourceClaim {decision.claim_name} was deleted while the requester held its GPUs; replacing it"
        self._events.record(pod, "Warning", _EVENT_REASON, message)
        try:
            self._api.delete(resources.PODS, meta["name"], self._namespace, uid=meta["uid"])
        except kube_errors.NotFound:
            return None
        logger.warning("requester replaced: its gpu claim is gone", extra=extra)
        return None
