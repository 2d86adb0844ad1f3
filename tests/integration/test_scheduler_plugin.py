"""FMA's kube-scheduler build with the NominatedNode PreFilter plugin on the development cluster.

The plugin (``extender/scheduler_plugin``, docs/extender.md "Scheduler plugin") restricts a Pod's first
scheduling attempt to the node named by ``crds.keys.NOMINATED_NODE_ANNOTATION``, the annotation the webhook
writes for a certain-hot node.  Shown here against the real scheduler binary, built on demand (cached by a
hash of the Go sources), beside the cluster's stock scheduler:

* the annotated node wins although the scheduler's own scoring prefers the other node (a control Pod
  without the annotation lands there);
* an annotated node without room (its GPUs taken) is not imposed: the Pod schedules on the other node;
* an annotated node that fails another filter costs one failed cycle; the retry is unrestricted;
* the PacedBinder (bind, in place of DefaultBinder) with one slot binds a burst of Pods one call at a time,
  every Pod bound (a slot never released would hold every Pod after the first); args it cannot use stop the
  scheduler at start with a message naming the field.

Nodes: the session's simnode, ``simnode-0`` and ``simnode-1``, 2 GPUs each.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crds import keys
from devcluster import binaries, control_plane, processes, waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode
from extender import scheduler_config

from . import placement_stack

pytestmark = pytest.mark.cluster

PROFILE = "fma-plugin-scheduler"
SLEEP = ["python", "-c", "import time; time.sleep(3600)"]  # noqa: sleep-ok - a Pod's idle command


@pytest.fixture(scope="module")
def plugin_scheduler(
    devcluster: control_plane.ClusterState, simnode: RunningSimnode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """FMA's kube-scheduler, ``hints`` configuration with the plugin enabled, under the profile ``PROFILE``."""
    workdir = tmp_path_factory.mktemp("fma-plugin-scheduler")
    config = placement_stack.hints_scheduler_config(devcluster, PROFILE, nominated_node_plugin=True)
    record = placement_stack.spawn_scheduler(
        devcluster, workdir, PROFILE, config, binary=binaries.ensure_fma_scheduler()
    )
    try:
        yield PROFILE
    finally:
        processes.stop(record, grace_seconds=5)


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    with devcluster.http_client() as client:
        yield client


def _pod(
    name: str,
    *,
    gpus: int = 1,
    scheduler: str | None = PROFILE,
    nominated: str | None = None,
    preferred: str | None = None,
    node_name: str | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "inference-server",
                "image": "ignored",
                "command": SLEEP,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if scheduler:
        spec["schedulerName"] = scheduler
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = node_selector
    if preferred:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [preferred]}]}
        spec["affinity"] = {
            "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": term}]}
        }
    annotations = {keys.NOMINATED_NODE_ANNOTATION: nominated} if nominated else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations}, "spec": spec}


def _create(api: httpx.Client, namespace: str, body: dict[str, Any]) -> None:
    response = api.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
    assert response.status_code == 201, response.text


def _scheduled_node(api: httpx.Client, namespace: str, name: str, timeout: float = 60) -> str:
    def node() -> str | None:
        response = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        assert response.status_code == 200, response.text
        return (response.json().get("spec") or {}).get("nodeName")

    return str(waiting.wait_for(node, timeout=timeout, what=f"pod {namespace}/{name} scheduled"))


def _failed_scheduling(api: httpx.Client, namespace: str, name: str) -> int:
    response = api.get(
        f"/api/v1/namespaces/{namespace}/events",
        params={"fieldSelector": f"involvedObject.name={name},reason=FailedScheduling"},
    )
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def test_the_annotated_node_wins_over_the_schedulers_own_preference(
    plugin_scheduler: str, simnode: RunningSimnode, api: httpx.Client, fresh_namespace: str
) -> None:
    preferred, annotated = simnode.node_names[:2]
    _create(api, fresh_namespace, _pod("control", preferred=preferred))
    assert _scheduled_node(api, fresh_namespace, "control") == preferred
    _create(api, fresh_namespace, _pod("nominated", preferred=preferred, nominated=annotated))
    assert _scheduled_node(api, fresh_namespace, "nominated") == annotated
    assert _failed_scheduling(api, fresh_namespace, "nominated") == 0


