"""The claim keeper's decisions: create while unscheduled, replace a requester whose claim went away."""

from __future__ import annotations

from typing import Any

import pytest

from controllers import claim_keeper
from crds import gpu_claims

Action = claim_keeper.Action


def _pod(node: str | None = None, *, deleting: bool = False, plan: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r", "namespace": "ns", "uid": "u1", "annotations": {}}
    if plan:
        meta["annotations"][gpu_claims.CLAIM_ANNOTATION] = '{"count":1}'
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {"resourceClaims": [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": "r-gpus"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": {"phase": "Pending"}}


def _claim(owner: str = "u1", *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r-gpus", "ownerReferences": [{"kind": "Pod", "name": "r", "uid": owner}]}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("pod", "claim", "action"),
    [
        pytest.param(_pod(), None, Action.CREATE, id="unscheduled-no-claim"),
        pytest.param(_pod(), _claim(), Action.NONE, id="unscheduled-claim-present"),
        pytest.param(_pod("n1"), _claim(), Action.NONE, id="scheduled-claim-present"),
        pytest.param(_pod("n1"), None, Action.REPLACE, id="scheduled-claim-gone"),
        pytest.param(_pod("n1"), _claim(deleting=True), Action.REPLACE, id="scheduled-claim-deleting"),
        pytest.param(_pod(), _claim("u2"), Action.FOREIGN, id="claim-of-another-pod"),
        pytest.param(_pod(deleting=True), None, Action.NONE, id="pod-deleting"),
        pytest.param(_pod(plan=False), None, Action.NONE, id="device-plugin-requester"),
        pytest.param(None, None, Action.NONE, id="pod-gone"),
    ],
)
def test_decide(pod: dict[str, Any] | None, claim: dict[str, Any] | None, action: Action) -> None:
    assert claim_keeper.decide(pod, claim).action is action
