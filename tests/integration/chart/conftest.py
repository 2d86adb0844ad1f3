"""One development cluster with the FMA chart installed, shared by the chart's cluster tests.

The chart gets a cluster of its own (control plane with Service routing,
and a simnode of 2 nodes x 2 GPUs publishing ``gpu-map`` into the release
namespace), not the session's shared one: its webhook, admission policies
and second scheduler act cluster-wide and would change what other tests see.
``helm install`` runs exactly as an operator would run it, with only the
values of ``devcluster-values.yaml``; every chart Pod then runs on simnode
with its own ServiceAccount, and the apiserver and the FMA scheduler reach
the webhook and the extender through their Services.

Tests that uninstall the release carry the ``uninstalls`` marker and run
after every other test of the session, so the others share one install.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from devcluster import helm_release
from tests.integration.chart import chart_cluster


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``uninstalls`` marker."""
    config.addinivalue_line("markers", "uninstalls: removes the shared chart release; runs last in the session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the tests that uninstall the release to the end (stable otherwise)."""
    del config
    items.sort(key=lambda item: item.get_closest_marker("uninstalls") is not None)


@pytest.fixture(scope="session")
def installed_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helm_release.InstalledChart]:
    """A dev cluster (own control plane and simnode) with the chart installed as release ``fma`` in ``fma-system``."""
    with chart_cluster.installed(pathlib.Path(tmp_path_factory.mktemp("chart")), node_prefix="chart") as (chart, _):
        yield chart


@pytest.fixture(scope="session")
def sim_model(installed_chart: helm_release.InstalledChart) -> str:
    """A LauncherConfig, an InferenceServerConfig (engine simulator) and a population policy of one idle
    launcher per GPU node in the release namespace; returns the InferenceServerConfig's name."""
    return chart_cluster.sim_model(installed_chart)
