"""The desired count of a (node, LauncherConfig) pair (docs/populator.md, "How it works"), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from controllers import population_target


def node(labels: dict[str, str] | None = None, **allocatable: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1", "labels": labels or {}},
        "status": {"allocatable": {"nvidia.com/gpu": "4", "memory": "128Gi", **allocatable}},
    }


def policy(
    counts: dict[str, Any],
    match_labels: dict[str, str] | None = None,
    *,
    expressions: list[dict[str, Any]] | None = None,
    ranges: dict[str, Any] | None = None,
    name: str = "p",
) -> dict[str, Any]:
    label_selector: dict[str, Any] = {}
    if match_labels is not None:
        label_selector["matchLabels"] = match_labels
    if expressions is not None:
        label_selector["matchExpressions"] = expressions
    selector: dict[str, Any] = {"labelSelector": label_selector}
    if ranges is not None:
        selector["allocatableResources"] = ranges
    return {
        "metadata": {"name": name, "generation": 1},
        "spec": {
            "enhancedNodeSelector": selector,
            "countForLauncher": [{"launcherConfigName": k, "launcherCount": v} for k, v in counts.items()],
        },
    }


def lc(name: str, *, server: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {
            "maxInstances": 1,
            "podTemplate": {"spec": {"containers": [{"name": "inference-server" if server else "x"}]}},
        },
    }


CONFIGS = {
    raw["metadata"]["name"]: population_target.read_config(raw) for raw in (lc("a"), lc("b"), lc("bad", server=False))
}
GPU = {"gpu": "yes"}


def target(the_node: dict[str, Any], policies: list[dict[str, Any]], name: str = "a") -> population_target.Target:
    views = [population_target.read_policy(raw) for raw in policies]
    return population_target.target(the_node, name, views, CONFIGS)


@pytest.mark.parametrize(
    ("the_node", "policies", "name", "expected"),
    [
        pytest.param(node(GPU), [], "a", population_target.Target(0), id="no-policy-means-zero"),
        pytest.param(node(GPU), [policy({"a": 2}, GPU)], "a", population_target.Target(2), id="one-policy"),
        pytest.param(node(GPU), [policy({"a": 2}, GPU)], "b", population_target.Target(0), id="other-config"),
        pytest.param(node({}), [policy({"a": 2}, GPU)], "a", population_target.Target(0), id="node-not-selected"),
        pytest.param(
            node(GPU),
            [policy({"a": 2}, GPU, name="p1"), policy({"a": 5, "b": 1}, {}, name="p2"), policy({"a": 3}, GPU)],
            "a",
            population_target.Target(5),
            id="overlapping-policies-take-the-maximum",
        ),
        pytest.param(
            node(GPU),
            [policy({"a": 2}, GPU, name="p1"), policy({"a": 9}, {"gpu": "no"}, name="p2")],
            "a",
            population_target.Target(2),
            id="non-matching-policy-ignored",
        ),
        pytest.param(
            node(GPU),
            [policy({"a": 2}, expressions=[{"key": "gpu", "operator": "In", "values": ["yes", "maybe"]}])],
            "a",
            population_target.Target(2),
            id="match-expressions",
        ),
        pytest.param(
            node(GPU),
            [policy({"a": 2}, expressions=[{"key": "gpu", "operator": "Bogus"}]), policy({"a": 1}, GPU, name="q")],
            "a",
            population_target.Target(1),
            id="unparsable-selector-matches-nothing",
        ),
        pytest.param(
            node(GPU), [policy({"missing": 2}, GPU)], "missing", population_target.Target(0, True), id="missing-lc"
        ),
        pytest.param(node(GPU), [policy({"bad": 2}, GPU)], "bad", population_target.Target(0, True), id="malformed-lc"),
        pytest.param(
            node(GPU),
            [policy({"bad": 2, "a": 1}, GPU)],
            "a",
            population_target.Target(1),
            id="other-pairs-unaffected-by-malformed-lc",
        ),
        pytest.param(
            node(GPU),
            [policy({"a": -1}, GPU), policy({"a": 2}, {}, name="q")],
            "a",
            population_target.Target(2, True),
            id="negative-count-reads-as-zero-and-goes-hands-off",
        ),
        pytest.param(
            node(GPU),
            [policy({"a": -1, "b": 3}, GPU)],
            "b",
            population_target.Target(3),
            id="negative-count-affects-only-its-pair",
        ),
        pytest.param(
            node({"gpu": "no"}),
            [policy({"a": -1}, GPU), policy({"a": 2}, {}, name="q")],
            "a",
            population_target.Target(2),
            id="negative-count-on-unselected-node-is-harmless",
        ),
    ],
)
def test_desired_count(
    the_node: dict[str, Any], policies: list[dict[str, Any]], name: str, expected: population_target.Target
) -> None:
    assert target(the_node, policies, name) == expected


@pytest.mark.parametrize(
    ("ranges", "matches"),
    [
        pytest.param({"nvidia.com/gpu": {"min": 4}}, True, id="min-inclusive"),
        pytest.param({"nvidia.com/gpu": {"max": 4}}, True, id="max-inclusive"),
        pytest.param({"nvidia.com/gpu": {"min": 4, "max": 4}}, True, id="exact"),
        pytest.param({"nvidia.com/gpu": {"min": 5}}, False, id="below-min"),
        pytest.param({"nvidia.com/gpu": {"max": 3}}, False, id="above-max"),
        pytest.param({"memory": {"min": "128Gi", "max": "128Gi"}}, True, id="quantity-units"),
        pytest.param({"memory": {"min": "137438953473"}}, False, id="one-byte-more"),
        pytest.param({"example.com/fpga": {}}, False, id="resource-missing-on-node"),
        pytest.param({"nvidia.com/gpu": {}}, True, id="unbounded"),
        pytest.param({}, True, id="empty-map-matches-all"),
        pytest.param({"nvidia.com/gpu": {"min": 5, "max": 1}}, False, id="invalid-range-matches-nothing"),
    ],
)
def test_allocatable_ranges(ranges: dict[str, Any], matches: bool) -> None:
    expected = population_target.Target(2 if matches else 0)
    assert target(node(GPU), [policy({"a": 2}, GPU, ranges=ranges)]) == expected


@pytest.mark.parametrize(
    ("raw", "selector_problem", "spec_problem"),
    [
        pytest.param(policy({"a": 1}, GPU), None, None, id="valid"),
        pytest.param(
            policy({"a": 1}, expressions=[{"key": "gpu", "operator": "Bogus"}]),
            "'Bogus' is not a valid label selector operator",
            None,
            id="bad-operator",
        ),
        pytest.param(policy({"a": 1}, {"bad key!": "x"}), "bad key!", None, id="bad-key"),
        pytest.param(policy({"a": -3}, GPU), None, "must not be negative, got -3", id="negative"),
        pytest.param(policy({"a": "two"}, GPU), None, "must be an integer", id="not-an-integer"),
        pytest.param(
            policy({"a": 1}, GPU, ranges={"nvidia.com/gpu": {"min": 5, "max": 1}}),
            None,
            "spec.enhancedNodeSelector",
            id="invalid-range",
        ),
    ],
)
def test_read_policy_collects_problems(
    raw: dict[str, Any], selector_problem: str | None, spec_problem: str | None
) -> None:
    view = population_target.read_policy(raw)
    if selector_problem is None:
        assert view.selector_problem is None
    else:
        assert view.selector_problem is not None
        assert selector_problem in view.selector_problem
        assert view.selector is None
    if spec_problem is None:
        assert view.spec_problems == ()
    else:
        assert any(spec_problem in problem for problem in view.spec_problems), view.spec_problems


def test_read_policy_with_no_spec_matches_nothing() -> None:
    view = population_target.read_policy({"metadata": {"name": "p"}})
    assert view.selector is None
    assert view.entries == ()
    assert view.spec_problems


def test_read_config() -> None:
    good = CONFIGS["a"]
    assert good.usable
    assert good.template_hash is not None
    bad = CONFIGS["bad"]
    assert not bad.usable
    assert bad.malformation == 'container "inference-server" not found'
    assert bad.template_hash is None
    deleting = lc("d")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not population_target.read_config(deleting).usable


def test_referenced_configs() -> None:
    views = [population_target.read_policy(policy({"a": 1, "x": 0})), population_target.read_policy(policy({"y": 2}))]
    assert population_target.referenced_configs(views) == {"a", "x", "y"}
