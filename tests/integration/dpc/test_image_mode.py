"""simnode's image mode: a launcher Pod runs from the launcher image that ``make images`` built.

A second simnode (one node, image mode on) joins the session's cluster with
the archives of ``devcluster.image_build`` (built once per machine and
source tree, then cached).  The LauncherConfig names the launcher image and
passes nothing from the host: the GPU map comes from a ConfigMap volume, the
logs go to an emptyDir, the command is found on the image's own PATH.  The
requester agent's image is not among the archives, so it runs on the host,
and simnode says so with an Event.  A missing file, a wrong entrypoint or a
missing dependency in the image fails this test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import control_plane, image_build, processes, samples, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import runtime_record
from kube import resources

from .conftest import Harness

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1500)]  # the first test may pay the image build

P = "dual-pods.llm-d.ai/"


@dataclasses.dataclass(frozen=True)
class ImageNode:
    name: str
    images: image_build.BuildResult
    state_dir: pathlib.Path
    record: processes.ProcessRecord


@pytest.fixture(scope="module")
def built_images() -> image_build.BuildResult:
    return image_build.build()


@pytest.fixture
def image_node(devcluster: control_plane.ClusterState, built_images: image_build.BuildResult) -> Iterator[ImageNode]:
    opts = simnode_mod.SimnodeOptions(
        nodes=1,
        gpus_per_node=2,
        gpu_map_namespace="default",
        node_prefix=f"img{os.getpid()}",
        image_archives=built_images.directory,
        state_dir=devcluster.state_dir / "simnode-image-mode",  # its own: stopping it stops only its Pods
    )
    state_dir = simnode_mod.state_dir_of(devcluster, opts)
    record = simnode_mod.spawn(devcluster, opts, devcluster.state_dir / "logs" / f"simnode-{opts.node_prefix}.log")
    try:
        simnode_mod.wait_ready(devcluster, opts, record, timeout=60.0)
        yield ImageNode(simnode_mod.node_names(opts)[0], built_images, state_dir, record)
    finally:
        leftovers = simnode_mod.stop(record, state_dir)
        with devcluster.http_client() as api:
            api.delete(f"/api/v1/nodes/{simnode_mod.node_names(opts)[0]}")
    assert leftovers == 0


def image_launcher_config(harness: Harness, image: str, node: str) -> None:
    """A LauncherConfig whose launchers run from ``image`` with nothing from the host's file system."""
    table = harness.api.get(resources.CONFIG_MAPS, "gpu-map", "default")["data"][node]
    harness.create(resources.CONFIG_MAPS, {"metadata": {"name": "launcher-gpus"}, "data": {"gpu-map.json": table}})
    body = samples.launcher_config(
        "lc",
        gpu_map_file=pathlib.Path("/etc/fma/gpu-map.json"),
        log_dir=pathlib.Path("/var/log/fma"),
        command=["fma-launcher"],
    )
    spec = body["spec"]["podTemplate"]["spec"]
    container = spec["containers"][0]
    container["image"] = image
    container["volumeMounts"] = [
        {"name": "gpus", "mountPath": "/etc/fma", "readOnly": True},
        {"name": "logs", "mountPath": "/var/log/fma"},
    ]
    spec["volumes"] = [{"name": "gpus", "configMap": {"name": "launcher-gpus"}}, {"name": "logs", "emptyDir": {}}]
    harness.create(resources.LAUNCHER_CONFIGS, body)


def _events(harness: Harness, reason: str) -> list[dict[str, Any]]:
    items, _ = harness.api.list_all(resources.EVENTS, harness.namespace)
    return [e for e in items if e.get("reason") == reason]


def _container_root(image_node: ImageNode, pod: dict[str, Any]) -> str:
    """Where the Pod's first container process sees ``/`` (the image's overlay, or the host's ``/``)."""
    record = runtime_record.load(image_node.state_dir, pod["metadata"]["uid"])
    assert record is not None
    (entry,) = [e for e in record.containers.values() if e.process is not None]
    assert entry.process is not None
    return os.readlink(f"/proc/{entry.process.pid}/root")


