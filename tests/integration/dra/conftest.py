"""DRA on the development cluster: a simnode whose node offers its GPUs as DRA devices.

``dra_simnode`` starts, for this directory's tests, a second simnode beside
the session's device-plugin one: one node with 4 GPUs in ``dra`` mode (a
ResourceSlice of driver ``gpu.nvidia.com`` and the ``fma-gpu``
DeviceClass), its ``gpu-map`` entry merged into ``default``.  Together the
two make a mixed cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crds import gpu_claims
from devcluster import control_plane, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import pytest_fixtures as simnode_fixtures


@pytest.fixture(scope="module")
def dra_simnode(devcluster: control_plane.ClusterState) -> Iterator[simnode_fixtures.RunningSimnode]:
    """One DRA-mode node with 4 GPUs, for this module."""
    opts = simnode_mod.SimnodeOptions(
        nodes=1, gpus_per_node=4, gpu_mode="dra", gpu_map_namespace="default", node_prefix=f"dra{os.getpid()}"
    )
    state_dir = simnode_mod.state_dir_of(devcluster, opts)
    record = simnode_mod.spawn(devcluster, opts, devcluster.state_dir / "logs" / "simnode-dra.log")
    try:
        simnode_mod.wait_ready(devcluster, opts, record, timeout=60.0)
        name = simnode_mod.node_names(opts)[0]
        with devcluster.http_client() as api:
            path = f"/apis/{gpu_claims.API_VERSION}/resourceslices/{name}-{gpu_claims.DRIVER_DEFAULT}"
            waiting.wait_for(lambda: api.get(path).status_code == 200, timeout=30, what="the DRA node's slice")
        yield simnode_fixtures.RunningSimnode(opts, record, state_dir, devcluster)
    finally:
        leftovers = simnode_mod.stop(record, state_dir)
        with devcluster.http_client() as api:
            for node in simnode_mod.node_names(opts):
                api.delete(f"/api/v1/nodes/{node}")
    assert leftovers == 0, f"simnode left {leftovers} container processes running; see {record.log}"


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def ok(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful response (fails the test with the body otherwise)."""
    assert response.status_code < 300, response.text
    return dict(response.json())
