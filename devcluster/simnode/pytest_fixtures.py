"""Pytest fixtures that give tests simulated GPU nodes on the session's development cluster.

``simnode`` starts one simnode (2 nodes x 2 GPUs, ``gpu-map`` in
``default``) for the whole session and stops it, with every container
process, at the end; tests share it and keep to their own namespaces
(``fresh_namespace``), which are deleted, and waited for, afterwards.  With
``FMA_DEVCLUSTER_REUSE=1`` a simnode that ``fma-dev up`` started is used
when its nodes are Ready.

Registered through ``pytest_plugins`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devcluster import control_plane, processes, waiting
from devcluster import simnode as simnode_mod

__all__ = ["RunningSimnode", "fresh_namespace", "simnode"]

SESSION_OPTIONS = simnode_mod.SimnodeOptions(nodes=2, gpus_per_node=2, gpu_map_namespace="default")


@dataclasses.dataclass(frozen=True)
class RunningSimnode:
    """A simnode the tests may use: its options, process (None when reused) and state directory."""

    options: simnode_mod.SimnodeOptions
    record: processes.ProcessRecord | None
    state_dir: pathlib.Path
    cluster: control_plane.ClusterState

    @property
    def node_names(self) -> list[str]:
        """Names of its Nodes."""
        return simnode_mod.node_names(self.options)

    def log_of(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's output so far ('' when there is none yet)."""
        path = simnode_mod.container_log(self.state_dir, namespace, pod, container)
        return path.read_text(errors="replace") if path is not None else ""


def _nodes_ready(cluster: control_plane.ClusterState, names: list[str]) -> bool:
    with cluster.http_client(timeout=5.0) as api:
        for name in names:
            response = api.get(f"/api/v1/nodes/{name}")
            if response.status_code != 200:
                return False
            conditions = response.json().get("status", {}).get("conditions") or []
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return False
    return True


@pytest.fixture(scope="session")
def simnode(devcluster: control_plane.ClusterState) -> Iterator[RunningSimnode]:
    """simnode with 2 process-running nodes x 2 GPUs, shared by the session."""
    state_dir = simnode_mod.state_dir_of(devcluster, SESSION_OPTIONS)
    reuse = os.environ.get("FMA_DEVCLUSTER_REUSE", "").lower() in ("1", "true", "yes")
    if reuse and _nodes_ready(devcluster, simnode_mod.node_names(SESSION_OPTIONS)):
        yield RunningSimnode(SESSION_OPTIONS, None, state_dir, devcluster)
        return
    # A prefix of its own gives this session's Pods loopback blocks that other
    # test sessions on the same machine (with clusters of their own) do not use.
    opts = dataclasses.replace(SESSION_OPTIONS, node_prefix=f"sim{os.getpid()}")
    state_dir = simnode_mod.state_dir_of(devcluster, opts)
    record = simnode_mod.spawn(devcluster, opts, devcluster.state_dir / "logs" / "simnode.log")
    try:
        simnode_mod.wait_ready(devcluster, opts, record, timeout=60.0)
        yield RunningSimnode(opts, record, state_dir, devcluster)
    finally:
        leftovers = simnode_mod.stop(record, state_dir)
    assert leftovers == 0, f"simnode left {leftovers} container processes running; see {record.log}"


def _namespace_gone(api: httpx.Client, name: str) -> bool:
    return api.get(f"/api/v1/namespaces/{name}").status_code == 404


@pytest.fixture
def fresh_namespace(devcluster: control_plane.ClusterState) -> Iterator[str]:
    """A new namespace with its default ServiceAccount; deleted (and waited for) after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    with devcluster.http_client() as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        waiting.wait_for(
            lambda: api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code == 200,
            timeout=30.0,
            what=f"the default ServiceAccount of {name}",
        )
        try:
            yield name
        finally:
            api.delete(f"/api/v1/namespaces/{name}")
            waiting.wait_for(lambda: _namespace_gone(api, name), timeout=90.0, what=f"namespace {name} deleted")
