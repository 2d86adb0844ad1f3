"""LauncherPopulationPolicy: validation, node matching and round trips."""

from __future__ import annotations

from typing import Any

import pytest

import crds
from crds import decoding, launcher_population_policy


def _lpp(selector: dict[str, Any], counts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherPopulationPolicy",
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"enhancedNodeSelector": selector, "countForLauncher": counts},
    }


_SELECTOR = {"labelSelector": {"matchLabels": {"gpu": "yes"}}}


@pytest.mark.parametrize(
    ("selector", "counts"),
    [
        pytest.param(_SELECTOR, [{"launcherConfigName": "a", "launcherCount": 0}], id="count-0"),
        pytest.param(_SELECTOR, [], id="no-counts"),
        pytest.param(
            _SELECTOR,
            [{"launcherConfigName": "a", "launcherCount": 1}, {"launcherConfigName": "b", "launcherCount": 2}],
            id="two-configs",
        ),
        pytest.param({"labelSelector": {}}, [], id="empty-selector"),
        pytest.param({"labelSelector": {}, "allocatableResources": {}}, [], id="empty-ranges"),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"nvidia.com/gpu": {"min": 2, "max": "2"}}},
            [],
            id="min-equals-max",
        ),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"memory": {"min": "1Gi", "max": "1073741824"}}},
            [],
            id="equal-in-different-units",
        ),
        pytest.param({"labelSelector": {}, "allocatableResources": {"cpu": {"max": "500m"}}}, [], id="only-max"),
        pytest.param(
            {"labelSelector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}},
            [],
            id="unparsable-selector-is-stored",
        ),
    ],
)
def test_valid(selector: dict[str, Any], counts: list[dict[str, Any]]) -> None:
    lpp = decoding.decode(launcher_population_policy.LauncherPopulationPolicy, _lpp(selector, counts))
    assert decoding.decode(launcher_population_policy.LauncherPopulationPolicy, lpp.to_raw()) == lpp


@pytest.mark.parametrize(
    ("selector", "counts", "where"),
    [
        pytest.param(
            _SELECTOR,
            [{"launcherConfigName": "a", "launcherCount": 1}, {"launcherConfigName": "a", "launcherCount": 2}],
            "spec.countForLauncher",
            id="duplicate-launcherConfigName",
        ),
        pytest.param(
            _SELECTOR,
            [{"launcherConfigName": "a", "launcherCount": -1}],
            "spec.countForLauncher[0].launcherCount",
            id="negative-count",
        ),
        pytest.param(
            _SELECTOR, [{"launcherConfigName": "a"}], "spec.countForLauncher[0].launcherCount", id="count-missing"
        ),
        pytest.param(
            _SELECTOR, [{"launcherCount": 1}], "spec.countForLauncher[0].launcherConfigName", id="name-missing"
        ),
        pytest.param(
            _SELECTOR,
            [{"launcherConfigName": "", "launcherCount": 1}],
            "spec.countForLauncher[0].launcherConfigName",
            id="name-empty",
        ),
        pytest.param({}, [], "spec.enhancedNodeSelector.labelSelector", id="selector-missing"),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"cpu": {"min": "4", "max": "2"}}},
            [],
            "spec.enhancedNodeSelector.allocatableResources.cpu",
            id="min-above-max",
        ),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"memory": {"min": "2Gi", "max": "1G"}}},
            [],
            "spec.enhancedNodeSelector.allocatableResources.memory",
            id="min-above-max-mixed-units",
        ),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"cpu": {"min": "lots"}}},
            [],
            "spec.enhancedNodeSelector.allocatableResources.cpu.min",
            id="bad-quantity",
        ),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {"cpu": {"min": "1" * 65}}},
            [],
            "spec.enhancedNodeSelector.allocatableResources.cpu.min",
            id="quantity-too-long-for-the-apiserver-rule",
        ),
        pytest.param(
            {"labelSelector": {}, "allocatableResources": {f"r{i}": {} for i in range(65)}},
            [],
            "spec.enhancedNodeSelector.allocatableResources",
            id="more-than-64-ranges",
        ),
    ],
)
def test_invalid_names_the_field(selector: dict[str, Any], counts: list[dict[str, Any]], where: str) -> None:
    with pytest.raises(crds.InvalidObject) as caught:
        decoding.decode(launcher_population_policy.LauncherPopulationPolicy, _lpp(selector, counts))
    paths = [path for path, _ in caught.value.problems]
    assert any(path.startswith(where) for path in paths), paths


def test_missing_count_for_launcher_is_invalid() -> None:
    raw = _lpp(_SELECTOR, [])
    del raw["spec"]["countForLauncher"]
    with pytest.raises(crds.InvalidObject, match=r"spec\.countForLauncher"):
        decoding.decode(launcher_population_policy.LauncherPopulationPolicy, raw)


_RANGES = {"nvidia.com/gpu": {"min": 2}, "memory": {"max": "512Gi"}}


@pytest.mark.parametrize(
    ("labels", "allocatable", "expected"),
    [
        pytest.param({"gpu": "yes"}, {"nvidia.com/gpu": "4", "memory": "256Gi"}, True, id="match"),
        pytest.param({"gpu": "yes"}, {"nvidia.com/gpu": "2", "memory": "512Gi"}, True, id="inclusive-bounds"),
        pytest.param({"gpu": "yes"}, {"nvidia.com/gpu": "1", "memory": "256Gi"}, False, id="below-min"),
        pytest.param({"gpu": "yes"}, {"nvidia.com/gpu": "4", "memory": "1Ti"}, False, id="above-max"),
        pytest.param({"gpu": "yes"}, {"nvidia.com/gpu": "4"}, False, id="resource-missing"),
        pytest.param({"gpu": "no"}, {"nvidia.com/gpu": "4", "memory": "1Gi"}, False, id="labels-differ"),
        pytest.param(
            {"gpu": "yes"}, {"nvidia.com/gpu": "garbage", "memory": "1Gi"}, False, id="unparsable-allocatable"
        ),
    ],
)
def test_node_matching(labels: dict[str, str], allocatable: dict[str, str], expected: bool) -> None:
    selector = launcher_population_policy.EnhancedNodeSelector.model_validate(
        {"labelSelector": {"matchLabels": {"gpu": "yes"}}, "allocatableResources": _RANGES}
    )
    assert selector.matches(labels, allocatable) is expected


def test_empty_ranges_match_all_nodes() -> None:
    selector = launcher_population_policy.EnhancedNodeSelector.model_validate(
        {"labelSelector": {}, "allocatableResources": {}}
    )
    assert selector.matches({}, {})
