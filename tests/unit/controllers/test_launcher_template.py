"""Launcher Pod template specialisation: tables of inputs and the Pods they give.

See docs/populator.md, "Template specialisation".
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers import errors, launcher_template
from crds import hashes, keys, names


def lc(spec: dict[str, Any] | None = None, *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A raw LauncherConfig as the apiserver returns it."""
    pod_spec = spec if spec is not None else {"containers": [{"name": "inference-server", "image": "img"}]}
    template: dict[str, Any] = {"spec": pod_spec}
    if metadata is not None:
        template["metadata"] = metadata
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {"name": "lc1", "namespace": "ns1", "uid": "uid-1", "resourceVersion": "7", "generation": 3},
        "spec": {"maxInstances": 2, "podTemplate": template},
    }


def server(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "inference-server")


def env_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(server(pod).get("env") or [])


def test_metadata_of_the_launcher() -> None:
    pod = launcher_template.specialise(lc(metadata={"labels": {"team": "a"}, "annotations": {"note": "x"}}), "n1")
    meta = pod["metadata"]
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert "name" not in meta
    assert meta["generateName"] == "launcher-lc1-"
    assert meta["namespace"] == "ns1"
    assert meta["labels"] == {
        "team": "a",
        keys.COMPONENT_LABEL: "launcher",
        keys.LAUNCHER_CONFIG_NAME_LABEL: "lc1",
        keys.SLEEPING_LABEL: "true",
        keys.NODE_NAME_LABEL: "n1",
    }
    digest = launcher_template.template_hash(lc(metadata={"labels": {"team": "a"}, "annotations": {"note": "x"}}))
    assert meta["annotations"] == {
        "note": "x",
        keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION: digest,
        keys.LAUNCHER_CONFIG_HASH_ANNOTATION: launcher_template.config_hash(digest, "n1"),
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "LauncherConfig",
            "name": "lc1",
            "uid": "uid-1",
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n1"}


def test_template_labels_cannot_override_the_launcher_labels() -> None:
    template_labels = {keys.COMPONENT_LABEL: "other", keys.SLEEPING_LABEL: "false", keys.NODE_NAME_LABEL: "zz"}
    pod = launcher_template.specialise(lc(metadata={"labels": template_labels}), "n1")
    labels = pod["metadata"]["labels"]
    assert labels[keys.COMPONENT_LABEL] == "launcher"
    assert labels[keys.SLEEPING_LABEL] == "true"
    assert labels[keys.NODE_NAME_LABEL] == "n1"


def test_existing_node_selector_entries_are_kept() -> None:
    spec = {"containers": [{"name": "inference-server"}], "nodeSelector": {"gpu": "a100"}}
    pod = launcher_template.specialise(lc(spec), "n2")
    assert pod["spec"]["nodeSelector"] == {"gpu": "a100", "kubernetes.io/hostname": "n2"}


def test_hashes_match_the_contract_formulas() -> None:
    raw = lc()
    independent = launcher_template.node_independent_pod(raw)
    digest = launcher_template.template_hash(raw)
    assert digest == hashes.launcher_template_hash(independent)
    assert len(digest) == 43
    assert "=" not in digest
    assert launcher_template.config_hash(digest, "n1") == hashes.launcher_config_hash(digest, "n1")
    # the node-independent Pod is exactly steps 1-3: no hash, env, probes or node
    assert keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION not in independent["metadata"]["annotations"]
    assert keys.NODE_NAME_LABEL not in independent["metadata"]["labels"]
    assert "env" not in independent["spec"]["containers"][0]
    assert "nodeSelector" not in independent["spec"]


BASE = {"containers": [{"name": "inference-server", "image": "img"}]}


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        pytest.param(BASE, copy.deepcopy(BASE), True, id="equal-templates"),
        pytest.param(BASE, {"containers": [{"name": "inference-server", "image": "img2"}]}, False, id="image"),
        pytest.param(
            {"containers": [{"name": "inference-server", "env": [{"name": "A", "value": "1"}]}]},
            {"containers": [{"name": "inference-server", "env": [{"name": "PYTHONPATH", "value": "/app"}]}]},
            False,
            id="env-is-part-of-the-template",
        ),
        pytest.param(
            {
                "containers": [{"name": "inference-server"}],
                "volumes": [{"name": "b", "emptyDir": {}}, {"name": "a", "emptyDir": {}}],
            },
            {
                "containers": [{"name": "inference-server"}],
                "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
            },
            True,
            id="volume-order-is-canonical",
        ),
        pytest.param(
            {"containers": [{"name": "inference-server"}, {"name": "side"}]},
            {"containers": [{"name": "side"}, {"name": "inference-server"}]},
            False,
            id="container-order-is-kept",
        ),
        pytest.param(
            {"containers": [{"name": "inference-server", "env": [{"name": "A"}, {"name": "B"}]}]},
            {"containers": [{"name": "inference-server", "env": [{"name": "B"}, {"name": "A"}]}]},
            False,
            id="env-order-is-kept",
        ),
        pytest.param(
            {"containers": [{"name": "inference-server", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
            {"containers": [{"name": "inference-server", "resources": {"limits": {"nvidia.com/gpu": "0"}}}]},
            False,
            id="gpu-zeroing-comes-after-the-hash",
        ),
    ],
)
def test_template_hash_identity(left: dict[str, Any], right: dict[str, Any], same: bool) -> None:
    assert (launcher_template.template_hash(lc(left)) == launcher_template.template_hash(lc(right))) is same


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda raw: raw["metadata"].update(uid="uid-2"), False, id="uid-is-included"),
        pytest.param(lambda raw: raw["metadata"].update(name="lc2"), False, id="name-is-included"),
        pytest.param(lambda raw: raw["metadata"].update(resourceVersion="99"), True, id="resource-version-ignored"),
        pytest.param(lambda raw: raw["metadata"].update(generation=9), True, id="generation-ignored"),
        pytest.param(lambda raw: raw["spec"].update(maxInstances=5), True, id="max-instances-ignored"),
        pytest.param(lambda raw: raw.update(status={"errors": ["x"]}), True, id="status-ignored"),
    ],
)
def test_template_hash_depends_on_the_pod_only(change: Any, same: bool) -> None:
    raw = lc()
    changed = copy.deepcopy(raw)
    change(changed)
    assert (launcher_template.template_hash(raw) == launcher_template.template_hash(changed)) is same


