"""Upstream's ``LAUNCHER_BASE_URL=http://127.0.0.1:8001`` reaches our launcher listening on ``0.0.0.0`` (its default).

The launcher is the real ``fma-launcher`` process bound to every interface
(on a free port instead of 8001, which other tests on this machine may hold);
the notifier reads it through ``127.0.0.1`` and writes what it read onto a
Pod object held by our ``PodClient`` seam (the apiserver side is covered by
tests/integration/test_upstream_interop.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes
from launcher import errors, pod_notifier

pytestmark = pytest.mark.component

POD = "/api/v1/namespaces/ns/pods/launcher-1"


class _Pod:
    def __init__(self) -> None:
        self.annotations: dict[str, str] = {}
        self.version = 1

    def get(self, path: str) -> bytes:
        assert path == POD
        return json.dumps(
            {"metadata": {"resourceVersion": str(self.version), "annotations": self.annotations}}
        ).encode()

    def patch_annotations(self, path: str, annotations: dict[str, str], resource_version: str | None = None) -> None:
        if resource_version != str(self.version):
            raise errors.ApiServerError("conflict", status=409)
        self.annotations.update(annotations)
        self.version += 1


def test_the_notifier_reads_a_launcher_on_all_interfaces_through_loopback(
    launcher_factory: Callable[..., Any], harness: Any
) -> None:
    agent = launcher_factory(host="0.0.0.0")  # the launcher's default, as in a real Pod
    port = agent.port
    options = harness.sim_options(processes.free_port())
    created = agent.client.put("/v2/vllm/instances/inst-a", json={"options": options, "gpu_uuids": ["GPU-aaaa"]})
    assert created.status_code == 201, created.text

    pod = _Pod()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as launcher:
        notifier = pod_notifier.Notifier(pod, launcher, POD)
        assert notifier.poll() == 2.0
    assert notifier.patches == 1
    inventory = json.loads(pod.annotations["dual-pods.llm-d.ai/instances"])
    assert [(i["id"], i["status"], i["gpus"]) for i in inventory["instances"]] == [("inst-a", "running", ["GPU-aaaa"])]
    assert len(pod.annotations["dual-pods.llm-d.ai/vllm-instance-signature"]) == 64
