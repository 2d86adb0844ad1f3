"""A harness for dual-pods controller scenarios on the development cluster.

Each test gets a fresh namespace, a LauncherConfig whose launchers run the
real ``fma-launcher`` with the engine simulator, and the real
``fma-controllers`` process (dual-pods controller only) watching that
namespace.  Requesters are raw annotated Pods or Deployments (the webhook is
not involved) running the real requester agent on simnode's GPU nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import kube
from devcluster import control_plane, processes, samples, waiting
from devcluster.simnode import pytest_fixtures as simnode_fixtures
from kube import resources

ISC_PORT = 8005
ENGINE_OPTIONS = samples.engine_sim_options()
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")


@dataclasses.dataclass
class Harness:
    """Everything a scenario needs, plus helpers to drive and inspect it."""

    api: kube.Client
    namespace: str
    cluster: control_plane.ClusterState
    simnode: simnode_fixtures.RunningSimnode
    workdir: pathlib.Path
    gpu_map_file: pathlib.Path
    controller: processes.ProcessRecord | None = None
    metrics_port: int = 0

    # --- the controller process ------------------------------------------------------------

    def controller_argv(self, port: int, *extra: str, gpu_map_namespace: str | None = None) -> list[str]:
        """The command line of ``fma-controllers`` for this namespace (later flags win)."""
        return [
            sys.executable,
            "-m",
            "controllers",
            "--namespace",
            self.namespace,
            "--kubeconfig",
            str(self.cluster.kubeconfig),
            "--gpu-map-namespace",
            gpu_map_namespace or str(self.simnode.options.gpu_map_namespace),
            "--leader-elect",
            "false",
            "--enable-populator",
            "false",
            "--debug-accelerator-memory",
            "false",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
            "--log-format",
            "text",
            *extra,
        ]

    def start_controller(self, *extra: str, gpu_map_namespace: str | None = None) -> None:
        """Start ``fma-controllers`` for this namespace and wait until it serves /readyz."""
        self.metrics_port = processes.free_port()
        argv = self.controller_argv(self.metrics_port, *extra, gpu_map_namespace=gpu_map_namespace)
        self.controller = processes.spawn("fma-controllers", argv, self.workdir / "controller.log")
        waiting.wait_for(self._controller_ready, timeout=60, what="fma-controllers /readyz", ignore=(httpx.HTTPError,))

    def _controller_ready(self) -> bool:
        if self.controller is None or not processes.is_alive(self.controller):
            raise AssertionError(f"fma-controllers exited:\n{self.controller_log()}")
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2).status_code == 200

    def stop_controller(self, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) the controller process."""
        if self.controller is not None:
            processes.stop(self.controller, grace_seconds=0.0 if kill else 10.0)
            self.controller = None

    def controller_log(self) -> str:
        path = self.workdir / "controller.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def metric_count(self, name: str, **labels: str) -> float:
        """The ``_count`` of a histogram (or a counter's value) with matching labels, summed."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    # --- objects -----------------------------------------------------------------------------

    def create(self, resource: resources.Resource, body: dict[str, Any]) -> dict[str, Any]:
        return self.api.create(resource, body, self.namespace)

    def launcher_config(self, name: str = "lc", max_instances: int = 2) -> dict[str, Any]:
        return self.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config(
                name, gpu_map_file=self.gpu_map_file, log_dir=self.workdir, max_instances=max_instances
            ),
        )

    def isc(
        self,
        name: str,
        *,
        options: str = ENGINE_OPTIONS,
        port: int = ISC_PORT,
        lc: str = "lc",
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.create(
            resources.INFERENCE_SERVER_CONFIGS,
            samples.inference_server_config(name, launcher_config_name=lc, options=options, port=port, labels=labels),
        )

    def requester_template(self, isc: str, app: str, *, node: str | None = None) -> dict[str, Any]:
        return samples.requester_template(isc, app, node=node)

    def direct_template(self, app: str, model: str, *, node: str | None = None) -> dict[str, Any]:
        """A direct-mode requester: the requester agent, plus a server patch running the engine simulator."""
        return samples.direct_requester_template(app, model, node=node)

    def direct_deployment(self, name: str, model: str, *, node: str | None = None) -> dict[str, Any]:
        return self.create(DEPLOYMENTS, samples.deployment(name, self.direct_template(name, model, node=node)))

    def deployment(self, name: str, isc: str, *, replicas: int = 1, node: str | None = None) -> dict[str, Any]:
        return self.create(
            DEPLOYMENTS, samples.deployment(name, self.requester_template(isc, name, node=node), replicas=replicas)
        )

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    # --- observation --------------------------------------------------------------------------

    def pods(self, selector: str | None = None) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return items

    def requesters(self, app: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(f"app={app}") if not p["metadata"].get("deletionTimestamp")]

    def launchers(self) -> list[dict[str, Any]]:
        return self.pods("app.kubernetes.io/component=launcher")

    def ready_requester(self, app: str, timeout: float = 90) -> dict[str, Any]:
        """Wait for exactly one Ready requester of ``app`` and return it."""

        def one_ready() -> dict[str, Any] | None:
            items = self.requesters(app)
            ready = [p for p in items if _is_ready(p)]
            return ready[0] if len(items) == 1 and ready else None

        try:
            return waiting.wait_for(one_ready, timeout=timeout, what=f"a Ready requester of {app}")
        except waiting.WaitTimeout:
            print(self.controller_log())
            raise

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get(resources.PODS, name, self.namespace)

    def launcher_instances(self, launcher: dict[str, Any]) -> dict[str, Any]:
        ip = launcher["status"]["podIP"]
        result: dict[str, Any] = httpx.get(f"http://{ip}:8001/v2/vllm/instances", timeout=10).json()
        return result

    def is_sleeping(self, launcher: dict[str, Any]) -> bool:
        ip = launcher["status"]["podIP"]
        return bool(httpx.get(f"http://{ip}:{ISC_PORT}/is_sleeping", timeout=10).json()["is_sleeping"])


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def gpu_map_table(api: kube.Client, namespace: str) -> dict[str, int]:
    """Every node's UUID → index from the gpu-map ConfigMap (UUIDs are unique across nodes)."""
    cm = api.get(resources.CONFIG_MAPS, "gpu-map", namespace)
    table: dict[str, int] = {}
    for value in (cm.get("data") or {}).values():
        table.update({k: int(v) for k, v in json.loads(value).items()})
    return table


