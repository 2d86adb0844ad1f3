"""The e2e tier: one development cluster with the FMA chart installed, shared by every scenario.

``e2e`` (session scope) starts a control plane with Service routing, simnode
with 3 GPU nodes x 4 GPUs (``gpu-map`` in the release namespace), and runs
``helm install`` of ``charts/fma`` exactly as the chart's cluster tests do
(``devcluster.helm_release``, their dev-cluster values plus
``tests/e2e/values.yaml``).  Launchers and direct providers run the engine
simulator with a fast timing model (``manifests.engine_options``).  It yields
a ``system.E2ESystem``; scenario files (``test_launcher_mode.py``,
``test_direct_mode.py``, ``test_faults_*.py``) need nothing else.

Images: by default simnode runs in image mode with the OCI archives of
``devcluster.image_build`` (what ``make images`` builds without an engine;
built here when the cache lacks them): the chart's Pods, the requester agents
and the launchers start from the built images, so a missing file, a wrong
entrypoint or a missing dependency in an image fails the session.
``FMA_E2E_IMAGES=0`` runs every container on the host instead (the faster
path while iterating).  After each passing scenario the guard below also
checks that no container of ours ran on the host.

Every scenario ends with the common checks (``invariants.check_all``): a
test calls it itself where it wants the checks at a given point, and the
autouse guard below runs it after any test that passed without doing so.

Scenario modules run in a fixed order -- launcher mode, direct mode, then
the fault scenarios, then anything else -- and tests within a module in
file order, since some scenarios build on the state the previous one left
(each states its preconditions).
"""

from __future__ import annotations

import os
import pathlib
import time
import uuid
from collections.abc import Generator, Iterator

import pytest

import kube
from devcluster import control_plane, helm_release, image_build
from devcluster import simnode as simnode_mod

from . import cluster_watch, invariants, system

HERE = pathlib.Path(__file__).resolve().parent
CHART_VALUES = HERE.parent / "integration" / "chart" / "devcluster-values.yaml"
E2E_VALUES = HERE / "values.yaml"
NODES, GPUS_PER_NODE = 3, 4
_MODULE_ORDER = ("test_launcher_mode", "test_direct_mode", "test_faults_")


def _rank(item: pytest.Item) -> int:
    name = item.path.stem
    return next((i for i, prefix in enumerate(_MODULE_ORDER) if name.startswith(prefix)), len(_MODULE_ORDER))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``e2e`` and order its modules (stable within a module)."""
    del config
    mine = [i for i in items if HERE in i.path.parents]
    for item in mine:
        item.add_marker(pytest.mark.e2e)
    if not mine:
        return
    first = items.index(mine[0])
    others = [i for i in items if HERE not in i.path.parents]
    ordered = sorted(mine, key=_rank)
    items[:] = others[:first] + ordered + others[first:]


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[system.E2ESystem]:
    """The dev cluster (3 simulated GPU nodes x 4 GPUs) with the FMA chart installed by helm."""
    workdir = pathlib.Path(tmp_path_factory.mktemp("e2e"))
    images = image_build.build() if os.environ.get("FMA_E2E_IMAGES", "1") != "0" else None
    cluster = control_plane.up(control_plane.ClusterOptions(state_dir=workdir / "cluster", apiserver_port=None))
    logs = cluster.state_dir / "logs"
    opts = simnode_mod.SimnodeOptions(
        nodes=NODES,
        gpus_per_node=GPUS_PER_NODE,
        gpu_map_namespace=helm_release.NAMESPACE,
        node_prefix=f"e2e{os.getpid()}",
        state_dir=workdir / "simnode",
        leave_pods_running=True,  # so that a restarted simnode adopts them (restart_simnode)
        # The chart's Pods, the requester agents and the launchers run from the built images (FMA_E2E_IMAGES=0: host).
        image_archives=images.directory if images is not None else None,
    )
    record = None
    api = None
    watch = None
    the_system = None
    try:
        record = simnode_mod.spawn(cluster, opts, logs / "simnode.log")
        simnode_mod.wait_ready(cluster, opts, record, timeout=60.0)
        api = kube.connect(str(cluster.kubeconfig), field_manager="fma-e2e")
        chart = helm_release.InstalledChart(
            cluster=cluster,
            api=api,
            simnode_state_dir=simnode_mod.state_dir_of(cluster, opts),
            workdir=workdir,
            node_names=simnode_mod.node_names(opts),
            values=CHART_VALUES,
        )
        chart.helm("install", *chart.install_args("--create-namespace", "--values", str(E2E_VALUES)), timeout=360.0)
        watch = cluster_watch.ClusterWatch(api, helm_release.NAMESPACE)
        watch.start()
        the_system = system.E2ESystem(
            chart=chart,
            watch=watch,
            simnode_options=opts,
            simnode_record=record,
            run_token=uuid.uuid4().hex,
            logs=logs,
            images=images,
        )
        the_system.wait(chart.all_available, timeout=60, what="every Deployment of the release Available")
        assert the_system.containers_on_the_host() == [], "the chart's containers should run from their images"
        yield the_system
    finally:
        if watch is not None:
            watch.stop()
        if api is not None:
            api.close()
        if the_system is not None:
            record = the_system.simnode_record
        if record is not None:
            simnode_mod.stop(record, simnode_mod.state_dir_of(cluster, opts))
        control_plane.down(cluster.state_dir, grace_seconds=5.0)


@pytest.fixture(autouse=True)
def _common_checks(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a passing scenario (a test using ``e2e``): the common checks unless it ran them, and image mode held."""
    started = time.monotonic()
    yield
    if "e2e" not in request.fixturenames:
        return
    e2e: system.E2ESystem = request.getfixturevalue("e2e")
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.passed:
        return
    if e2e.last_check < started:
        invariants.check_all(e2e)
    on_host = e2e.containers_on_the_host()
    assert on_host == [], f"containers whose image simnode has ran on the host: {on_host}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so the guard knows whether the test passed."""
    del call
    report = yield
    if HERE in item.path.parents:
        setattr(item, f"rep_{report.when}", report)
    return report
