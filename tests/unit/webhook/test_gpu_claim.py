"""DRA mode in the webhook: the requester references a claim of its own, with the sleeper's GPUs first."""

from __future__ import annotations

import dataclasses

import pytest

from crds import gpu_claims, keys, sleeper_scoring, sleeper_view
from tests.unit.webhook.conftest import Applier, build_pod
from webhook import cluster_facts, gpu_claim, mutation, pod_view

FACTS = cluster_facts.Facts(request_uid="uid-1")


def _dra(options: mutation.Options) -> mutation.Options:
    return dataclasses.replace(options, gpu_claims=gpu_claim.GpuClaims(default="dra"))


def test_dra_requester_gets_a_claim_reference_and_no_device_plugin_gpus(
    options: mutation.Options, apply_patch: Applier
) -> None:
    pod = build_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"}, gpus="2")
    pod["metadata"]["generateName"] = "web-abc-"
    chosen = gpu_claim.Preference(node="n1", uuids=("GPU-a", "GPU-b"))
    decision = mutation.mutate(pod, _dra(options), dataclasses.replace(FACTS, claim_preference=chosen))
    assert decision.allowed, decision.message
    out = apply_patch(pod, list(decision.patch))
    [agent] = out["spec"]["containers"]
    assert "nvidia.com/gpu" not in agent["resources"]["limits"]
    assert "nvidia.com/gpu" not in agent["resources"]["requests"]
    assert agent["resources"]["claims"] == [{"name": gpu_claims.POD_CLAIM_NAME}]
    [entry] = out["spec"]["resourceClaims"]
    assert entry["name"] == gpu_claims.POD_CLAIM_NAME
    assert entry["resourceClaimName"].startswith("web-abc-gpus-")
    plan = gpu_claims.plan_of(out)
    assert plan is not None
    assert (plan.count, plan.preferred, plan.preferred_node) == (2, ("GPU-a", "GPU-b"), "n1")
    # The same request names the same claim; another request another one.
    again = mutation.mutate(pod, _dra(options), FACTS)
    other = mutation.mutate(pod, _dra(options), dataclasses.replace(FACTS, request_uid="uid-2"))
    assert [o for o in again.patch if "resourceClaims" in str(o)] != [
        o for o in other.patch if "resourceClaims" in str(o)
    ]


def test_annotation_chooses_the_path_per_pod(options: mutation.Options) -> None:
    plain = build_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1", gpu_claim.GPU_REQUEST_ANNOTATION: "dra"})
    assert "resourceClaims" in str(mutation.mutate(plain, options, FACTS).patch)
    opted_out = build_pod(
        {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1", gpu_claim.GPU_REQUEST_ANNOTATION: "device-plugin"}
    )
    assert "resourceClaims" not in str(mutation.mutate(opted_out, _dra(options), FACTS).patch)
    assert "resourceClaims" not in str(
        mutation.mutate(build_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "i"}), options, FACTS).patch
    )
    bad = build_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1", gpu_claim.GPU_REQUEST_ANNOTATION: "maybe"})
    decision = mutation.mutate(bad, options, FACTS)
    assert not decision.allowed
    assert "gpu-request" in decision.message


def _node(name: str, held: frozenset[str], sleeper_gpus: tuple[str, ...]) -> sleeper_view.NodeView:
    instance = sleeper_view.Instance(id="i1", config_key="k", gpus=sleeper_gpus, port=8005, running=True)
    launcher = sleeper_view.Launcher(namespace="ns", name=f"l-{name}", config_name="lc", instances=(instance,))
    return sleeper_view.NodeView(
        name=name,
        labels={},
        gpu_capacity=4,
        gpus=("GPU-0", "GPU-1", "GPU-2", "GPU-3"),
        held=held,
        unknown_held=0,
        launchers=(launcher,),
    )


WANT = sleeper_scoring.Demand(
    namespace="ns", pod="p", mode=sleeper_scoring.Mode.LAUNCHER, gpus=1, config_key="k", launcher_config="lc"
)


def test_the_free_sleeper_set_is_preferred_and_a_held_one_is_not() -> None:
    assert gpu_claim.choose(WANT, [_node("n1", frozenset(), ("GPU-2",))]) == gpu_claim.Preference("n1", ("GPU-2",))
    assert gpu_claim.choose(WANT, [_node("n1", frozenset({"GPU-2"}), ("GPU-2",))]) is None
    assert gpu_claim.choose(dataclasses.replace(WANT, gpus=2), [_node("n1", frozenset(), ("GPU-2",))]) is None
    assert gpu_claim.choose(dataclasses.replace(WANT, config_key=None), [_node("n1", frozenset(), ("GPU-2",))]) is None


def test_existing_fma_claim_entry_is_refused(options: mutation.Options) -> None:
    pod = build_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"})
    pod["spec"]["resourceClaims"] = [{"name": gpu_claims.POD_CLAIM_NAME, "resourceClaimName": "x"}]
    decision = mutation.mutate(pod, _dra(options), FACTS)
    assert not decision.allowed
    assert gpu_claims.POD_CLAIM_NAME in decision.message


@pytest.mark.parametrize(("uid", "name"), [("a", "p"), ("b", "p")])
def test_claim_names_are_valid(uid: str, name: str) -> None:
    view = pod_view.parse(build_pod())
    view = view.model_copy(update={"metadata": view.metadata.model_copy(update={"name": name})})
    claim = gpu_claim.claim_name(view, uid)
    gpu_claims.claim_body(claim, "ns", gpu_claims.ClaimPlan(count=1), owner=None)


def test_a_claim_makes_a_free_sleeper_certain_where_lowest_index_would_miss_it() -> None:
    node = _node("n1", frozenset(), ("GPU-2",))
    lowest = sleeper_scoring.Allocation.LOWEST_INDEX
    assert sleeper_scoring.hot_chance(WANT, node, lowest) == 0.0
    assert sleeper_scoring.hot_chance(dataclasses.replace(WANT, claims=True), node, lowest) == 1.0
    assert (
        sleeper_scoring.hot_chance(
            dataclasses.replace(WANT, claims=True), _node("n1", frozenset({"GPU-2"}), ("GPU-2",)), lowest
        )
        == 0.0
    )
