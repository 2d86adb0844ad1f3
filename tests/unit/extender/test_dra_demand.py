"""The extender reads a DRA requester's GPU count from its claim plan, and knows its claim makes hot certain."""

from __future__ import annotations

from crds import gpu_claims, keys, sleeper_config
from extender import demand, protocol


def _isc(namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
    return None


def _lc(namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
    return None


def test_dra_requester_demand_counts_the_claimed_gpus() -> None:
    pod = protocol.PodArgs.model_validate(
        {
            "metadata": {
                "name": "r",
                "namespace": "ns",
                "annotations": {
                    keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1",
                    gpu_claims.CLAIM_ANNOTATION: '{"count":2}',
                },
            },
            "spec": {
                "containers": [{"name": "inference-server", "resources": {"claims": [{"name": "fma-gpus"}]}}],
                "resourceClaims": [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": "r-gpus-1"}],
            },
        }
    )
    want = demand.of_pod(pod, _isc, _lc)
    assert want is not None
    assert want.gpus == 2
    assert want.claims
