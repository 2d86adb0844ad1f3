"""The examples in docs/examples are valid for the models and consistent with each other."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from crds import decoding, inference_server_config, keys, launcher_config, launcher_population_policy, names

_EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "docs" / "examples"


def _load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((_EXAMPLES / name).read_text())
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize(
    ("name", "model"),
    [
        pytest.param("inferenceserverconfig.yaml", inference_server_config.InferenceServerConfig, id="isc"),
        pytest.param("launcherconfig.yaml", launcher_config.LauncherConfig, id="lcfg"),
        pytest.param("launcherpopulationpolicy.yaml", launcher_population_policy.LauncherPopulationPolicy, id="lpp"),
    ],
)
def test_example_is_valid_and_round_trips(name: str, model: type[decoding.CustomResource]) -> None:
    raw = _load(name)
    parsed = decoding.decode(model, raw)
    assert parsed.to_raw() == raw


def test_examples_refer_to_each_other() -> None:
    isc = decoding.decode(inference_server_config.InferenceServerConfig, _load("inferenceserverconfig.yaml"))
    lc = decoding.decode(launcher_config.LauncherConfig, _load("launcherconfig.yaml"))
    lpp = decoding.decode(launcher_population_policy.LauncherPopulationPolicy, _load("launcherpopulationpolicy.yaml"))
    assert isc.spec.launcher_config_name == lc.metadata.name
    assert [entry.launcher_config_name for entry in lpp.spec.count_for_launcher] == [lc.metadata.name]
    assert lc.malformation() is None
    assert isc.spec.model_server_config.routing().problems() == []


def test_requester_deployment_names_the_example_isc() -> None:
    deployment = _load("requesters-deployment.yaml")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"][keys.INFERENCE_SERVER_CONFIG_ANNOTATION] == "qwen3-small"
    (container,) = template["spec"]["containers"]
    assert container["name"] == names.INFERENCE_SERVER_CONTAINER
    assert container["resources"]["limits"][names.GPU_RESOURCE] == "1"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
