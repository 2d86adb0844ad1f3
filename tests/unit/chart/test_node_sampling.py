"""The chart's ``scheduler.percentageOfNodesToScore``: the FMA scheduler's configuration is the packaged one
rendered with that share, for every placement, and values outside 0-100 are refused with the field named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from extender import scheduler_config as packaged
from tests.unit.chart.conftest import (
    RELEASE,
    HelmFailed,
    Rendered,
    packaged_scheduler_config,
    rendered_scheduler_config,
)

P = f"{RELEASE}-fma"
Render = Callable[..., Rendered]


@pytest.mark.parametrize("share", [0, 30, 100])
@pytest.mark.parametrize("placement", ["extender", "hints", "hints+extender"])
def test_the_configuration_is_the_packaged_one_with_that_share(render: Render, placement: str, share: int) -> None:
    rendered = render({"placement": placement, "scheduler": {"percentageOfNodesToScore": share}})
    expected = packaged_scheduler_config(placement, percentage_of_nodes_to_score=share)
    config = rendered_scheduler_config(rendered)
    assert config == expected
    assert config.get("percentageOfNodesToScore") == (share or None)


def test_the_default_scores_every_node(render: Render) -> None:
    assert rendered_scheduler_config(render())["percentageOfNodesToScore"] == packaged.FULL_SCORING


@pytest.mark.parametrize("bad", [-1, 101, 42.5, "all"])
def test_bad_shares_are_refused_with_the_field_named(render: Render, bad: Any) -> None:
    with pytest.raises(HelmFailed, match="percentageOfNodesToScore"):
        render({"scheduler": {"percentageOfNodesToScore": bad}})
