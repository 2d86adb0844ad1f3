"""Decoding raw dicts: kind dispatch and errors that name object and field."""

from __future__ import annotations

from typing import Any

import pytest

import crds
from crds import decoding, errors, launcher_config


def test_decode_any_dispatches_on_kind() -> None:
    raw = {"apiVersion": "fma.llm-d.ai/v1alpha1", "kind": "LauncherConfig", "spec": {"maxInstances": 1}}
    assert isinstance(decoding.decode_any(raw), launcher_config.LauncherConfig)
    assert decoding.model_for_kind("LauncherConfig") is launcher_config.LauncherConfig


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"apiVersion": "v1", "kind": "Pod"}, id="foreign-kind"),
        pytest.param({"apiVersion": "fma.llm-d.ai/v1alpha1"}, id="no-kind"),
        pytest.param({"apiVersion": "fma.llm-d.ai/v2", "kind": "LauncherConfig"}, id="other-version"),
    ],
)
def test_decode_any_refuses_other_objects(raw: dict[str, Any]) -> None:
    with pytest.raises(crds.InvalidObject, match="not an FMA custom resource"):
        decoding.decode_any(raw)


def test_error_lists_every_problem_with_paths_and_reference() -> None:
    raw = {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherPopulationPolicy",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "enhancedNodeSelector": {"labelSelector": {}},
            "countForLauncher": [{"launcherConfigName": "a", "launcherCount": -1}, {"launcherCount": 1}],
        },
    }
    with pytest.raises(errors.InvalidObject) as caught:
        decoding.decode_any(raw)
    assert caught.value.kind == "LauncherPopulationPolicy"
    assert caught.value.ref == "ns/p"
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["spec.countForLauncher[0].launcherCount", "spec.countForLauncher[1].launcherConfigName"]
    assert str(caught.value).startswith(
        "invalid LauncherPopulationPolicy ns/p: spec.countForLauncher[0].launcherCount:"
    )
    assert isinstance(caught.value, ValueError)


def test_error_tree() -> None:
    assert issubclass(errors.InvalidObject, errors.CrdsError)
    assert issubclass(errors.InvalidAnnotation, errors.CrdsError)
    assert issubclass(errors.InvalidAnnotation, ValueError)
    err = errors.InvalidAnnotation("k", "v", "why")
    assert str(err) == "invalid value 'v' for 'k': why"
