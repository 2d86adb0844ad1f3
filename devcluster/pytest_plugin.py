"""Pytest fixtures that give tests a real development cluster.

``devcluster`` starts one control plane per test session (in a temporary
state directory, on free ports) and stops it at the end.  With
``FMA_DEVCLUSTER_REUSE=1`` it instead uses the cluster that ``fma-dev up``
started (``$FMA_DEVCLUSTER_DIR`` or the default state directory) and leaves
it running, for fast local iteration.

Tests that use these fixtures carry the ``cluster`` marker.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from devcluster import control_plane, errors, waiting

__all__ = ["devcluster", "fma_crds", "kube_api_client"]


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


def _established(api: k8s_client.ApiextensionsV1Api, name: str) -> bool:
    crd = api.read_custom_resource_definition(name)
    conditions = (crd.status.conditions if crd.status is not None else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.fixture(scope="session")
def fma_crds(kube_api_client: k8s_client.ApiClient) -> list[str]:
    """FMA's CustomResourceDefinitions (from ``crds/manifests``), applied and Established; returns their names."""
    api = k8s_client.ApiextensionsV1Api(kube_api_client)
    manifest_dir = pathlib.Path(__file__).resolve().parent.parent / "crds" / "manifests"
    applied = []
    for path in sorted(manifest_dir.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        name = document["metadata"]["name"]
        try:
            current = api.read_custom_resource_definition(name)
        except k8s_client.ApiException as exc:
            if exc.status != 404:
                raise
            api.create_custom_resource_definition(document)
        else:
            document["metadata"]["resourceVersion"] = current.metadata.resource_version if current.metadata else None
            api.replace_custom_resource_definition(name, document)
        applied.append(name)
    for name in applied:
        waiting.wait_for(functools.partial(_established, api, name), timeout=60, what=f"CRD {name} Established")
    return applied