def test_a_launcher_from_the_image_serves_and_the_controller_actuates_hot_through_it(
    harness: Harness, image_node: ImageNode
) -> None:
    image_launcher_config(harness, image_node.images.launcher.name, image_node.name)
    harness.isc("isc1", labels={"model": "tiny"})
    harness.start_controller()
    harness.deployment("r1", "isc1", node=image_node.name)
    first = harness.ready_requester("r1", timeout=180)
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]
    launcher = harness.get(launcher_name)
    assert launcher["spec"]["nodeName"] == image_node.name
    # The launcher process really lives in the image's root file system; the requester agent on the host.
    assert _container_root(image_node, launcher).endswith("/merged")
    assert _container_root(image_node, first) == "/"
    fallbacks = _events(harness, "HostProcess")
    assert {e["involvedObject"]["name"] for e in fallbacks} == {first["metadata"]["name"]}
    assert "is not among simnode's image archives" in fallbacks[0]["message"]
    ip = launcher["status"]["podIP"]
    health = httpx.get(f"http://{ip}:8001/health", timeout=10)
    assert health.status_code == 200
    assert [i["instance_id"] for i in harness.launcher_instances(launcher)["instances"]] == [instance_id]

    # Scale down: the instance sleeps in the image's launcher; scale up: the same instance is woken (hot).
    harness.scale("r1", 0)
    waiting.wait_for(lambda: not harness.pods("app=r1"), timeout=90, what="the requester to be gone")
    assert harness.is_sleeping(harness.get(launcher_name))
    harness.scale("r1", 1)
    second = harness.ready_requester("r1", timeout=120)
    assert second["metadata"]["labels"][P + "dual"] == launcher_name
    assert second["metadata"]["labels"][P + "instance"] == instance_id
    waiting.wait_for(
        lambda: harness.metric_count("fma_actuation_seconds_count", path="hot", isc_name="isc1") == 1,
        timeout=10,
        what="one hot actuation observed",
    )
    # The launcher reaches the apiserver from inside the image with its Pod's service-account token.
    try:
        inventory = waiting.wait_for(
            lambda: json.loads(harness.get(launcher_name)["metadata"]["annotations"].get(P + "instances") or "null"),
            timeout=20,
            what="the launcher's inventory annotation",
        )
    except waiting.WaitTimeout:
        log = simnode_mod.container_log(image_node.state_dir, harness.namespace, launcher_name)
        print(log.read_text()[-4000:] if log is not None else "no launcher log")
        raise
    assert [i["id"] for i in inventory["instances"]] == [instance_id]


def _ids_pod(name: str, node: str, image: str, pod_context: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """A Pod whose two containers print the uid, gid, supplementary groups and HOME they run with.

    And whether the image's ``/tmp`` is writable (``rw``) or read-only (``ro``, EROFS).
    """
    show = (
        "import errno, os\n"
        "try:\n"
        "    open('/tmp/probe', 'w').close(); root = 'rw'\n"
        "except OSError as e:\n"
        "    root = 'ro' if e.errno == errno.EROFS else e.strerror\n"
        "print(os.getuid(), os.getgid(), sorted(os.getgroups()), os.environ['HOME'], root)"
    )
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "securityContext": pod_context,
            "containers": [
                {"name": "pod-level", "image": image, "command": ["python3", "-c", show]},
                {"name": "own", "image": image, "command": ["python3", "-c", show], "securityContext": own},
            ],
        },
    }


def _phase(harness: Harness, name: str) -> str:
    return str((harness.get(name).get("status") or {}).get("phase") or "")


def test_the_security_context_sets_the_user_a_container_runs_as_in_its_image(
    harness: Harness, image_node: ImageNode
) -> None:
    image = image_node.images.fma.name
    pod_context = {"runAsUser": 1234, "runAsGroup": 2345, "supplementalGroups": [3456], "runAsNonRoot": True}
    own = {"runAsUser": 65532, "readOnlyRootFilesystem": True}
    harness.create(resources.PODS, _ids_pod("ids", image_node.name, image, pod_context, own))
    waiting.wait_for(lambda: _phase(harness, "ids") == "Succeeded", timeout=120, what="the Pod to succeed")
    printed = {}
    for container in ("pod-level", "own"):
        log = simnode_mod.container_log(image_node.state_dir, harness.namespace, "ids", container)
        assert log is not None
        printed[container] = log.read_text().strip().splitlines()[-1]
    # The Pod's user and group (1234 is not in the image's passwd: HOME is /); the container's own runAsUser
    # wins over the Pod's and its group stays the Pod's runAsGroup; HOME comes from the image's passwd; its
    # readOnlyRootFilesystem makes the image's root read-only, the other container's stays writable.
    assert printed == {"pod-level": "1234 2345 [3456] / rw", "own": "65532 2345 [3456] /home/fma ro"}

    # runAsNonRoot with runAsUser 0: the container does not start, as the kubelet refuses it.
    harness.create(resources.PODS, _ids_pod("as-root", image_node.name, image, pod_context, {"runAsUser": 0}))

    def refused() -> dict[str, Any] | None:
        statuses = (harness.get("as-root").get("status") or {}).get("containerStatuses") or []
        own = next((s for s in statuses if s["name"] == "own"), None)
        waiting_state = ((own or {}).get("state") or {}).get("waiting") or {}
        return waiting_state if waiting_state.get("reason") == "CreateContainerConfigError" else None

    state = waiting.wait_for(refused, timeout=60, what="the root container refused with CreateContainerConfigError")
    assert "runAsUser breaks non-root policy" in state["message"]
