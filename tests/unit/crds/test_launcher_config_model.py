"""LauncherConfig: validation, malformation and round trips."""

from __future__ import annotations

from typing import Any

import pytest

import crds
from crds import decoding, launcher_config


def _lc(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "fma.llm-d.ai/v1alpha1", "kind": "LauncherConfig", "metadata": {"name": "l"}, "spec": spec}


_TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
    "spec": {"containers": [{"name": "inference-server", "image": "i", "futureField": 1}], "nodeName": ""},
}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"maxInstances": 1, "podTemplate": _TEMPLATE}, id="min-instances"),
        pytest.param({"maxInstances": 2**31 - 1, "podTemplate": _TEMPLATE}, id="max-int32"),
        pytest.param({"maxInstances": 2}, id="no-template"),
        pytest.param({"maxInstances": 2, "podTemplate": {"metadata": {"labels": {"x": "y"}}}}, id="metadata-only"),
    ],
)
def test_valid(spec: dict[str, Any]) -> None:
    lc = decoding.decode(launcher_config.LauncherConfig, _lc(spec))
    assert decoding.decode(launcher_config.LauncherConfig, lc.to_raw()) == lc


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        pytest.param({"maxInstances": 0}, "spec.maxInstances", id="max-instances-0"),
        pytest.param({"maxInstances": -1}, "spec.maxInstances", id="max-instances-negative"),
        pytest.param({"maxInstances": 2**31}, "spec.maxInstances", id="max-instances-overflow"),
        pytest.param({}, "spec.maxInstances", id="max-instances-missing"),
        pytest.param({"maxInstances": 1, "podTemplate": {"spec": {}}}, "spec.podTemplate.spec", id="no-containers"),
        pytest.param(
            {"maxInstances": 1, "podTemplate": {"spec": {"containers": [{"image": "x"}]}}},
            "spec.podTemplate.spec",
            id="container-without-name",
        ),
        pytest.param(
            {"maxInstances": 1, "podTemplate": {"metadata": {"name": "x"}}},
            "spec.podTemplate.metadata.name",
            id="metadata-beyond-labels-annotations",
        ),
        pytest.param({"maxInstances": 1, "extra": 1}, "spec.extra", id="unknown-field"),
    ],
)
def test_invalid_names_the_field(spec: dict[str, Any], where: str) -> None:
    with pytest.raises(crds.InvalidObject) as caught:
        decoding.decode(launcher_config.LauncherConfig, _lc(spec))
    assert where in [path for path, _ in caught.value.problems]


def test_pod_spec_fields_are_kept_verbatim() -> None:
    lc = decoding.decode(launcher_config.LauncherConfig, _lc({"maxInstances": 1, "podTemplate": _TEMPLATE}))
    assert lc.to_raw()["spec"]["podTemplate"]["spec"] == _TEMPLATE["spec"]


def test_malformation() -> None:
    good = decoding.decode(launcher_config.LauncherConfig, _lc({"maxInstances": 1, "podTemplate": _TEMPLATE}))
    assert good.malformation() is None
    assert good.spec.pod_template.container("inference-server") == _TEMPLATE["spec"]["containers"][0]
    other = {"spec": {"containers": [{"name": "other"}]}}
    bad = decoding.decode(launcher_config.LauncherConfig, _lc({"maxInstances": 1, "podTemplate": other}))
    assert bad.malformation() == 'container "inference-server" not found'
    empty = decoding.decode(launcher_config.LauncherConfig, _lc({"maxInstances": 1}))
    assert empty.malformation() == 'container "inference-server" not found'
