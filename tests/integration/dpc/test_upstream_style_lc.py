"""A LauncherConfig written the upstream way still gets a crashed instance noticed (issue 16, item 2).

Upstream's controller gives the launcher container no ``POD_NAME`` or
``NAMESPACE`` (only its notifier sidecar gets them), and neither does our
template specialisation (controllers/launcher_template.py, step 7).  The
controller learns of a crash only from an update of the launcher Pod, which
our in-process publisher writes after finding its Pod from the
service-account token (launcher/pod_identity.py).  So: with the real
``fma-controllers``, a launcher built from such a LauncherConfig serves a
requester; its engine process is killed; the launcher Pod's
``vllm-instance-signature`` changes, the requester is deleted and its
ReplicaSet's replacement is served by a live instance.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import httpx
import pytest

from devcluster import samples, waiting
from kube import resources

from .conftest import Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"
SIGNATURE = P + "vllm-instance-signature"
IDENTITY_ENV = {"POD_NAME", "NAMESPACE"}
NOTICE_LIMIT_SECONDS = 15.0
"""Crash to requester deletion: the publisher's patch (well under 1 s) plus a reconcile on a busy 2-core machine."""


def _env_names(container: dict[str, Any]) -> set[str]:
    return {str(e["name"]) for e in container.get("env") or []}


def _engine_pid(launcher_ip: str, instance_id: str) -> int | None:
    url = f"http://{launcher_ip}:8001/v2/vllm/instances/{instance_id}/log"
    for line in httpx.get(url, timeout=10).content.splitlines():
        record = json.loads(line)
        if record.get("msg") == "engine simulator starting":
            return int(record["pid"])
    return None


def test_an_upstream_style_launcher_config_gets_a_crashed_instance_replaced(harness: Harness) -> None:
    lc = samples.launcher_config("lc", gpu_map_file=harness.gpu_map_file, log_dir=harness.workdir)
    template_container = lc["spec"]["podTemplate"]["spec"]["containers"][0]
    assert not _env_names(template_container) & IDENTITY_ENV, "the LauncherConfig must be upstream-style"
    harness.create(resources.LAUNCHER_CONFIGS, lc)
    harness.isc("isc1")
    harness.start_controller()
    harness.deployment("r1", "isc1", node=harness.simnode.node_names[0])
    first = harness.ready_requester("r1")
    launcher = harness.get(first["metadata"]["labels"][P + "dual"])
    instance_id = first["metadata"]["labels"][P + "instance"]

    # The launcher Pod the controller built carries no downward-API identity on any container.
    for container in launcher["spec"]["containers"]:
        assert not _env_names(container) & IDENTITY_ENV, container.get("env")
    assert [c["name"] for c in launcher["spec"]["containers"]] == ["inference-server"], "no sidecar was added"

    ip = launcher["status"]["podIP"]
    signature = waiting.wait_for(
        lambda: (harness.get(launcher["metadata"]["name"])["metadata"].get("annotations") or {}).get(SIGNATURE),
        timeout=10,
        what="the publisher's signature of the running instance",
    )
    pid = waiting.wait_for(lambda: _engine_pid(ip, instance_id), timeout=20, what="the engine's PID")
    assert pid is not None
    assert pid > 1

    # The engine crashes.
    crashed = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    def signature_now() -> str | None:
        notes = harness.get(launcher["metadata"]["name"])["metadata"].get("annotations") or {}
        value = notes.get(SIGNATURE)
        return None if value is None else str(value)

    waiting.wait_for(
        lambda: signature_now() not in (None, signature),
        timeout=15,
        interval=0.02,
        what="the publisher to reflect the crash in the launcher Pod's signature",
    )

    def requester_going() -> bool:
        pods = [p for p in harness.pods("app=r1") if p["metadata"]["uid"] == first["metadata"]["uid"]]
        return not pods or bool(pods[0]["metadata"].get("deletionTimestamp"))

    waiting.wait_for(requester_going, timeout=60, interval=0.05, what="the controller to delete the requester")
    noticed = time.monotonic() - crashed
    assert noticed < NOTICE_LIMIT_SECONDS, noticed

    # The ReplicaSet's replacement is served by a live instance.
    def replaced() -> dict[str, Any] | None:
        items = [p for p in harness.requesters("r1") if p["metadata"]["uid"] != first["metadata"]["uid"]]
        return items[0] if items else None

    waiting.wait_for(replaced, timeout=60, what="the ReplicaSet to replace the deleted requester")
    second = harness.ready_requester("r1")
    bound = harness.get(second["metadata"]["labels"][P + "dual"])
    listing = harness.launcher_instances(bound)["instances"]
    live = {i["instance_id"]: i["status"] for i in listing}
    assert live.get(second["metadata"]["labels"][P + "instance"]) not in (None, "stopped"), listing
