"""An FMA chart release on a development cluster: helm as the cluster's admin, and reading the release.

The chart's cluster tests (``tests/integration/chart``) install the chart
into a cluster of their own and share the release through
``InstalledChart``; this module holds what they share, so that the test
modules can import it (conftest modules cannot be imported).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
from typing import Any

import kube
from devcluster import binaries, control_plane, errors
from devcluster import simnode as simnode_mod
from kube import resources

__all__ = [
    "CHART",
    "COMPONENTS",
    "DEPLOYMENTS",
    "INSTANCE_SELECTOR",
    "NAMESPACE",
    "RELEASE",
    "InstalledChart",
    "deployment_settled",
    "pod_ready",
]

RELEASE = "fma"
NAMESPACE = "fma-system"
CHART = pathlib.Path(__file__).resolve().parents[1] / "charts" / "fma"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
INSTANCE_SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
COMPONENTS = ("controllers", "webhook", "extender", "scheduler")


@dataclasses.dataclass
class InstalledChart:
    """The cluster, its simnode and the release; helpers to run helm and read the cluster."""

    cluster: control_plane.ClusterState
    api: kube.Client
    simnode_state_dir: pathlib.Path
    workdir: pathlib.Path
    node_names: list[str]
    values: pathlib.Path
    release: str = RELEASE
    namespace: str = NAMESPACE

    def helm(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run helm against the cluster as its admin; raises ``HelmFailed`` when ``check`` and it fails."""
        home = self.workdir / "helm"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        result = subprocess.run(
            [str(binaries.locate().helm), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise errors.HelmFailed(f"helm {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def install_args(self, *extra: str) -> list[str]:
        """``helm install``/``upgrade`` arguments of the release with the dev-cluster values."""
        return [
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--values",
            str(self.values),
            "--wait",
            "--timeout",
            "5m",
            *extra,
        ]

    def log_of(self, pod: str, container: str | None = None, namespace: str = NAMESPACE) -> str:
        """A container's output so far ('' when none)."""
        path = simnode_mod.container_log(self.simnode_state_dir, namespace, pod, container)
        return path.read_text(errors="replace") if path is not None else ""

    def pods(self, selector: str = INSTANCE_SELECTOR) -> list[dict[str, Any]]:
        """The release namespace's Pods matching ``selector``."""
        items, _ = self.api.list_all(resources.PODS, NAMESPACE, label_selector=selector)
        return items

    def deployments(self) -> list[dict[str, Any]]:
        """The release's Deployments."""
        items, _ = self.api.list_all(DEPLOYMENTS, NAMESPACE, label_selector=INSTANCE_SELECTOR)
        return items

    def all_available(self) -> bool:
        """Whether every Deployment of the release is Available with all replicas updated and ready."""
        found = self.deployments()
        return len(found) == len(COMPONENTS) and all(deployment_settled(d) for d in found)


def pod_ready(pod: dict[str, Any] | None) -> bool:
    """Whether the Pod's Ready condition is True."""
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def deployment_settled(deployment: dict[str, Any]) -> bool:
    """Available, rolled out to its current generation, every replica updated and ready, none extra."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])
    return (
        available
        and status.get("observedGeneration") == deployment["metadata"].get("generation")
        and status.get("updatedReplicas", 0) == wanted
        and status.get("readyReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
    )
