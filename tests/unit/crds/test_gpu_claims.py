"""The requester's GPU claim: plan annotation, claim body, and reading allocations back."""

from __future__ import annotations

import pytest

from crds import errors, gpu_claims


def test_plan_round_trips_and_rejects_a_preference_of_the_wrong_size() -> None:
    plan = gpu_claims.ClaimPlan(count=2, preferred=("GPU-a", "GPU-b"), preferredNode="n1")
    assert gpu_claims.parse_plan(gpu_claims.format_plan(plan)) == plan
    assert gpu_claims.parse_plan(None) is None
    with pytest.raises(errors.InvalidAnnotation, match="preferred names 1 GPUs"):
        gpu_claims.parse_plan('{"count":2,"preferred":["GPU-a"]}')
    with pytest.raises(errors.InvalidAnnotation):
        gpu_claims.parse_plan('{"count":0}')


def test_claim_lists_the_sleeper_first_then_any_device_and_is_owned_by_the_pod() -> None:
    plan = gpu_claims.ClaimPlan(count=1, preferred=("GPU-x",))
    body = gpu_claims.claim_body("r-gpus", "ns", plan, owner=("r", "uid-1"))
    [request] = body["spec"]["devices"]["requests"]
    names = [alt["name"] for alt in request["firstAvailable"]]
    assert names == ["sleeper", "any"]
    assert request["firstAvailable"][0]["selectors"][0]["cel"]["expression"] == (
        'device.attributes["gpu.nvidia.com"].uuid in ["GPU-x"]'
    )
    assert all(alt["count"] == 1 for alt in request["firstAvailable"])
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    no_sleeper = gpu_claims.claim_body("r-gpus", "ns", gpu_claims.ClaimPlan(count=3), owner=None)
    assert [a["name"] for a in no_sleeper["spec"]["devices"]["requests"][0]["firstAvailable"]] == ["any"]
    with pytest.raises(ValueError, match="not a valid"):
        gpu_claims.claim_body("Bad_Name", "ns", plan, owner=None)


def test_allocation_is_read_as_uuids_and_counted_for_the_pod() -> None:
    claim = {
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": "gpus/sleeper", "driver": "gpu.nvidia.com", "pool": "n1", "device": "gpu-2"},
                        {"request": "other", "driver": "x.example.com", "pool": "n1", "device": "nic-0"},
                    ]
                }
            }
        }
    }
    [first, _] = gpu_claims.allocated_devices(claim)
    assert first.subrequest == "sleeper"
    assert gpu_claims.claimed_uuids(claim, {0: "GPU-0", 2: "GPU-2"}) == ["GPU-2"]
    assert gpu_claims.claimed_uuids(claim, {0: "GPU-0"}) is None
    assert gpu_claims.claimed_uuids({}, {0: "GPU-0"}) is None
    pod = {
        "metadata": {"annotations": {gpu_claims.CLAIM_ANNOTATION: '{"count":2}'}},
        "spec": {"resourceClaims": [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": "c1"}]},
    }
    assert gpu_claims.claim_name_of(pod) == "c1"
    assert gpu_claims.pod_gpu_count(pod, 0) == 2
    assert gpu_claims.pod_gpu_count(pod, 1) == 1
    assert gpu_claims.pod_gpu_count({"metadata": {}}, 0) == 0
    templated = {
        "spec": {"resourceClaims": [{"name": "fma-gpus", "resourceClaimTemplateName": "t"}]},
        "status": {"resourceClaimStatuses": [{"name": "fma-gpus", "resourceClaimName": "gen-1"}]},
    }
    assert gpu_claims.claim_name_of(templated) == "gen-1"
