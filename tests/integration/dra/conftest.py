"""DRA on the development cluster: a simnode whose node offers its GPUs as DRA devices.

``dra_simnode`` starts, for this directory's tests, a second simnode beside
the session's device-plugin one: one node with 4 GPUs in ``dra`` mode (a
ResourceSlice of driver ``gpu.nvidia.com`` and the ``fma-gpu``
DeviceClass), its ``gpu-map`` entry merged into ``default``.  Together the
two make a mixed cluster.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from controllers import claim_keeper
from crds import gpu_claims, keys
from devcluster import control_plane, samples, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import pytest_fixtures as simnode_fixtures
from kube import resources
from webhook import gpu_claim

from .. import placement_stack
from ..placement_stack import DEPLOYMENTS, P


@pytest.fixture(scope="module")
def dra_simnode(devcluster: control_plane.ClusterState) -> Iterator[simnode_fixtures.RunningSimnode]:
    """One DRA-mode node with 4 GPUs, for this module."""
    # A state directory of its own: stopping this simnode stops every process recorded there.
    opts = simnode_mod.SimnodeOptions(
        nodes=1,
        gpus_per_node=4,
        gpu_mode="dra",
        gpu_map_namespace="default",
        node_prefix=f"dra{os.getpid()}",
        state_dir=devcluster.state_dir / "simnode-dra",
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


@dataclasses.dataclass
class Stack(placement_stack.Stack):
    """The real webhook (DRA by default), the real controllers (with the claim keeper), one DRA node."""

    dra_node: str
    plugin_node: str
    kubeconfig: pathlib.Path

    def deploy(self, name: str, *, node: str, gpus: int = 1, gpu_request: str | None = None) -> None:
        """What a user writes (an ``inference-server`` container, the ISC annotation), pinned to ``node``."""
        annotations = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"}
        if gpu_request:
            annotations[gpu_claim.GPU_REQUEST_ANNOTATION] = gpu_request
        container = {
            "name": "inference-server",
            "image": "vllm/vllm-openai",
            "command": ["vllm", "serve", "tiny"],
            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        }
        template = {
            "metadata": {"labels": {"app": name}, "annotations": annotations},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "nodeSelector": {"kubernetes.io/hostname": node},
                "containers": [container],
            },
        }
        self.api.create(DEPLOYMENTS, samples.deployment(name, template), self.namespace)

    def claim_of(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        name = gpu_claims.claim_name_of(pod)
        assert name is not None, pod["metadata"]["name"]
        found: dict[str, Any] | None = self.api.get_or_none(claim_keeper.RESOURCE_CLAIMS, name, self.namespace)
        return found

    def scale_to_zero_and_sleep(self, app: str, launcher_name: str) -> None:
        """Scale ``app`` to 0 and wait until its instance sleeps and the webhook sees its GPUs free."""
        self.scale(app, 0)
        waiting.wait_for(
            lambda: not self.api.list_all(resources.PODS, self.namespace, label_selector=f"app={app}")[0],
            timeout=60,
            what=f"the requesters of {app} gone",
        )

        def asleep() -> bool:
            meta = self.api.get(resources.PODS, launcher_name, self.namespace)["metadata"]
            return meta["labels"].get(P + "sleeping") == "true"

        waiting.wait_for(asleep, timeout=60, what="the launcher asleep")

        def seen_free() -> bool:
            view = self.hints.cache.node(self.dra_node)
            if view is None:
                return False
            sleeping = {g for s in view.sleepers() for g in s.gpus}
            return bool(sleeping) and not (sleeping & view.held)

        waiting.wait_for(seen_free, timeout=30, what="the webhook's cache to see the sleeper's GPUs free")


stack_opener = placement_stack.stack_opener


@pytest.fixture
def stack(
    devcluster: control_plane.ClusterState,
    simnode: simnode_fixtures.RunningSimnode,
    dra_simnode: simnode_fixtures.RunningSimnode,
    stack_opener: placement_stack.StackOpener,
) -> Stack:
    """Webhook (``gpu_claims: dra``, default scheduler), controllers with the claim keeper, launchers."""
    return stack_opener.open(
        Stack,
        name="fma-dra-test",
        gpu_map_namespace="default",
        webhook_settings={"scheduler_name": "", "gpu_claims": "dra"},
        extra={
            "dra_node": dra_simnode.node_names[0],
            "plugin_node": simnode.node_names[0],
            "kubeconfig": devcluster.kubeconfig,
        },
    )
