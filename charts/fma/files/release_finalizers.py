"""The chart's pre-delete hook: nothing of FMA may hang on a finalizer once the controllers are gone.

``helm uninstall`` removes the controllers, which are the only ones that
release the ``dual-pods.llm-d.ai/requester`` and ``dual-pods.llm-d.ai/provider``
finalizers.  Before that happens this hook scales the controllers to zero,
waits until none runs (so none re-adds a finalizer), and removes those two
finalizers from every Pod of the namespace.  Requesters and launchers keep
running as ordinary Pods; deleting them afterwards completes at once.
Configured by environment variables set in the chart; exit status 0 or 1.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import kube
from kube import errors, resources

logger = logging.getLogger("fma-release-finalizers")

FINALIZERS = ("dual-pods.llm-d.ai/requester", "dual-pods.llm-d.ai/provider")
DEPLOYMENTS = resources.custom("apps", "v1", "deployments", "Deployment")


def stop_controllers(api: kube.Client, namespace: str, name: str, selector: str, timeout: float) -> None:
    """Scale the controllers' Deployment to zero and wait until none of its Pods is left."""
    try:
        api.patch(DEPLOYMENTS, name, {"spec": {"replicas": 0}}, namespace)
    except errors.NotFound:
        logger.info("controllers Deployment %s is already gone", name)
    deadline = time.monotonic() + timeout
    while True:
        pods, _ = api.list_all(resources.PODS, namespace, label_selector=selector)
        if not pods:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pods)} controllers Pod(s) still running after {timeout:.0f}s")
        time.sleep(0.5)  # noqa: sleep-ok - polling the apiserver at a bounded rate


def release(api: kube.Client, namespace: str, pod: dict[str, Any]) -> bool:
    """Remove FMA's finalizers from ``pod`` (retrying on conflicts); whether it held any."""
    name = pod["metadata"]["name"]
    for _ in range(10):
        held = pod["metadata"].get("finalizers") or []
        kept = [f for f in held if f not in FINALIZERS]
        if kept == held:
            return False
        patch = {"metadata": {"finalizers": kept or None, "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            api.patch(resources.PODS, name, patch, namespace)
        except errors.NotFound:
            return False
        except errors.Conflict:
            pod = api.get(resources.PODS, name, namespace)
            continue
        logger.info("released %s from Pod %s", ", ".join(sorted(set(held) - set(kept))), name)
        return True
    raise RuntimeError(f"Pod {name!r} kept changing; its finalizers were not released")


def main() -> int:
    """Run the hook with the environment the chart sets."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    env = os.environ
    namespace = env["FMA_NAMESPACE"]
    api = kube.connect(None, field_manager="fma-uninstall")
    try:
        stop_controllers(
            api, namespace, env["FMA_CONTROLLERS"], env["FMA_CONTROLLERS_SELECTOR"], float(env["FMA_TIMEOUT"])
        )
        pods, _ = api.list_all(resources.PODS, namespace)
        released = sum(release(api, namespace, pod) for pod in pods)
    except (errors.KubeError, TimeoutError, RuntimeError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    finally:
        api.close()
    logger.info("done: released FMA finalizers from %d Pod(s)", released)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