def test_an_annotated_node_without_room_is_not_imposed(
    plugin_scheduler: str, simnode: RunningSimnode, api: httpx.Client, fresh_namespace: str
) -> None:
    other, full = simnode.node_names[:2]
    _create(api, fresh_namespace, _pod("filler", gpus=2, scheduler=None, node_name=full))
    _create(api, fresh_namespace, _pod("stale", nominated=full))
    assert _scheduled_node(api, fresh_namespace, "stale") == other
    assert _failed_scheduling(api, fresh_namespace, "stale") == 0


def test_an_annotated_node_failing_a_filter_costs_one_failed_cycle(
    plugin_scheduler: str, simnode: RunningSimnode, api: httpx.Client, fresh_namespace: str
) -> None:
    allowed, refused = simnode.node_names[:2]
    body = _pod("pinned", nominated=refused, node_selector={"kubernetes.io/hostname": allowed})
    _create(api, fresh_namespace, body)
    assert _scheduled_node(api, fresh_namespace, "pinned", timeout=120) == allowed
    assert _failed_scheduling(api, fresh_namespace, "pinned") == 1


def test_the_paced_binder_with_one_slot_binds_every_pod_of_a_burst(
    devcluster: control_plane.ClusterState,
    simnode: RunningSimnode,
    api: httpx.Client,
    fresh_namespace: str,
    tmp_path: pathlib.Path,
) -> None:
    profile = "fma-paced-one-slot"
    names = [f"burst-{i}" for i in range(12)]
    for name in names:  # all pending before the scheduler starts: one burst
        _create(api, fresh_namespace, _pod(name, gpus=0, scheduler=profile))
    config = placement_stack.hints_scheduler_config(
        devcluster, profile, nominated_node_plugin=True, max_binds_in_flight=1
    )
    assert config["profiles"][0]["plugins"]["bind"]["enabled"] == [{"name": scheduler_config.PACED_BINDER_PLUGIN}]
    record = placement_stack.spawn_scheduler(devcluster, tmp_path, profile, config, binaries.ensure_fma_scheduler())
    try:
        nodes = {name: _scheduled_node(api, fresh_namespace, name) for name in names}
    finally:
        processes.stop(record, grace_seconds=5)
    assert set(nodes.values()) <= set(simnode.node_names)
    assert all(_failed_scheduling(api, fresh_namespace, name) == 0 for name in names)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"maxInFlight": 0}, ("args.maxInFlight must be at least 1, got 0",)),
        ({"maxInFlights": 4}, ("args: unknown field", "maxInFlights")),
    ],
)
def test_paced_binder_args_it_cannot_use_stop_the_scheduler_at_start(
    devcluster: control_plane.ClusterState, tmp_path: pathlib.Path, args: dict[str, Any], named: tuple[str, ...]
) -> None:
    name = "fma-paced-bad-args"
    config = placement_stack.hints_scheduler_config(devcluster, name, nominated_node_plugin=True)
    config["profiles"][0]["pluginConfig"] = [{"name": scheduler_config.PACED_BINDER_PLUGIN, "args": args}]
    record = placement_stack.spawn_scheduler(
        devcluster, tmp_path, name, config, binaries.ensure_fma_scheduler(), wait_healthy=False
    )
    try:
        waiting.wait_for(lambda: not processes.is_alive(record), timeout=60, what=f"{name} to exit")
    finally:
        processes.stop(record, grace_seconds=5)
    log = (tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    failure = [line for line in log.splitlines() if "command failed" in line]
    assert failure, log[-2000:]
    assert f'initializing plugin \\"{scheduler_config.PACED_BINDER_PLUGIN}\\"' in failure[0]
    assert all(fragment in failure[0] for fragment in named), failure[0]
