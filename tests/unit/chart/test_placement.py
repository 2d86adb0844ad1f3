"""The chart's ``placement`` value: the scheduler configuration per placement (the packaged one), the
webhook's flags and permissions, and whether the extender is deployed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.chart.conftest import (
    RELEASE,
    HelmFailed,
    Rendered,
    packaged_scheduler_config,
    rendered_scheduler_config,
)

P = f"{RELEASE}-fma"
Render = Callable[..., Rendered]


def _webhook_args(rendered: Rendered) -> dict[str, str]:
    box = rendered.get("Deployment", f"{P}-webhook")["spec"]["template"]["spec"]["containers"][0]
    return dict(arg.partition("=")[::2] for arg in box.get("args") or [])


def _scheduler_box(rendered: Rendered) -> dict[str, Any]:
    return dict(rendered.get("Deployment", f"{P}-scheduler")["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize(
    ("placement", "nominate"),
    [
        (placement, nominate)
        for placement in ("extender", "hints", "hints+extender")
        for nominate in ("off", "gate", "plugin")
        if placement != "extender" or nominate == "off"
    ],
)
def test_scheduler_config_is_the_packaged_one_for_each_placement(render: Render, placement: str, nominate: str) -> None:
    rendered = render({"placement": placement, "placementNominate": nominate})
    expected = packaged_scheduler_config(placement, nominated_node_plugin=nominate == "plugin")
    assert rendered_scheduler_config(rendered) == expected
    assert _webhook_args(rendered)["--placement"] == placement
    assert rendered.has("Deployment", f"{P}-extender") is (placement != "hints")


def test_hints_give_the_webhook_what_the_sleeper_cache_reads(render: Render) -> None:
    rendered = render({"placement": "hints"})
    args = _webhook_args(rendered)
    assert args["--placement-namespace"] == "$(POD_NAMESPACE)"
    assert args["--sleeper-limit"] == "1"
    cluster_rules = rendered.get("ClusterRole", f"{P}-webhook")["rules"]
    granted = {
        (g, r, v) for rule in cluster_rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    for resource in ("pods", "nodes"):
        assert {("", resource, "list"), ("", resource, "watch")} <= granted
    assert ("fma.llm-d.ai", "launcherconfigs", "watch") in granted
    role_rules = rendered.get("Role", f"{P}-webhook")["rules"]
    assert any("configmaps" in rule["resources"] and "watch" in rule["verbs"] for rule in role_rules)
    plain = render()
    plain_rules = plain.get("ClusterRole", f"{P}-webhook")["rules"]
    assert not any("pods" in rule["resources"] for rule in plain_rules)


def test_hints_without_lookups_and_unknown_placements_are_refused(render: Render) -> None:
    with pytest.raises(HelmFailed, match="lookups"):
        render({"placement": "hints", "webhook": {"lookups": False}})
    with pytest.raises(HelmFailed, match="placement"):
        render({"placement": "nearest"})


@pytest.mark.parametrize("placement", ["hints", "hints+extender"])
@pytest.mark.parametrize(
    ("value", "mode"), [("gate", "gate"), ("plugin", "plugin"), (True, "gate"), (False, None), ("off", None)]
)
def test_placement_nominate_passes_the_webhook_mode(
    render: Render, placement: str, value: str | bool, mode: str | None
) -> None:
    """A mode, or the booleans of earlier releases (true: gate, false: off)."""
    assert _webhook_args(render({"placement": placement, "placementNominate": value})).get("--nominate") == mode
    assert "--nominate" not in _webhook_args(render({"placement": placement}))


def test_placement_nominate_plugin_runs_fmas_scheduler_build(render: Render) -> None:
    box = _scheduler_box(render({"placement": "hints", "placementNominate": "plugin"}))
    assert box["image"] == "ghcr.io/llm-d/fma-scheduler:0.1.0"
    assert box["imagePullPolicy"] == "IfNotPresent"
    assert box["command"] == ["fma-kube-scheduler"]
    custom = {
        "placement": "hints+extender",
        "placementNominate": "plugin",
        "scheduler": {
            "image": {"repository": "registry.example.com/stock"},
            "command": ["stock"],
            "plugin": {
                "image": {"repository": "registry.example.com/fma-scheduler", "tag": "t1", "pullPolicy": "Always"},
                "command": ["/bin/fma-scheduler", "--x"],
            },
        },
    }
    box = _scheduler_box(render(custom))
    assert (box["image"], box["imagePullPolicy"]) == ("registry.example.com/fma-scheduler:t1", "Always")
    assert box["command"] == ["/bin/fma-scheduler", "--x"]
    for value in ("gate", "off"):
        stock = _scheduler_box(render({"placement": "hints", "placementNominate": value}))
        assert stock["image"].startswith("registry.k8s.io/kube-scheduler:")
        assert stock["command"] == ["kube-scheduler"]


def test_placement_nominate_needs_hints(render: Render) -> None:
    for value in (True, "gate", "plugin"):
        with pytest.raises(HelmFailed, match="placementNominate needs placement hints"):
            render({"placementNominate": value})
    with pytest.raises(HelmFailed, match="placementNominate"):
        render({"placement": "hints", "placementNominate": "yes"})
    with pytest.raises(HelmFailed, match=r"placementNominate plugin needs scheduler\.enabled"):
        render({"placement": "hints", "placementNominate": "plugin", "scheduler": {"enabled": False}})


def test_plugin_max_binds_in_flight_reaches_the_paced_binder(render: Render) -> None:
    """scheduler.plugin.maxBindsInFlight renders as render(max_binds_in_flight=...) does; below 1 is refused."""
    rendered = render(
        {"placement": "hints", "placementNominate": "plugin", "scheduler": {"plugin": {"maxBindsInFlight": 64}}}
    )
    expected = packaged_scheduler_config("hints", nominated_node_plugin=True, max_binds_in_flight=64)
    assert rendered_scheduler_config(rendered) == expected
    with pytest.raises(HelmFailed, match="maxBindsInFlight"):
        render({"placement": "hints", "placementNominate": "plugin", "scheduler": {"plugin": {"maxBindsInFlight": 0}}})
