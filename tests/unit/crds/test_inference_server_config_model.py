"""InferenceServerConfig: JSON names, validation rules and round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import crds
from crds import decoding, inference_server_config

_VALID: dict[str, Any] = {
    "apiVersion": "fma.llm-d.ai/v1alpha1",
    "kind": "InferenceServerConfig",
    "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 2, "managedFields": [{"manager": "x"}]},
    "spec": {
        "launcherConfigName": "lc",
        "modelServerConfig": {
            "port": 8005,
            "options": "--model m",
            "env_vars": {"VLLM_SERVER_DEV_MODE": "1"},
            "labels": {"pool": "p"},
            "annotations": {"example.com/a": "b"},
        },
    },
    "status": {"observedGeneration": 2, "errors": []},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(_VALID)
    node = document
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[part]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return document


_DELETE = object()


def test_json_names_and_python_names() -> None:
    isc = decoding.decode(inference_server_config.InferenceServerConfig, _VALID)
    msc = isc.spec.model_server_config
    assert (msc.port, msc.options, msc.env_vars) == (8005, "--model m", {"VLLM_SERVER_DEV_MODE": "1"})
    assert isc.spec.launcher_config_name == "lc"
    assert isc.metadata.ref() == "ns/s"
    raw = isc.to_raw()
    assert "env_vars" in raw["spec"]["modelServerConfig"]
    assert "envVars" not in raw["spec"]["modelServerConfig"]


def test_round_trip_keeps_foreign_metadata() -> None:
    isc = decoding.decode(inference_server_config.InferenceServerConfig, _VALID)
    again = decoding.decode(inference_server_config.InferenceServerConfig, isc.to_raw())
    assert again == isc
    assert again.to_raw()["metadata"]["managedFields"] == [{"manager": "x"}]


def test_python_names_construct_too() -> None:
    msc = inference_server_config.ModelServerConfig(port=1, env_vars={"A": "1"})
    spec = inference_server_config.InferenceServerConfigSpec(model_server_config=msc, launcher_config_name="lc")
    assert spec.to_raw() == {"modelServerConfig": {"port": 1, "env_vars": {"A": "1"}}, "launcherConfigName": "lc"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("spec.modelServerConfig.port", 1, id="port-1"),
        pytest.param("spec.modelServerConfig.port", 65535, id="port-65535"),
        pytest.param("spec.modelServerConfig.options", _DELETE, id="no-options"),
        pytest.param("spec.modelServerConfig.labels", _DELETE, id="no-labels"),
        pytest.param("status", _DELETE, id="no-status"),
        pytest.param("status", {"errors": None}, id="status-errors-null"),
    ],
)
def test_valid_variants(path: str, value: Any) -> None:
    decoding.decode(inference_server_config.InferenceServerConfig, _with(path, value))


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        pytest.param("spec.modelServerConfig.port", 0, "spec.modelServerConfig.port", id="port-0"),
        pytest.param("spec.modelServerConfig.port", 65536, "spec.modelServerConfig.port", id="port-65536"),
        pytest.param("spec.modelServerConfig.port", 70000, "spec.modelServerConfig.port", id="port-70000"),
        pytest.param("spec.modelServerConfig.port", _DELETE, "spec.modelServerConfig.port", id="port-missing"),
        pytest.param("spec.modelServerConfig.port", "8000x", "spec.modelServerConfig.port", id="port-string"),
        pytest.param("spec.launcherConfigName", _DELETE, "spec.launcherConfigName", id="lc-missing"),
        pytest.param("spec.launcherConfigName", "", "spec.launcherConfigName", id="lc-empty"),
        pytest.param(
            "spec.modelServerConfig.envVars", {"A": "1"}, "spec.modelServerConfig.envVars", id="camelcase-env"
        ),
        pytest.param(
            "spec.modelServerConfig.labels",
            {"kubernetes.io/x": "v"},
            "spec.modelServerConfig.labels",
            id="reserved-label",
        ),
        pytest.param(
            "spec.modelServerConfig.labels", {"a": "b c"}, "spec.modelServerConfig.labels", id="bad-label-value"
        ),
        pytest.param(
            "spec.modelServerConfig.annotations",
            {"dual-pods.llm-d.ai/status": "x"},
            "spec.modelServerConfig.annotations",
            id="reserved-annotation",
        ),
        pytest.param(
            "spec.modelServerConfig.env_vars", {"A": 1}, "spec.modelServerConfig.env_vars.A", id="env-not-string"
        ),
        pytest.param("spec.modelServerConfig", _DELETE, "spec.modelServerConfig", id="msc-missing"),
        pytest.param(
            "spec.modelServerConfig.options", "--x \x7f", "spec.modelServerConfig", id="not-marshallable-by-upstream"
        ),
        pytest.param("kind", "LauncherConfig", "kind", id="wrong-kind"),
        pytest.param("apiVersion", "fma.llm-d.ai/v1", "apiVersion", id="wrong-version"),
        pytest.param("status", {"observedGeneration": -1}, "status.observedGeneration", id="negative-generation"),
    ],
)
def test_invalid_variants_name_the_field(path: str, value: Any, where: str) -> None:
    with pytest.raises(crds.InvalidObject) as caught:
        decoding.decode(inference_server_config.InferenceServerConfig, _with(path, value))
    assert where in [problem_path for problem_path, _ in caught.value.problems]
    assert "ns/s" in str(caught.value)


def test_routing_returns_the_committed_metadata() -> None:
    isc = decoding.decode(inference_server_config.InferenceServerConfig, _VALID)
    routing = isc.spec.model_server_config.routing()
    assert routing.labels == {"pool": "p"}
    assert routing.annotations == {"example.com/a": "b"}
