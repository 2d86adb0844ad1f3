"""Launcher mode with launcher auth on (issue 15): the whole flow through authenticated launchers.

The controller is given only the Secret's name; it creates the Secret with a
random token, sends that token to launchers, and specialises launcher Pods
with ``FMA_LAUNCHER_TOKEN`` from the Secret.  The launcher Pod becomes Ready
through the open ``/readyz`` probe, a requester is bound and Ready, the
launcher refuses an unauthenticated create, and the real instance process
does not carry the token in its environment.
"""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import httpx
import pytest

from devcluster import waiting
from kube import resources

from .conftest import ISC_PORT, Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"
SECRET = "fma-launcher-token"


def _instance_pid(workdir: pathlib.Path, instance_id: str) -> int:
    """The instance's main PID, from what its engine simulator logged."""
    for log in workdir.glob(f"launcher-*-vllm-{instance_id}.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"engine simulator starting"' in line:
                return int(json.loads(line)["pid"])
    raise AssertionError(f"no log of instance {instance_id} in {workdir}")


def _server_container(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "inference-server")


def test_launcher_mode_with_auth_on(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("isc1")
    harness.start_controller("--launcher-token-secret", SECRET)
    secret = harness.api.get(resources.SECRETS, SECRET, harness.namespace)
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 32

    harness.deployment("r1", "isc1")
    requester = harness.ready_requester("r1", timeout=120)
    (launcher,) = harness.launchers()
    assert requester["metadata"]["labels"][P + "dual"] == launcher["metadata"]["name"]
    server = _server_container(launcher)
    assert {"name": "FMA_LAUNCHER_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}} in server[
        "env"
    ]
    assert {"name": "FMA_LAUNCHER_MAX_INSTANCES", "value": "2"} in server["env"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"

    base = f"http://{launcher['status']['podIP']}:8001"
    instance_id = launcher["metadata"]["annotations"][P + "instance-id"]
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/readyz").json() == {"status": "ready"}
        assert anonymous.get("/v2/vllm/instances").status_code == 401
        create = anonymous.put("/v2/vllm/instances/intruder", json={"options": f"--model x --port {ISC_PORT + 7}"})
        assert create.status_code == 401
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as authorised:
        listing = authorised.get("/v2/vllm/instances").json()
    assert [i["instance_id"] for i in listing["instances"]] == [instance_id]

    pid = waiting.wait_for(
        lambda: _instance_pid(harness.workdir, instance_id),
        timeout=20,
        what="the instance to log its PID",
        ignore=(AssertionError,),
    )
    environ = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    assert b"FMA_LAUNCHER_TOKEN=" not in environ
    assert token.encode() not in environ
