"""Dual-pods controller, direct mode: providers built from the requester and its server patch."""

from __future__ import annotations

import pytest

from devcluster import waiting
from kube import resources

from .conftest import Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def _providers(harness: Harness, app: str) -> list[dict]:
    return [p for p in harness.pods(f"provider-of={app}") if not p["metadata"].get("deletionTimestamp")]


def _one_provider(harness: Harness, app: str) -> dict:
    items = waiting.wait_for(lambda: _providers(harness, app), timeout=60, what=f"a provider for {app}")
    assert len(items) == 1
    return items[0]


def test_the_pair_appears_once_gpu_map_is_populated(harness: Harness) -> None:
    harness.start_controller(gpu_map_namespace=harness.namespace)
    harness.direct_deployment("d1", "model-a")

    def reported() -> bool:
        pods = harness.requesters("d1")
        return bool(pods) and "gpu-map is not available" in pods[0]["metadata"].get("annotations", {}).get(
            P + "status", ""
        )

    waiting.wait_for(reported, timeout=60, what="the missing gpu-map in the requester's status")
    assert _providers(harness, "d1") == []
    source = harness.api.get(resources.CONFIG_MAPS, "gpu-map", str(harness.simnode.options.gpu_map_namespace))
    harness.create(resources.CONFIG_MAPS, {"metadata": {"name": "gpu-map"}, "data": source["data"]})
    requester = harness.ready_requester("d1")
    provider = _one_provider(harness, "d1")
    rmeta, pmeta = requester["metadata"], provider["metadata"]
    assert rmeta["labels"][P + "dual"] == pmeta["name"]
    assert P + "instance" not in rmeta["labels"]
    assert rmeta["annotations"][P + "status"] == '{"Errors":null}'
    assert pmeta["annotations"][P + "requester"] == f"{rmeta['uid']} {rmeta['name']}"
    assert pmeta["annotations"][P + "accelerators"] == rmeta["annotations"][P + "accelerators"]
    assert len(pmeta["annotations"][P + "nominal"]) == 43
    assert pmeta["labels"][P + "dual"] == rmeta["name"]
    assert pmeta["labels"][P + "sleeping"] == "false"
    assert "app" not in pmeta["labels"], "the provider must not match its requester's ReplicaSet"
    assert pmeta["name"].startswith(rmeta["name"] + "-dual-")
    assert provider["spec"]["nodeSelector"]["kubernetes.io/hostname"] == requester["spec"]["nodeName"]
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="cold", isc_name="") == 1,
        timeout=10,
        what="a cold direct actuation",
    )


def test_scale_down_keeps_the_provider_asleep_and_the_next_requester_reuses_it(harness: Harness) -> None:
    harness.start_controller()
    node = harness.simnode.node_names[0]
    harness.direct_deployment("d1", "model-a", node=node)
    harness.ready_requester("d1")
    provider = _one_provider(harness, "d1")
    harness.scale("d1", 0)
    waiting.wait_for(lambda: not harness.pods("app=d1"), timeout=60, what="the requester gone")
    sleeper = harness.get(provider["metadata"]["name"])
    meta = sleeper["metadata"]
    assert meta["labels"][P + "sleeping"] == "true"
    assert P + "requester" not in meta["annotations"]
    assert P + "dual" not in meta["labels"]
    assert P + "provider" not in (meta.get("finalizers") or [])
    assert meta["annotations"][P + "nominal"] == provider["metadata"]["annotations"][P + "nominal"]
    assert meta["annotations"][P + "config-key"].startswith("C")

    harness.scale("d1", 1)
    again = harness.ready_requester("d1")
    assert again["metadata"]["labels"][P + "dual"] == provider["metadata"]["name"]
    assert len(_providers(harness, "d1")) == 1
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="hot", isc_name="") == 1,
        timeout=10,
        what="a hot direct actuation",
    )


def test_deleting_the_provider_deletes_the_requester_and_a_new_pair_appears(harness: Harness) -> None:
    harness.start_controller()
    harness.direct_deployment("d1", "model-a")
    first = harness.ready_requester("d1")
    provider = _one_provider(harness, "d1")
    harness.api.delete(resources.PODS, provider["metadata"]["name"], harness.namespace)

    def new_pair() -> bool:
        requesters = [p for p in harness.requesters("d1") if p["metadata"]["uid"] != first["metadata"]["uid"]]
        providers = [p for p in _providers(harness, "d1") if p["metadata"]["name"] != provider["metadata"]["name"]]
        return bool(requesters) and bool(providers)

    waiting.wait_for(new_pair, timeout=90, what="a new requester and provider")
    second = harness.ready_requester("d1")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    waiting.wait_for(
        lambda: harness.api.get_or_none(resources.PODS, provider["metadata"]["name"], harness.namespace) is None,
        timeout=60,
        what="the deleted provider to be gone (its finalizer released)",
    )


def test_the_sleeper_limit_evicts_the_least_recently_used(harness: Harness) -> None:
    harness.start_controller("--sleeper-limit", "1")
    node = harness.simnode.node_names[0]
    names = {}
    for app, model in (("da", "model-a"), ("db", "model-b")):
        harness.direct_deployment(app, model, node=node)
        harness.ready_requester(app)
        names[app] = _one_provider(harness, app)["metadata"]["name"]
        harness.scale(app, 0)
        waiting.wait_for(lambda a=app: not harness.pods(f"app={a}"), timeout=60, what=f"{app} gone")
    # Two sleepers share the GPU now; a third model must evict the older one (da) first.
    harness.direct_deployment("dc", "model-c", node=node)
    harness.ready_requester("dc")
    waiting.wait_for(
        lambda: harness.api.get_or_none(resources.PODS, names["da"], harness.namespace) is None,
        timeout=60,
        what="the least recently used sleeper evicted",
    )
    assert harness.api.get_or_none(resources.PODS, names["db"], harness.namespace) is not None
