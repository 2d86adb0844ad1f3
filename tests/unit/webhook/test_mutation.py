"""The pure mutation: raw Pod → JSON Patch operations, for every mode, denial and warning."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from crds import keys
from webhook import cluster_facts, mutation, requester_agent

ISC = keys.INFERENCE_SERVER_CONFIG_ANNOTATION
NO_FACTS = cluster_facts.Facts()


def _agent(spi_port: int = 8081, gpus: str = "2") -> dict[str, Any]:
    return {
        "name": "inference-server",
        "image": "registry.test/fma:1",
        "imagePullPolicy": "IfNotPresent",
        "command": ["fma-requester"],
        "env": [
            {"name": "PROBES_PORT", "value": "8080"},
            {"name": "SPI_PORT", "value": str(spi_port)},
            {
                "name": "FMA_REQUESTER_HOST",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
            },
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 1,
        },
        "resources": {
            "limits": {"memory": "128Mi", "nvidia.com/gpu": gpus},
            "requests": {"cpu": "50m", "memory": "128Mi", "nvidia.com/gpu": gpus},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def test_launcher_mode_patch_in_full(pod_raw, options, apply_patch) -> None:
    pod = pod_raw({ISC: "llama-8b"}, labels={"app": "llm"})
    decision = mutation.mutate(pod, options, NO_FACTS)
    assert decision.allowed
    assert decision.mode == "launcher"
    assert list(decision.patch) == [
        {"op": "add", "path": "/metadata/annotations/dual-pods.llm-d.ai~1admin-port", "value": "8081"},
        {"op": "add", "path": "/metadata/annotations/dual-pods.llm-d.ai~1converted", "value": "v1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["dual-pods.llm-d.ai/requester"]},
        {"op": "replace", "path": "/spec/containers/0", "value": _agent()},
        {"op": "add", "path": "/spec/schedulerName", "value": "fma-scheduler"},
    ]
    result = apply_patch(pod, list(decision.patch))
    assert result["metadata"]["labels"] == {"app": "llm"}
    assert result["spec"]["volumes"] == pod["spec"]["volumes"]


def test_launcher_mode_keeps_a_given_admin_port_and_other_finalizers(pod_raw, options, apply_patch) -> None:
    pod = pod_raw({ISC: "llama-8b", keys.ADMIN_PORT_ANNOTATION: "9000"})
    pod["metadata"]["finalizers"] = ["example.com/keep"]
    decision = mutation.mutate(pod, options, NO_FACTS)
    result = apply_patch(pod, list(decision.patch))
    assert result["metadata"]["annotations"] == {
        ISC: "llama-8b",
        keys.ADMIN_PORT_ANNOTATION: "9000",
        keys.CONVERTED_ANNOTATION: "v1",
    }
    assert result["metadata"]["finalizers"] == ["example.com/keep", keys.REQUESTER_FINALIZER]
    assert result["spec"]["containers"][0] == _agent(spi_port=9000)


def test_gpu_only_in_limits_is_copied_to_limits_only(pod_raw, options, apply_patch) -> None:
    pod = pod_raw({ISC: "x"})
    del pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]
    result = apply_patch(pod, list(mutation.mutate(pod, options, NO_FACTS).patch))
    assert result["spec"]["containers"][0]["resources"] == {
        "limits": {"memory": "128Mi", "nvidia.com/gpu": "2"},
        "requests": {"cpu": "50m", "memory": "128Mi"},
    }


def test_sidecars_and_their_position_are_kept(pod_raw, options, apply_patch) -> None:
    sidecar = {"name": "proxy", "image": "envoy"}
    pod = pod_raw({ISC: "x"})
    pod["spec"]["containers"].insert(0, sidecar)
    result = apply_patch(pod, list(mutation.mutate(pod, options, NO_FACTS).patch))
    assert result["spec"]["containers"][0] == sidecar
    assert result["spec"]["containers"][1]["image"] == "registry.test/fma:1"


@pytest.mark.parametrize(
    ("scheduler", "configured", "expected", "warns"),
    [
        pytest.param(None, "fma-scheduler", "fma-scheduler", False, id="absent-is-set"),
        pytest.param("default-scheduler", "fma-scheduler", "fma-scheduler", False, id="default-is-replaced"),
        pytest.param("custom", "fma-scheduler", "custom", True, id="custom-is-kept-with-warning"),
        pytest.param("default-scheduler", "", "default-scheduler", False, id="not-configured"),
    ],
)
def test_scheduler_name(pod_raw, agent_spec, apply_patch, scheduler, configured, expected, warns) -> None:
    pod = pod_raw({ISC: "x"}, scheduler_name=scheduler)
    decision = mutation.mutate(pod, mutation.Options(agent=agent_spec, scheduler_name=configured), NO_FACTS)
    result = apply_patch(pod, list(decision.patch))
    assert result["spec"].get("schedulerName") == expected
    assert any("schedulerName" in w for w in decision.warnings) is warns


def test_direct_mode_derives_the_server_patch(pod_raw, options, apply_patch) -> None:
    pod = pod_raw(
        {keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "inference-pool"},
        labels={"app": "llm", "pod-template-hash": "abc", "inference-pool": "pool-a"},
    )
    server = copy.deepcopy(pod["spec"]["containers"][0])
    token_mount = {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    pod["spec"]["containers"][0]["volumeMounts"].append(token_mount)
    decision = mutation.mutate(pod, options, NO_FACTS)
    assert decision.allowed, decision.message
    assert decision.mode == "direct"
    result = apply_patch(pod, list(decision.patch))
    assert result["metadata"]["labels"] == {"app": "llm", "pod-template-hash": "abc"}
    assert result["spec"]["containers"][0] == _agent()
    annotations = result["metadata"]["annotations"]
    assert set(annotations) == {
        keys.ACTUATION_ANNOTATION,
        keys.PROVIDER_LABELS_ANNOTATION,
        keys.SERVER_PATCH_ANNOTATION,
        keys.ADMIN_PORT_ANNOTATION,
        keys.CONVERTED_ANNOTATION,
    }
    expected_container = {
        **server,
        "args": ["meta-llama/Llama-3.1-8B", "--port", "8000", "--enable-sleep-mode"],
        "env": [{"name": "HF_HOME", "value": "/models"}, {"name": "VLLM_SERVER_DEV_MODE", "value": "1"}],
        "resources": {"limits": {"cpu": "4", "memory": "32Gi"}, "requests": {"cpu": "2", "memory": "16Gi"}},
    }
    assert json.loads(annotations[keys.SERVER_PATCH_ANNOTATION]) == {
        "metadata": {"labels": {"app": None, "pod-template-hash": None, "inference-pool": "pool-a"}},
        "spec": {
            "containers": [expected_container],
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}],
            "schedulerName": "default-scheduler",
        },
    }


def test_direct_mode_nulls_what_only_the_agent_has(pod_raw, options) -> None:
    server = {
        "name": "inference-server",
        "image": "vllm",
        "args": ["--enable-sleep-mode"],
        "env": [{"name": "VLLM_SERVER_DEV_MODE", "value": "0"}],
        "resources": {"limits": {"nvidia.com/gpu": 1}},
    }
    pod = pod_raw({keys.ACTUATION_ANNOTATION: "direct"}, server=server, volumes=[], scheduler_name=None)
    decision = mutation.mutate(pod, options, NO_FACTS)
    patch = json.loads(next(o["value"] for o in decision.patch if o["path"].endswith("server-patch")))
    container = patch["spec"]["containers"][0]
    assert container["args"] == ["--enable-sleep-mode"]
    assert container["env"] == [{"name": "VLLM_SERVER_DEV_MODE", "value": "1"}]
    for field in ("command", "readinessProbe", "imagePullPolicy", "terminationMessagePath"):
        assert container[field] is None, field
    assert container["resources"] == {
        "limits": {"memory": None},
        "requests": {"cpu": None, "memory": None},
    }
    assert patch["spec"] == {"containers": [container], "schedulerName": None}
    assert "metadata" not in patch


def test_direct_mode_shell_form_gets_the_flag_in_the_script(pod_raw, options) -> None:
    server = {
        "name": "inference-server",
        "image": "vllm",
        "command": ["/bin/sh", "-c"],
        "args": ["exec vllm serve m"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    decision = mutation.mutate(pod_raw({keys.ACTUATION_ANNOTATION: "direct"}, server=server), options, NO_FACTS)
    text = next(o["value"] for o in decision.patch if o["path"].endswith("server-patch"))
    assert json.loads(text)["spec"]["containers"][0]["args"] == ["exec vllm serve m --enable-sleep-mode"]


def test_direct_mode_with_a_written_patch_keeps_it(pod_raw, options, apply_patch) -> None:
    written = "spec:\n  nodeSelector:\n    kubernetes.io/hostname: {{ .NodeName }}\n"
    pod = pod_raw({keys.ACTUATION_ANNOTATION: "direct", keys.SERVER_PATCH_ANNOTATION: written})
    decision = mutation.mutate(pod, options, NO_FACTS)
    result = apply_patch(pod, list(decision.patch))
    assert result["metadata"]["annotations"][keys.SERVER_PATCH_ANNOTATION] == written
    assert result["spec"]["containers"][0] == _agent()


def test_upstream_style_requester_keeps_its_container(pod_raw, options, apply_patch) -> None:
    pod = pod_raw({keys.SERVER_PATCH_ANNOTATION: '{"spec":{}}'})
    decision = mutation.mutate(pod, options, NO_FACTS)
    assert decision.mode == "requester"
    result = apply_patch(pod, list(decision.patch))
    assert result["spec"]["containers"] == pod["spec"]["containers"]
    assert result["metadata"]["finalizers"] == [keys.REQUESTER_FINALIZER]
    assert result["metadata"]["annotations"][keys.CONVERTED_ANNOTATION] == "v1"


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param(None, id="no-annotations"),
        pytest.param({"example.com/x": "y"}, id="foreign-annotations"),
        pytest.param({keys.PROVIDER_LABELS_ANNOTATION: "a"}, id="provider-labels-alone"),
        pytest.param({ISC: "x", keys.CONVERTED_ANNOTATION: "v1"}, id="already-converted"),
    ],
)
def test_pods_left_alone(pod_raw, options, annotations) -> None:
    decision = mutation.mutate(pod_raw(annotations), options, NO_FACTS)
    assert decision.allowed
    assert decision.patch == ()
    assert decision.outcome == "unchanged"


@pytest.mark.parametrize(
    ("annotations", "changes", "message"),
    [
        pytest.param(
            {ISC: "x"}, {"container_name": "server"}, "needs a container named 'inference-server'", id="no-container"
        ),
        pytest.param(
            {ISC: "x", keys.SERVER_PATCH_ANNOTATION: "{}"}, {}, "exclude each other", id="isc-and-server-patch"
        ),
        pytest.param({ISC: "x", keys.ACTUATION_ANNOTATION: "direct"}, {}, "exclude each other", id="isc-and-direct"),
        pytest.param(
            {keys.SERVER_PATCH_ANNOTATION: "spec: [unclosed"}, {}, "not valid YAML or JSON", id="unparsable-patch"
        ),
        pytest.param({keys.SERVER_PATCH_ANNOTATION: "- a\n- b"}, {}, "must be a mapping", id="patch-not-a-mapping"),
        pytest.param(
            {keys.SERVER_PATCH_ANNOTATION: "x: {{.Values}}"}, {}, "unsupported template action", id="unknown-action"
        ),
        pytest.param({ISC: "x"}, {"gpus": None}, "must request 'nvidia.com/gpu'", id="gpu-missing"),
        pytest.param({ISC: "x"}, {"gpus": "0"}, "positive whole number", id="gpu-zero"),
        pytest.param({ISC: "x"}, {"gpus": "500m"}, "positive whole number", id="gpu-fraction"),
        pytest.param({ISC: "Bad_Name"}, {}, "not a valid InferenceServerConfig name", id="isc-not-dns"),
        pytest.param({ISC: ""}, {}, "must name an InferenceServerConfig", id="isc-empty"),
        pytest.param({ISC: "x", keys.ADMIN_PORT_ANNOTATION: "http"}, {}, "decimal number", id="admin-port-name"),
        pytest.param({ISC: "x", keys.ADMIN_PORT_ANNOTATION: "8080"}, {}, "collides", id="admin-port-is-probe-port"),
        pytest.param({keys.ACTUATION_ANNOTATION: "indirect"}, {}, "must be 'direct'", id="unknown-actuation"),
        pytest.param(
            {keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "bad key!"},
            {},
            "provider-labels",
            id="bad-provider-label-key",
        ),
    ],
)
def test_denials(pod_raw, options, annotations, changes, message) -> None:
    decision = mutation.mutate(pod_raw(annotations, **changes), options, NO_FACTS)
    assert not decision.allowed
    assert decision.outcome == "denied"
    assert message in decision.message
    assert decision.patch == ()


def test_malformed_pod_is_denied_naming_the_field(options) -> None:
    decision = mutation.mutate({"metadata": {"annotations": {ISC: 3}}, "spec": {}}, options, NO_FACTS)
    assert not decision.allowed
    assert "metadata.annotations" in decision.message
    assert "spec.containers" in decision.message


def test_missing_isc_warns(pod_raw, options) -> None:
    decision = mutation.mutate(pod_raw({ISC: "later"}), options, cluster_facts.Facts(isc_exists=False))
    assert decision.allowed
    assert decision.warnings == ("InferenceServerConfig 'later' does not exist (yet) in this namespace",)
    assert mutation.mutate(pod_raw({ISC: "later"}), options, cluster_facts.Facts(isc_exists=True)).warnings == ()


def test_provider_label_in_the_owner_selector_is_denied(pod_raw, options) -> None:
    pod = pod_raw(
        {keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "app, pool"},
        labels={"app": "llm", "pool": "a"},
    )
    facts = cluster_facts.Facts(owner="ReplicaSet/llm-abc", owner_selector_keys=frozenset({"app", "pod-template-hash"}))
    decision = mutation.mutate(pod, options, facts)
    assert not decision.allowed
    assert "'app'" in decision.message
    assert "ReplicaSet/llm-abc" in decision.message
    assert "without end" in decision.message


def test_provider_label_not_on_the_pod_warns(pod_raw, options) -> None:
    pod = pod_raw({keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "pool"}, labels={"a": "b"})
    decision = mutation.mutate(pod, options, NO_FACTS)
    assert decision.allowed
    assert any("no such label" in w for w in decision.warnings)


def test_template_braces_in_the_server_container_are_denied(pod_raw, options) -> None:
    server = {
        "name": "inference-server",
        "image": "x",
        "args": ["{{oops}}"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    decision = mutation.mutate(pod_raw({keys.ACTUATION_ANNOTATION: "direct"}, server=server), options, NO_FACTS)
    assert not decision.allowed
    assert "'{{'" in decision.message


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({ISC: "x"}, id="launcher"),
        pytest.param({keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "pool"}, id="direct"),
        pytest.param({keys.SERVER_PATCH_ANNOTATION: "{}"}, id="requester"),
    ],
)
def test_second_pass_changes_nothing_and_patch_is_idempotent(pod_raw, options, apply_patch, annotations) -> None:
    pod = pod_raw(annotations, labels={"pool": "p", "app": "a"})
    ops = list(mutation.mutate(pod, options, NO_FACTS).patch)
    once = apply_patch(pod, ops)
    assert apply_patch(once, ops) == once
    again = mutation.mutate(once, options, NO_FACTS)
    assert again.allowed
    assert again.patch == ()


def test_agent_container_builder_copies_gpu_quantities_verbatim() -> None:
    spec = requester_agent.AgentSpec(image="i", command=("a", "b"), cpu="1", memory="1Gi", probes_port=9090)
    built = requester_agent.container(spec, 9091, {"limits": {"nvidia.com/gpu": 4}})
    assert built["resources"] == {
        "limits": {"memory": "1Gi", "nvidia.com/gpu": 4},
        "requests": {"cpu": "1", "memory": "1Gi"},
    }
    assert built["env"] == [
        {"name": "PROBES_PORT", "value": "9090"},
        {"name": "SPI_PORT", "value": "9091"},
        {"name": "FMA_REQUESTER_HOST", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
    ]
    assert built["readinessProbe"]["httpGet"]["port"] == 9090
