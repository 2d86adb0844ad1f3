"""Direct mode's pure parts: template expansion, nominal Pod, GPU indices, sleeper budget."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controllers import direct_mode

P = "dual-pods.llm-d.ai/"


def requester(patch: str, **extra_annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "r1",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "r"},
            "annotations": {P + "server-patch": patch, **extra_annotations},
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {
                    "name": "inference-server",
                    "image": "requester",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    "volumeMounts": [{"name": "kube-api-access-abc12", "mountPath": "/var/run/secrets/x"}],
                }
            ],
            "volumes": [{"name": "kube-api-access-abc12", "projected": {}}],
            "ephemeralContainers": [{"name": "debug"}],
        },
    }


PATCH = """
metadata:
  labels: {app: null, role: server}
spec:
  containers:
  - name: inference-server
    image: vllm/vllm-openai
    command: [vllm, serve, --port, "8000", --enable-sleep-mode]
    env: [{name: VLLM_SERVER_DEV_MODE, value: "1"}, {name: NODE, value: "{{ .NodeName }}"}]
    readinessProbe: {httpGet: {path: /health, port: 8000}}
"""


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("a {{.NodeName}} b", "a n1 b", id="node-name"),
        pytest.param("a {{ .NodeName }} b", "a n1 b", id="inner-spaces"),
        pytest.param("x{{.LocalVolume}}y", "xy", id="local-volume-empty"),
    ],
)
def test_expand_template(template: str, expected: str) -> None:
    assert direct_mode.expand_template(template, "n1") == expected


def test_other_template_constructs_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported template construct"):
        direct_mode.expand_template("{{ if .X }}", "n1")


def test_the_controllers_own_labels_do_not_change_the_nominal_pod() -> None:
    bound = requester(PATCH)
    bound["metadata"]["labels"].update({P + "dual": "r1-dual-x", P + "instance": "Iabc"})
    assert direct_mode.nominal_pod(bound, "n1") == direct_mode.nominal_pod(requester(PATCH), "n1")


def test_nominal_pod_is_the_deindividualised_requester_with_the_patch() -> None:
    pod = direct_mode.nominal_pod(requester(PATCH), "n1")
    container = pod["spec"]["containers"][0]
    assert container["image"] == "vllm/vllm-openai"
    assert {"name": "NODE", "value": "n1"} in container["env"]
    assert pod["metadata"] == {"namespace": "ns", "labels": {"role": "server"}}
    assert "ephemeralContainers" not in pod["spec"]
    assert "nodeName" not in pod["spec"]
    assert "volumes" not in pod["spec"], "the kube-api-access volume is dropped"
    assert "volumeMounts" not in container


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param("spec: [unclosed", "not YAML", id="not-yaml"),
        pytest.param("- a list", "must be a mapping", id="not-a-mapping"),
        pytest.param(
            "spec: {containers: [{name: inference-server, $patch: delete}]}", 'no "inference-server"', id="no-server"
        ),
    ],
)
def test_bad_patches_explain_themselves(patch: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        direct_mode.nominal_pod(requester(patch), "n1")


GPU_MAP = {"data": {"n1": json.dumps({"GPU-a": 0, "GPU-b": 1}), "n2": json.dumps({"GPU-c": 0})}}


@pytest.mark.parametrize(
    ("gpu_map", "gpus", "outcome"),
    [
        pytest.param(GPU_MAP, ["GPU-b", "GPU-a"], [1, 0], id="spi-order"),
        pytest.param(None, ["GPU-a"], "GPU map ConfigMap gpu-map is not available", id="no-map"),
        pytest.param(GPU_MAP, ["GPU-z"], "UUID GPU-z is not known", id="unknown"),
        pytest.param(GPU_MAP, ["GPU-c"], "UUID GPU-c is on Node n2, not n1", id="other-node"),
    ],
)
def test_gpu_indices(gpu_map: dict[str, Any] | None, gpus: list[str], outcome: list[int] | str) -> None:
    if isinstance(outcome, str):
        with pytest.raises(ValueError, match=outcome):
            direct_mode.gpu_indices(gpu_map, "n1", gpus)
    else:
        assert direct_mode.gpu_indices(gpu_map, "n1", gpus) == outcome


def test_provider_body_is_pinned_bound_and_gpu_free() -> None:
    nominal = direct_mode.nominal_pod(requester(PATCH), "n1")
    body = direct_mode.provider_body(nominal, requester=requester(PATCH), node="n1", indices=[1], gpus=["GPU-b"])
    meta, spec = body["metadata"], body["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "n1"}
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "0"
    assert meta["generateName"] == "r1-dual-"
    assert meta["finalizers"] == [P + "provider"]
    assert meta["annotations"][P + "requester"] == "u-1 r1"
    assert meta["annotations"][P + "accelerators"] == "GPU-b"
    assert len(meta["annotations"][P + "nominal"]) == 43
    assert meta["annotations"][P + "config-key"].startswith("C")
    assert meta["labels"][P + "dual"] == "r1"
    assert meta["labels"][P + "sleeping"] == "false"
    again = direct_mode.provider_body(nominal, requester=requester(PATCH), node="n1", indices=[1], gpus=["GPU-b"])
    assert again["metadata"]["annotations"][P + "nominal"] == meta["annotations"][P + "nominal"]
    other_gpu = direct_mode.provider_body(nominal, requester=requester(PATCH), node="n1", indices=[0], gpus=["GPU-a"])
    assert other_gpu["metadata"]["annotations"][P + "nominal"] != meta["annotations"][P + "nominal"]


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param(8000, 8000, id="int"),
        pytest.param("8000", 8000, id="digits"),
        pytest.param("http", 80, id="http"),
        pytest.param("HTTP", 80, id="HTTP"),
    ],
)
def test_server_port(port: object, expected: int) -> None:
    pod = {"spec": {"containers": [{"name": "inference-server", "readinessProbe": {"httpGet": {"port": port}}}]}}
    assert direct_mode.server_port(pod) == expected


def test_server_port_names_are_refused() -> None:
    pod = {"spec": {"containers": [{"name": "inference-server", "readinessProbe": {"httpGet": {"port": "metrics"}}}]}}
    with pytest.raises(ValueError, match="not a number"):
        direct_mode.server_port(pod)


def sleeper(name: str, index: int, stamp: str, *, bound: bool = False, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{"manager": "dual-pods-controller", "time": stamp}],
        "annotations": {P + "nominal": "h"},
    }
    if bound:
        meta["annotations"][P + "requester"] = "u r"
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    env = [{"name": "CUDA_VISIBLE_DEVICES", "value": str(index)}]
    return {"metadata": meta, "spec": {"containers": [{"name": "inference-server", "env": env}]}}


@pytest.mark.parametrize(
    ("providers", "indices", "limit", "victims"),
    [
        pytest.param([sleeper("a", 0, "T1")], [0], 1, [], id="at-limit-keeps"),
        pytest.param([sleeper("a", 0, "T2"), sleeper("b", 0, "T1")], [0], 1, ["b"], id="evicts-lru"),
        pytest.param(
            [sleeper("a", 0, "T3"), sleeper("b", 0, "T1"), sleeper("c", 0, "T2")],
            [0],
            1,
            ["b", "c"],
            id="evicts-excess",
        ),
        pytest.param([sleeper("a", 0, "T2"), sleeper("b", 1, "T1")], [0], 0, ["a"], id="only-requested-gpus"),
        pytest.param(
            [sleeper("a", 0, "T2"), sleeper("b", 0, "T1", bound=True)], [0], 0, ["a"], id="bound-never-evicted"
        ),
        pytest.param(
            [sleeper("a", 0, "T2"), sleeper("b", 0, "T1", deleting=True)], [0], 1, [], id="deleting-not-counted"
        ),
        pytest.param([sleeper("b", 0, "T1"), sleeper("a", 0, "T1")], [0], 1, ["a"], id="tie-by-name"),
    ],
)
def test_sleepers_to_evict(providers: list[dict[str, Any]], indices: list[int], limit: int, victims: list[str]) -> None:
    chosen = direct_mode.sleepers_to_evict(providers, indices, limit)
    assert sorted(p["metadata"]["name"] for p in chosen) == sorted(victims)


def test_recency_refreshes_on_every_controller_write() -> None:
    old = sleeper("a", 0, "2026-01-01T00:00:05Z")
    old["metadata"]["managedFields"].append({"manager": "dual-pods-controller", "time": "2026-01-03T00:00:00Z"})
    assert direct_mode.last_used(old)[0] == "2026-01-03T00:00:00Z"
