"""simnode survives its own restart (it adopts running Pods) and a deleted Node stops its Pods.

Uses its own one-node simnode (own node name, own state directory) so the
session's shared simnode is not disturbed; its Pods are pinned to its node.
"""

from __future__ import annotations

import os
import pathlib
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import control_plane, processes, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import runtime_record

pytestmark = pytest.mark.cluster


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def _pid(state_dir: pathlib.Path, uid: str) -> int | None:
    record = runtime_record.load(state_dir, uid)
    if record is None or record.containers["main"].process is None:
        return None
    return record.containers["main"].process.pid


def _status(api: httpx.Client, namespace: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/namespaces/{namespace}/pods/sleeper")
    assert response.status_code == 200, response.text
    statuses = response.json().get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def _running_after_restarts(api: httpx.Client, namespace: str, restarts: int) -> dict[str, Any] | None:
    status = _status(api, namespace)
    return status if status.get("restartCount") == restarts and "running" in status.get("state", {}) else None


def test_restarted_simnode_adopts_pods_and_a_deleted_node_stops_them(
    api: httpx.Client, devcluster: control_plane.ClusterState, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    state_dir = tmp_path / "simnode-state"
    opts = simnode_mod.SimnodeOptions(
        nodes=1,
        gpus_per_node=1,
        node_prefix=f"adopt-{uuid.uuid4().hex[:6]}",
        gpu_map_namespace=None,
        state_dir=state_dir,
        leave_pods_running=True,
    )
    node = simnode_mod.node_names(opts)[0]
    logs = tmp_path / "logs"
    first = simnode_mod.spawn(devcluster, opts, logs / "first.log")
    second: processes.ProcessRecord | None = None
    try:
        simnode_mod.wait_ready(devcluster, opts, first, timeout=60)
        pod = {
            "metadata": {"name": "sleeper"},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 2,
                "containers": [
                    {
                        "name": "main",
                        "image": "ignored",
                        "command": ["python", "-c", "import signal\nwhile True: signal.pause()"],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ],
            },
        }
        created = api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
        assert created.status_code == 201, created.text
        uid = created.json()["metadata"]["uid"]
        waiting.wait_for(lambda: "running" in _status(api, ns).get("state", {}), timeout=60, what="sleeper running")
        pid = _pid(state_dir, uid)
        assert pid is not None

        simnode_mod.stop(first, state_dir, leave_pods=True)
        assert processes.process_start_time(pid) is not None, "the Pod's process must outlive simnode"

        second = simnode_mod.spawn(devcluster, opts, logs / "second.log")
        simnode_mod.wait_ready(devcluster, opts, second, timeout=60)
        waiting.wait_for(
            lambda: "adopted container process" in (logs / "second.log").read_text(),
            timeout=30,
            what="the second simnode to adopt the sleeper",
        )
        assert _pid(state_dir, uid) == pid
        assert _status(api, ns)["restartCount"] == 0

        # The adopted process dies: the new simnode notices and restarts it per restartPolicy.
        os.kill(pid, signal.SIGKILL)
        restarted = waiting.wait_for(
            lambda: _running_after_restarts(api, ns, 1),
            timeout=60,
            what="the sleeper restarted after its adopted process died",
        )
        assert restarted["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
        new_pid = waiting.wait_for(lambda: _pid(state_dir, uid), timeout=10, what="the new sleeper process")
        assert new_pid != pid

        # Deleting the Node stops its Pods' processes.
        assert api.delete(f"/api/v1/nodes/{node}").status_code == 200
        waiting.wait_for(
            lambda: processes.process_start_time(new_pid) is None, timeout=30, what="the deleted node's Pod to stop"
        )
    finally:
        for record in (first, second):
            if record is not None:
                simnode_mod.stop(record, state_dir)
        api.delete(f"/api/v1/nodes/{node}")
        api.delete(f"/api/v1/namespaces/{ns}/pods/sleeper", params={"gracePeriodSeconds": "0"})


def test_status_only_nodes_report_pods_running_without_processes(
    api: httpx.Client, devcluster: control_plane.ClusterState, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    opts = simnode_mod.SimnodeOptions(
        nodes=0,
        status_only_nodes=2,
        gpus_per_node=4,
        node_prefix=f"kwok-{uuid.uuid4().hex[:6]}",
        gpu_map_namespace=None,
        state_dir=tmp_path / "state",
    )
    node = simnode_mod.node_names(opts)[1]
    record = simnode_mod.spawn(devcluster, opts, tmp_path / "simnode.log")
    try:
        simnode_mod.wait_ready(devcluster, opts, record, timeout=60)
        addresses = api.get(f"/api/v1/nodes/{node}").json()["status"]["addresses"]
        host_ip = next(a["address"] for a in addresses if a["type"] == "InternalIP")
        node_block_prefix = host_ip.rsplit(".", 1)[0] + "."
        pod = {
            "metadata": {"name": "phantom"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "main",
                        "image": "ignored",
                        "command": ["false"],
                        "resources": {"limits": {"nvidia.com/gpu": "4"}},
                    }
                ],
            },
        }
        assert api.post(f"/api/v1/namespaces/{ns}/pods", json=pod).status_code == 201

        def ready() -> dict[str, Any] | None:
            obj = api.get(f"/api/v1/namespaces/{ns}/pods/phantom").json()
            conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions") or []}
            return obj if conditions.get("Ready") == "True" else None

        obj = waiting.wait_for(ready, timeout=30, what="the status-only Pod to be Ready")
        assert obj["status"]["phase"] == "Running"
        assert obj["status"]["podIP"].startswith(node_block_prefix)
        assert not (tmp_path / "state" / "pods").exists(), "status-only Pods run nothing"
        assert api.delete(f"/api/v1/namespaces/{ns}/pods/phantom").status_code == 200
        waiting.wait_for(
            lambda: api.get(f"/api/v1/namespaces/{ns}/pods/phantom").status_code == 404,
            timeout=30,
            what="the status-only Pod to be deleted",
        )
    finally:
        simnode_mod.stop(record, tmp_path / "state")
        for name in simnode_mod.node_names(opts):
            api.delete(f"/api/v1/nodes/{name}")