@pytest.fixture
def harness(
    devcluster: control_plane.ClusterState,
    simnode: simnode_fixtures.RunningSimnode,
    fresh_namespace: str,
    fma_crds: list[str],
    tmp_path: pathlib.Path,
) -> Iterator[Harness]:
    api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-test")
    gpu_map_file = tmp_path / "gpu-map.json"
    gpu_map_file.write_text(json.dumps(gpu_map_table(api, simnode.options.gpu_map_namespace)))
    h = Harness(api, fresh_namespace, devcluster, simnode, tmp_path, gpu_map_file)
    # Launchers publish their inventory on their own Pod (docs/launcher.md, "Publishing the
    # inventory on the launcher Pod"): the namespace's default ServiceAccount may get and
    # patch Pods, as the chart grants.
    rbac = "rbac.authorization.k8s.io"
    api.create(
        resources.Resource(rbac, "v1", "roles", "Role"),
        {
            "metadata": {"name": "launcher"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
        },
        fresh_namespace,
    )
    api.create(
        resources.Resource(rbac, "v1", "rolebindings", "RoleBinding"),
        {
            "metadata": {"name": "launcher"},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "launcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": fresh_namespace}],
        },
        fresh_namespace,
    )
    try:
        yield h
    finally:
        h.stop_controller()
        # Let the namespace deletion go through: drop our finalizers from what is left.
        for pod in h.pods():
            if pod["metadata"].get("finalizers"):
                with contextlib.suppress(kube.errors.NotFound):
                    api.patch(resources.PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, h.namespace)
        api.close()
