"""A direct-mode DRA requester's claim stays with the requester: the provider never references it."""

from __future__ import annotations

import json

from controllers import direct_mode
from crds import gpu_claims, keys


def test_the_nominal_pod_drops_the_requesters_claim() -> None:
    patch = {"spec": {"containers": [{"name": "inference-server", "image": "vllm", "command": ["vllm", "serve"]}]}}
    requester = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "r", "namespace": "ns", "annotations": {keys.SERVER_PATCH_ANNOTATION: json.dumps(patch)}},
        "spec": {
            "resourceClaims": [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": "r-gpus-1"}],
            "containers": [
                {
                    "name": "inference-server",
                    "image": "agent",
                    "resources": {"claims": [{"name": gpu_claims.POD_CLAIM_NAME}], "limits": {"memory": "1Gi"}},
                }
            ],
        },
    }
    nominal = direct_mode.nominal_pod(requester, "n1")
    assert "resourceClaims" not in nominal["spec"]
    [container] = nominal["spec"]["containers"]
    assert "claims" not in container["resources"]
    assert container["image"] == "vllm"
