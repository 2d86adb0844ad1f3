"""A development cluster of the chart tests' own, with the FMA chart installed, and its simulated model.

The chart's webhook, admission policies and second scheduler act
cluster-wide, so every chart test module that needs other values than the
shared release's (``conftest.installed_chart``) gets a cluster of its own:
a control plane with Service routing, a simnode of 2 nodes x 2 GPUs
publishing ``gpu-map`` into the release namespace, and ``helm install``
exactly as an operator runs it, with ``devcluster-values.yaml`` plus the
module's ``--set`` values.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

import kube
from devcluster import control_plane, helm_release, samples, waiting
from devcluster import simnode as simnode_mod
from kube import resources

VALUES = pathlib.Path(__file__).resolve().with_name("devcluster-values.yaml")


@contextlib.contextmanager
def installed(
    workdir: pathlib.Path,
    *,
    node_prefix: str,
    set_values: Sequence[str] = (),
    settled: Callable[[helm_release.InstalledChart], bool] = helm_release.InstalledChart.all_available,
    what: str = "every Deployment of the release Available",
    **simnode_options: Any,
) -> Iterator[tuple[helm_release.InstalledChart, str]]:
    """Yield the installed chart and ``helm install``'s output once ``settled`` holds; everything stops after.

    ``simnode_options`` override the simnode defaults (e.g. ``gpu_mode="dra"``)."""
    cluster = control_plane.up(control_plane.ClusterOptions(state_dir=workdir / "cluster", apiserver_port=None))
    record = None
    api = None
    opts = simnode_mod.SimnodeOptions(
        **{
            "nodes": 2,
            "gpus_per_node": 2,
            "gpu_map_namespace": helm_release.NAMESPACE,
            "node_prefix": f"{node_prefix}{os.getpid()}",
            **simnode_options,
        }
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
        extra = [arg for value in set_values for arg in ("--set", value)]
        result = chart.helm("install", *chart.install_args("--create-namespace", *extra), timeout=360.0)
        waiting.wait_for(lambda: settled(chart), timeout=60, what=what)
        yield chart, result.stdout
    finally:
        if api is not None:
            api.close()
        if record is not None:
            simnode_mod.stop(record, simnode_state)
        control_plane.down(cluster.state_dir, grace_seconds=5.0)


def sim_model(chart: helm_release.InstalledChart, isc: str = "tiny") -> str:
    """A LauncherConfig, an InferenceServerConfig ``isc`` (engine simulator) and a population policy of one
    idle launcher per GPU node in the release namespace, once those launchers are Ready; returns ``isc``."""
    api, ns = chart.api, helm_release.NAMESPACE
    launcher_sa = f"{helm_release.RELEASE}-fma-launcher"
    api.create(resources.LAUNCHER_CONFIGS, samples.launcher_config("sim", service_account=launcher_sa), ns)
    body = samples.inference_server_config(isc, launcher_config_name="sim", options=samples.engine_sim_options())
    api.create(resources.INFERENCE_SERVER_CONFIGS, body, ns)
    policy = samples.launcher_population_policy(
        "one-per-gpu-node", launcher_config_name="sim", count=1, match_labels={"nvidia.com/gpu.present": "true"}
    )
    api.create(resources.LAUNCHER_POPULATION_POLICIES, policy, ns)

    def launchers_ready() -> bool:
        pods = chart.pods("app.kubernetes.io/component=launcher")
        return len(pods) >= len(chart.node_names) and all(helm_release.pod_ready(p) for p in pods)

    waiting.wait_for(launchers_ready, timeout=120, what="the populator's idle launchers Ready")
    return isc


def metrics_texts(chart: helm_release.InstalledChart, component: str) -> list[str]:
    """The ``/metrics`` exposition of each Ready Pod of ``component`` (its first container port, by Pod IP)."""
    texts = []
    for pod in chart.pods(f"app.kubernetes.io/component={component}"):
        if not helm_release.pod_ready(pod):
            continue
        port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
        texts.append(httpx.get(f"http://{pod['status']['podIP']}:{port}/metrics", timeout=5).text)
    return texts
