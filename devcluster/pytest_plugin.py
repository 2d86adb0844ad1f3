"""Pytest fixtures that give tests a real development cluster.

``devcluster`` starts one control plane per test session (in a temporary
state directory, on free ports) and stops it at the end.  With
``FMA_DEVCLUSTER_REUSE=1`` it instead uses the cluster that ``fma-dev up``
started (``$FMA_DEVCLUSTER_DIR`` or the default state directory) and leaves
it running, for fast local iteration.

Tests that use these fixtures carry the ``cluster`` marker.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from devcluster import control_plane, errors

__all__ = ["devcluster", "kube_api_client"]


def _reuse_requested() -> bool:
    return os.environ.get("FMA_DEVCLUSTER_REUSE", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def devcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control_plane.ClusterState]:
    """A running control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler."""
    if _reuse_requested():
        state_dir = control_plane.default_state_dir()
        state = control_plane.load(state_dir)
        if state is None or not all(state.alive().values()):
            raise errors.NotRunning(
                f"FMA_DEVCLUSTER_REUSE is set but no cluster runs from {str(state_dir)!r}; start one with 'fma-dev up'"
            )
        yield state
        return
    state_dir = pathlib.Path(tmp_path_factory.mktemp("devcluster"))
    state = control_plane.up(control_plane.ClusterOptions(state_dir=state_dir, apiserver_port=None))
    try:
        yield state
    finally:
        control_plane.down(state_dir, grace_seconds=5.0)


@pytest.fixture(scope="session")
def kube_api_client(devcluster: control_plane.ClusterState) -> Iterator[k8s_client.ApiClient]:
    """An official kubernetes ``ApiClient`` authenticated as the cluster admin."""
    api = k8s_config.new_client_from_config(config_file=str(devcluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()
