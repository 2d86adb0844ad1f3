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

import os
import pathlib
from collections.abc import Iterator

import pytest

import kube
from devcluster import control_plane, helm_release, samples, waiting
from devcluster import simnode as simnode_mod
from kube import resources

VALUES = pathlib.Path(__file__).resolve().with_name("devcluster-values.yaml")


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
    workdir = pathlib.Path(tmp_path_factory.mktemp("chart"))
    cluster = control_plane.up(control_plane.ClusterOptions(state_dir=workdir / "cluster", apiserver_port=None))
    record = None
    api = None
    opts = simnode_mod.SimnodeOptions(
        nodes=2, gpus_per_node=2, gpu_map_namespace=helm_release.NAMESPACE, node_prefix=f"chart{os.getpid()}"
    )
    simnode_state = simnode_mod.state_dir_of(cluster, opts)
    try:
        record = simnode_mod.spawn(cluster, opts, cluster.state_dir / "logs" / "simnode.log")
        simnode_mod.wait_ready(cluster, opts, record, timeout=60.0)
        api = kube.connect(str(cluster.kubeconfig), field_manager="chart-tests")
        chart = helm_release.InstalledChart(
            cluster=cluster,
            api=api,
            simnode_state_dir=simnode_state,
            workdir=workdir,
            node_names=simnode_mod.node_names(opts),
            values=VALUES,
        )
        chart.helm("install", *chart.install_args("--create-namespace"), timeout=360.0)
        waiting.wait_for(chart.all_available, timeout=60, what="every Deployment of the release Available")
        yield chart
    finally:
        if api is not None:
            api.close()
        if record is not None:
            simnode_mod.stop(record, simnode_state)
        control_plane.down(cluster.state_dir, grace_seconds=5.0)


@pytest.fixture(scope="session")
def sim_model(installed_chart: helm_release.InstalledChart) -> str:
    """A LauncherConfig, an InferenceServerConfig (engine simulator) and a population policy of one idle
    launcher per GPU node in the release namespace; returns the InferenceServerConfig's name."""
    api, ns = installed_chart.api, helm_release.NAMESPACE
    launcher_sa = f"{helm_release.RELEASE}-fma-launcher"
    api.create(resources.LAUNCHER_CONFIGS, samples.launcher_config("sim", service_account=launcher_sa), ns)
    isc = samples.inference_server_config("tiny", launcher_config_name="sim", options=samples.engine_sim_options())
    api.create(resources.INFERENCE_SERVER_CONFIGS, isc, ns)
    policy = samples.launcher_population_policy(
        "one-per-gpu-node", launcher_config_name="sim", count=1, match_labels={"nvidia.com/gpu.present": "true"}
    )
    api.create(resources.LAUNCHER_POPULATION_POLICIES, policy, ns)

    def launchers_ready() -> bool:
        pods = installed_chart.pods("app.kubernetes.io/component=launcher")
        return len(pods) >= len(installed_chart.node_names) and all(helm_release.pod_ready(p) for p in pods)

    waiting.wait_for(launchers_ready, timeout=120, what="the populator's idle launchers Ready")
    return "tiny"