def test_config_hash_differs_per_node() -> None:
    digest = launcher_template.template_hash(lc())
    assert launcher_template.config_hash(digest, "n1") != launcher_template.config_hash(digest, "n2")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            None,
            [
                {"name": "PYTHONPATH", "value": "/app"},
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
                {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
            ],
            id="appended-in-order-no-downward-api-identity",
        ),
        pytest.param(
            [
                {"name": "A", "value": "a"},
                {"name": "VLLM_SERVER_DEV_MODE", "value": "0"},
                {"name": "PYTHONPATH", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                {"name": "NAMESPACE", "value": "mine"},
                {"name": "Z", "value": "z"},
            ],
            [
                {"name": "A", "value": "a"},
                {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
                {"name": "PYTHONPATH", "value": "/app"},
                {"name": "NAMESPACE", "value": "mine"},
                {"name": "Z", "value": "z"},
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
            ],
            id="replaced-in-place-user-namespace-kept",
        ),
    ],
)
def test_env_upserts(env: list[dict[str, Any]] | None, expected: list[dict[str, Any]]) -> None:
    container: dict[str, Any] = {"name": "inference-server"}
    if env is not None:
        container["env"] = env
    pod = launcher_template.specialise(lc({"containers": [container]}), "n1")
    assert [e for e in env_of(pod) if e["name"] != launcher_template.MAX_INSTANCES_ENV] == expected


