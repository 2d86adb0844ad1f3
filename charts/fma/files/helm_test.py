"""``helm test`` for the FMA chart: one annotated Pod through the whole chain.

It creates (unless told to use an existing one) a LauncherConfig and an
InferenceServerConfig that run the engine simulator, then a Pod annotated
with ``dual-pods.llm-d.ai/inference-server-config``, and waits until the
webhook has converted it, the FMA scheduler has placed it, a launcher is
bound to it and it is Ready.  It then deletes what it made and waits until
the requester is gone (its finalizer released).  Exit status 0 means the
install works; 1 says what was missing.  Runs in the FMA image (it uses the
``kube`` package); configured by environment variables set in the chart.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import kube
from kube import errors, resources

logger = logging.getLogger("fma-helm-test")

REQUESTER_KEY = "dual-pods.llm-d.ai/requester"
CONVERTED_KEY = "dual-pods.llm-d.ai/converted"
ISC_KEY = "dual-pods.llm-d.ai/inference-server-config"


class TestFailedError(Exception):
    """The install did not do what it should; the message says what."""


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns a truthy value; raise ``TestFailedError`` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestFailedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)  # noqa: sleep-ok - polling the apiserver at a bounded rate
        delay = min(delay * 1.5, 2.0)


def launcher_config(name: str, env: dict[str, str]) -> dict[str, Any]:
    """A LauncherConfig whose launchers run fma-launcher with the engine simulator."""
    field = [
        {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for var, path in (
            ("POD_IP", "status.podIP"),
            ("POD_NAME", "metadata.name"),
            ("NAMESPACE", "metadata.namespace"),
            ("NODE_NAME", "spec.nodeName"),
        )
    ]
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {"name": name},
        "spec": {
            "maxInstances": 1,
            "podTemplate": {
                "spec": {
                    "serviceAccountName": env["FMA_TEST_LAUNCHER_SA"],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "inference-server",
                            "image": env["FMA_TEST_IMAGE"],
                            "imagePullPolicy": env["FMA_TEST_PULL_POLICY"],
                            "command": ["fma-launcher"],
                            "args": json.loads(env["FMA_TEST_LAUNCHER_ARGS"]),
                            "env": field,
                        }
                    ],
                }
            },
        },
    }


def inference_server_config(name: str, lc_name: str) -> dict[str, Any]:
    """An InferenceServerConfig for a tiny simulated model."""
    options = "--model fma-helm-test --enable-sleep-mode --sim-startup-seconds 0.3 --sim-model-gib 1"
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "InferenceServerConfig",
        "metadata": {"name": name},
        "spec": {"modelServerConfig": {"port": 8005, "options": options}, "launcherConfigName": lc_name},
    }


def requester(name: str, isc: str, env: dict[str, str]) -> dict[str, Any]:
    """An ordinary-looking server Pod, annotated for FMA; the webhook makes it a requester."""
    gpus = env["FMA_TEST_GPUS"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {ISC_KEY: isc}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "inference-server",
                    "image": env["FMA_TEST_IMAGE"],
                    "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
                }
            ],
        },
    }


def ready(pod: dict[str, Any] | None) -> bool:
    """Whether the Pod's Ready condition is True."""
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def bound_launcher(api: kube.Client, namespace: str, uid: str) -> str | None:
    """The name of the launcher whose binding record names the requester ``uid``."""
    pods, _ = api.list_all(resources.PODS, namespace, label_selector="app.kubernetes.io/component=launcher")
    for pod in pods:
        record = ((pod.get("metadata") or {}).get("annotations") or {}).get(REQUESTER_KEY, "")
        if record.split(" ")[0] == uid:
            return str(pod["metadata"]["name"])
    return None


def run(api: kube.Client, env: dict[str, str]) -> None:
    """The test itself; raises ``TestFailedError``."""
    namespace = env["FMA_TEST_NAMESPACE"]
    name = env["FMA_TEST_NAME"]
    timeout = float(env["FMA_TEST_TIMEOUT"])
    isc = env.get("FMA_TEST_ISC", "")
    made: list[tuple[resources.Resource, str]] = []
    try:
        if not isc:
            isc = name
            for resource, body in (
                (resources.LAUNCHER_CONFIGS, launcher_config(name, env)),
                (resources.INFERENCE_SERVER_CONFIGS, inference_server_config(name, name)),
            ):
                _delete_and_wait(api, resource, name, namespace, timeout)
                api.create(resource, body, namespace)
                made.append((resource, name))
        _delete_and_wait(api, resources.PODS, name, namespace, timeout)
        created = api.create(resources.PODS, requester(name, isc, env), namespace)
        made.append((resources.PODS, name))
        notes = created["metadata"].get("annotations") or {}
        if notes.get(CONVERTED_KEY) != "v1":
            raise TestFailedError(f"the webhook did not convert Pod {name!r} (annotations {sorted(notes)})")
        expected = env.get("FMA_TEST_SCHEDULER", "")
        scheduler = created["spec"].get("schedulerName")
        if expected and scheduler != expected:
            raise TestFailedError(f"Pod {name!r} has schedulerName {scheduler!r}, expected {expected!r}")
        logger.info("converted by the webhook; scheduler %s", scheduler)
        uid = created["metadata"]["uid"]
        node = wait_for(
            "the requester to be scheduled",
            lambda: (api.get(resources.PODS, name, namespace).get("spec") or {}).get("nodeName"),
            timeout,
        )
        logger.info("scheduled on node %s", node)
        launcher = wait_for("a launcher bound to the requester", lambda: bound_launcher(api, namespace, uid), timeout)
        logger.info("bound to launcher %s", launcher)
        wait_for("the requester to be Ready", lambda: ready(api.get(resources.PODS, name, namespace)), timeout)
        logger.info("requester Ready")
    finally:
        for resource, made_name in reversed(made):
            _delete_and_wait(api, resource, made_name, namespace, timeout)


def _delete_and_wait(api: kube.Client, resource: resources.Resource, name: str, namespace: str, timeout: float) -> None:
    try:
        api.delete(resource, name, namespace)
    except errors.NotFound:
        return
    wait_for(
        f"{resource.kind} {name!r} to be deleted",
        lambda: api.get_or_none(resource, name, namespace) is None,
        timeout,
    )


def main() -> int:
    """Run the test with the environment the chart sets."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    api = kube.connect(None, field_manager="fma-helm-test")
    try:
        run(api, dict(os.environ))
    except (TestFailedError, errors.KubeError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    finally:
        api.close()
    logger.info("PASSED: an annotated Pod became a bound, Ready requester")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
