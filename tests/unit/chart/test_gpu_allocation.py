"""The chart's ``gpuAllocation`` value: it reaches the sleeper model of every process that scores nodes
(fma-extender always, the webhook when it writes hints), parsed by the real CLIs, and bad values are refused
by the schema with the field named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crds import sleeper_scoring
from extender import __main__ as extender_main
from extender import settings as extender_settings
from tests.unit.chart.conftest import RELEASE, HelmFailed, Rendered
from tests.unit.chart.test_commands import container_args
from webhook import __main__ as webhook_main
from webhook import settings as webhook_settings

P = f"{RELEASE}-fma"
Render = Callable[..., Rendered]


def _extender(rendered: Rendered) -> extender_settings.Settings:
    args = container_args(rendered, "Deployment", f"{P}-extender")
    given = {k: v for k, v in vars(extender_main._parser().parse_args(args)).items() if v is not None}
    return extender_settings.Settings(**given)


def _webhook(rendered: Rendered) -> webhook_settings.Settings:
    args = container_args(rendered, "Deployment", f"{P}-webhook")
    given = {k: v for k, v in vars(webhook_main._serve_parser().parse_args(args)).items() if v is not None}
    return webhook_settings.Settings(**given)


def _flags(rendered: Rendered, component: str) -> list[str]:
    return [a for a in container_args(rendered, "Deployment", f"{P}-{component}") if a.startswith("--gpu-allocation")]


def test_the_default_is_lowest_index_and_is_passed_explicitly(render: Render) -> None:
    rendered = render()
    assert _flags(rendered, "extender") == ["--gpu-allocation=lowest-index"]
    assert _extender(rendered).gpu_allocation == sleeper_scoring.Allocation.LOWEST_INDEX.value


@pytest.mark.parametrize("allocation", list(sleeper_scoring.ALLOCATIONS))
@pytest.mark.parametrize("placement", ["extender", "hints", "hints+extender"])
def test_each_policy_reaches_every_scoring_process(render: Render, allocation: str, placement: str) -> None:
    rendered = render({"gpuAllocation": allocation, "placement": placement})
    if placement != "hints":
        assert _flags(rendered, "extender") == [f"--gpu-allocation={allocation}"]
        assert _extender(rendered).gpu_allocation == allocation
    else:
        assert not rendered.has("Deployment", f"{P}-extender")
    webhook = _webhook(rendered)
    if placement == "extender":
        # The webhook writes no hints, so it is given no scoring knobs at all.
        assert _flags(rendered, "webhook") == []
    else:
        assert _flags(rendered, "webhook") == [f"--gpu-allocation={allocation}"]
        assert webhook.hints
        assert webhook.gpu_allocation == allocation
    # Both settings name the same enum the scoring uses.
    assert sleeper_scoring.Allocation(allocation).value == allocation


@pytest.mark.parametrize("bad", ["random", "LOWEST-INDEX", "", 1, ["lowest-index"]])
def test_bad_values_are_refused_with_the_field_named(render: Render, bad: Any) -> None:
    with pytest.raises(HelmFailed, match="gpuAllocation"):
        render({"gpuAllocation": bad})