def test_max_instances_reaches_the_launcher_outside_the_hash() -> None:
    raw = lc()
    pod = launcher_template.specialise(raw, "n1")
    assert {"name": "FMA_LAUNCHER_MAX_INSTANCES", "value": "2"} in env_of(pod)
    raw["spec"]["maxInstances"] = 5
    changed = launcher_template.specialise(raw, "n1")
    assert {"name": "FMA_LAUNCHER_MAX_INSTANCES", "value": "5"} in env_of(changed)
    assert changed["metadata"]["annotations"] == pod["metadata"]["annotations"]


def test_auth_token_env_from_secret() -> None:
    pod = launcher_template.specialise(lc(), "n1", auth_token_secret="launcher-auth")
    assert env_of(pod)[-1] == {
        "name": "FMA_LAUNCHER_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "launcher-auth", "key": "token"}},
    }
    without = launcher_template.specialise(lc(), "n1")
    assert all(entry["name"] != names.LAUNCHER_TOKEN_ENV for entry in env_of(without))
    # auth is node- and template-hash-neutral
    assert pod["metadata"]["annotations"] == without["metadata"]["annotations"]


def test_probes() -> None:
    spec = {
        "containers": [
            {"name": "inference-server", "readinessProbe": {"exec": {"command": ["true"]}}},
            {"name": "other", "readinessProbe": {"exec": {"command": ["true"]}}},
        ]
    }
    pod = launcher_template.specialise(lc(spec), "n1")
    assert server(pod)["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": 8001},
        "initialDelaySeconds": 10,
        "periodSeconds": 20,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
    }
    assert server(pod)["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": 8001},  # open with launcher auth on (issue 15)
        "initialDelaySeconds": 2,
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    assert pod["spec"]["containers"][1]["readinessProbe"] == {"exec": {"command": ["true"]}}


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(None, None, id="no-resources"),
        pytest.param({}, {}, id="empty-resources"),
        pytest.param(
            {"limits": {"nvidia.com/gpu": "2", "cpu": "1"}},
            {"limits": {"nvidia.com/gpu": "0", "cpu": "1"}},
            id="limits-only",
        ),
        pytest.param(
            {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
            {"limits": {"cpu": "1", "nvidia.com/gpu": "0"}, "requests": {"memory": "1Gi", "nvidia.com/gpu": "0"}},
            id="both-maps-get-zero",
        ),
    ],
)
def test_gpu_zeroing(resources: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    container: dict[str, Any] = {"name": "inference-server"}
    if resources is not None:
        container["resources"] = resources
    assert server(launcher_template.specialise(lc({"containers": [container]}), "n1")).get("resources") == expected


@pytest.mark.parametrize(
    ("overhead", "expected"),
    [
        pytest.param({"nvidia.com/gpu": "1", "cpu": "100m"}, {"cpu": "100m"}, id="gpu-removed"),
        pytest.param({"nvidia.com/gpu": "1"}, None, id="emptied-overhead-dropped"),
        pytest.param({"cpu": "100m"}, {"cpu": "100m"}, id="no-gpu"),
    ],
)
def test_overhead(overhead: dict[str, Any], expected: dict[str, Any] | None) -> None:
    spec = {"containers": [{"name": "inference-server"}], "overhead": overhead}
    assert launcher_template.specialise(lc(spec), "n1")["spec"].get("overhead") == expected


def test_canonical_sorting() -> None:
    spec = {
        "containers": [
            {
                "name": "inference-server",
                "volumeMounts": [
                    {"name": "b", "mountPath": "/x"},
                    {"name": "a", "mountPath": "/z"},
                    {"name": "a", "mountPath": "/y"},
                ],
                "ports": [
                    {"name": "http", "containerPort": 9000},
                    {"name": "http", "containerPort": 8000, "protocol": "UDP"},
                    {"name": "http", "containerPort": 8000, "protocol": "TCP"},
                    {"containerPort": 1},
                ],
                "envFrom": [{"prefix": "B_", "configMapRef": {"name": "x"}}, {"configMapRef": {"name": "y"}}],
                "env": [{"name": "Z", "value": "1"}, {"name": "A", "value": "2"}],
            }
        ],
        "initContainers": [{"name": "init", "volumeMounts": [{"name": "z", "mountPath": "/"}, {"name": "y"}]}],
        "volumes": [{"name": "z"}, {"name": "a"}],
        "tolerations": [{"key": "b", "operator": "Exists"}, {"key": "a", "operator": "Equal", "value": "v"}],
        "imagePullSecrets": [{"name": "s2"}, {"name": "s1"}],
    }
    pod = launcher_template.specialise(lc(spec), "n1")["spec"]
    container = pod["containers"][0]
    assert [(m["name"], m["mountPath"]) for m in container["volumeMounts"]] == [("a", "/y"), ("a", "/z"), ("b", "/x")]
    assert [(p.get("name"), p["containerPort"], p.get("protocol")) for p in container["ports"]] == [
        (None, 1, None),
        ("http", 8000, "TCP"),
        ("http", 8000, "UDP"),
        ("http", 9000, None),
    ]
    assert [e.get("prefix") for e in container["envFrom"]] == [None, "B_"]
    assert [e["name"] for e in container["env"]][:2] == ["Z", "A"]
    assert [m["name"] for m in pod["initContainers"][0]["volumeMounts"]] == ["y", "z"]
    assert [v["name"] for v in pod["volumes"]] == ["a", "z"]
    assert [t["key"] for t in pod["tolerations"]] == ["a", "b"]
    assert [s["name"] for s in pod["imagePullSecrets"]] == ["s1", "s2"]


def test_no_sidecar_is_added() -> None:
    pod = launcher_template.specialise(lc(), "n1")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["inference-server"]
    assert names.NOTIFIER_CONTAINER not in {c["name"] for c in pod["spec"]["containers"]}


def test_input_is_not_modified() -> None:
    raw = lc(
        {
            "containers": [{"name": "inference-server", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            "volumes": [{"name": "b"}, {"name": "a"}],
        },
        metadata={"labels": {"x": "y"}},
    )
    before = copy.deepcopy(raw)
    launcher_template.specialise(raw, "n1")
    assert raw == before


def test_identical_for_every_caller() -> None:
    assert launcher_template.specialise(lc(), "n1") == launcher_template.specialise(copy.deepcopy(lc()), "n1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"containers": [{"name": "vllm"}]}, 'container "inference-server" not found', id="no-server"),
        pytest.param({"containers": []}, 'container "inference-server" not found', id="no-containers"),
        pytest.param({"containers": "x"}, "containers", id="unparsable"),
    ],
)
def test_malformed_launcher_config(spec: dict[str, Any], message: str) -> None:
    raw = lc(spec)
    with pytest.raises(launcher_template.MalformedLauncherConfig) as caught:
        launcher_template.specialise(raw, "n1")
    assert isinstance(caught.value, errors.UserError)
    assert message in str(caught.value)
    assert launcher_template.malformation(raw) is not None
    with pytest.raises(launcher_template.MalformedLauncherConfig):
        launcher_template.template_hash(raw)


def test_missing_container_message_is_exact() -> None:
    message = launcher_template.malformation(lc({"containers": [{"name": "x"}]}))
    assert message == 'container "inference-server" not found'
    assert launcher_template.malformation(lc()) is None


@pytest.mark.parametrize(
    ("annotations", "bound"),
    [
        pytest.param(None, False, id="none"),
        pytest.param({keys.REQUESTER_ANNOTATION: "uid name"}, True, id="bound"),
        pytest.param({keys.REQUESTER_ANNOTATION: ""}, False, id="empty"),
        pytest.param({keys.REQUESTER_ANNOTATION: "a b c"}, False, id="garbage"),
    ],
)
def test_is_bound(annotations: dict[str, str] | None, bound: bool) -> None:
    assert launcher_template.is_bound({"metadata": {"annotations": annotations}}) is bound
