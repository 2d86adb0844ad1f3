"""The system under test of the e2e scenarios: the dev cluster with the FMA chart installed.

``E2ESystem`` is what the session fixture (``conftest.e2e``) yields.  It holds
the installed release (``devcluster.helm_release.InstalledChart``, the same
install path as the chart's cluster tests), simnode (3 GPU nodes x 4 GPUs),
the watch-fed view of the release namespace (``cluster_watch``), the images
our containers run from (``images``; None when they run on the host), and the
actions and reads every scenario needs: create and scale Deployments, read
requesters and their providers, talk to a launcher's API with the chart's
token, restart the controllers or simnode, and find this session's engine
processes on the machine.

Scenarios of every group (A, B and the fault scenarios C) use only this
object, so a new test file needs no fixture of its own.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import httpx

import kube
from devcluster import control_plane, helm_release, image_build, processes, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import container_process, runtime_record
from kube import resources

from . import cluster_watch, manifests

__all__ = ["E2ESystem", "EngineProcess", "P"]

P = "dual-pods.llm-d.ai/"
"""The prefix of FMA's Pod metadata keys."""
LAUNCHER_API_PORT = 8001
LAUNCHER_SELECTOR = {"app.kubernetes.io/component": "launcher"}
DEPLOYMENTS = helm_release.DEPLOYMENTS
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class EngineProcess:
    """An engine process of this session found on the machine (see ``E2ESystem.engine_processes``)."""

    pid: int
    pod: str
    """The Pod it belongs to (for a detached process: the Pod it was started for)."""
    role: str
    """``direct``, ``instance`` or ``detached``."""
    gpus: str


@dataclasses.dataclass
class E2ESystem:
    """The installed chart on the dev cluster, and what the scenarios do with it."""

    chart: helm_release.InstalledChart
    watch: cluster_watch.ClusterWatch
    simnode_options: simnode_mod.SimnodeOptions
    simnode_record: processes.ProcessRecord
    run_token: str
    logs: pathlib.Path
    last_check: float = 0.0
    """``time.monotonic()`` of the last passing ``invariants.check_all`` (the autouse guard reads it)."""
    images: image_build.BuildResult | None = None
    """The images simnode runs our containers from (image mode); None: every container runs on the host."""

    # --- identity -----------------------------------------------------------------------------

    @property
    def api(self) -> kube.Client:
        return self.chart.api

    @property
    def cluster(self) -> control_plane.ClusterState:
        return self.chart.cluster

    @property
    def namespace(self) -> str:
        return self.chart.namespace

    @property
    def node_names(self) -> list[str]:
        return list(self.chart.node_names)

    @property
    def launcher_service_account(self) -> str:
        return f"{self.chart.release}-fma-launcher"

    def wait(self, condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """``ClusterWatch.wait``: the condition's first truthy value within ``timeout`` seconds."""
        return self.watch.wait(condition, timeout=timeout, what=what)

    # --- objects --------------------------------------------------------------------------------

    def create(self, resource: resources.Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.api.create(resource, dict(body), self.namespace)

    def delete(self, resource: resources.Resource, name: str, **options: Any) -> None:
        with contextlib.suppress(kube.errors.NotFound):
            self.api.delete(resource, name, self.namespace, **options)

    def scale(self, deployment: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, deployment, {"spec": {"replicas": replicas}}, self.namespace)

    def set_template_annotation(self, deployment: str, key: str, value: str) -> None:
        """Change one annotation of a Deployment's Pod template (a new ReplicaSet follows)."""
        patch = {"spec": {"template": {"metadata": {"annotations": {key: value}}}}}
        self.api.patch(DEPLOYMENTS, deployment, patch, self.namespace)

    def patch_isc_options(self, name: str, options: str) -> None:
        self.api.patch(
            resources.INFERENCE_SERVER_CONFIGS,
            name,
            {"spec": {"modelServerConfig": {"options": options}}},
            self.namespace,
        )

    # --- reads (from the watch-fed caches) ---------------------------------------------------------

    def requesters(self, app: str) -> list[dict[str, Any]]:
        """The set's Pods that are not being deleted."""
        return self.watch.live_pods({"app": app})

    def launchers(self) -> list[dict[str, Any]]:
        """Launcher Pods not being deleted."""
        return self.watch.live_pods(LAUNCHER_SELECTOR)

    def launchers_on(self, node: str) -> list[dict[str, Any]]:
        return [p for p in self.launchers() if p["spec"].get("nodeSelector", {}).get("kubernetes.io/hostname") == node]

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.watch.pod(name)

    def bound_requester(self, app: str) -> dict[str, Any] | None:
        """The set's only requester once it is Ready and bound both ways (its provider records its UID)."""
        pods = self.requesters(app)
        if len(pods) != 1 or not helm_release.pod_ready(pods[0]):
            return None
        requester = pods[0]
        provider = self.pod(requester["metadata"].get("labels", {}).get(P + "dual", ""))
        if provider is None or provider["metadata"].get("labels", {}).get(P + "dual") != requester["metadata"]["name"]:
            return None
        record = provider["metadata"].get("annotations", {}).get(P + "requester", "")
        return requester if record.split(" ")[0] == requester["metadata"]["uid"] else None

    def wait_bound(self, app: str, *, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait for the set's only requester to be Ready and bound; return (requester, provider)."""
        requester = self.wait(
            lambda: self.bound_requester(app), timeout=timeout, what=f"the requester of {app} Ready and bound"
        )
        provider = self.pod(requester["metadata"]["labels"][P + "dual"])
        assert provider is not None
        return requester, provider

    def wait_no_requesters(self, app: str, *, timeout: float) -> None:
        """Wait until no Pod of the set exists (finalizers released, Pods removed)."""
        self.wait(lambda: not self.watch.all_pods({"app": app}), timeout=timeout, what=f"every Pod of {app} gone")

    def actuation_reason(self, requester: Mapping[str, Any], *, timeout: float = 20.0) -> str:
        """The requester's ``Actuated*`` Event reason (Hot, Warm or Cold), once recorded."""

        def reason() -> str | None:
            found = [r for r in self.watch.reasons_of(requester) if r.startswith("Actuated")]
            return found[-1] if found else None

        return str(self.wait(reason, timeout=timeout, what=f"an Actuated* Event on {requester['metadata']['name']}"))

    # --- launchers and engines ---------------------------------------------------------------------

    def launcher_token(self) -> str | None:
        """The chart's launcher API token (None when launcher auth is off)."""
        secret = self.api.get_or_none(resources.SECRETS, f"{self.launcher_service_account}-token", self.namespace)
        if secret is None:
            return None
        return base64.b64decode(secret["data"]["token"]).decode()

    def launcher_http(self) -> httpx.Client:
        token = self.launcher_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(headers=headers, timeout=10.0)

    def launcher_instances(self, launcher: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The launcher's instances (its API's ``/v2/vllm/instances``)."""
        ip = launcher["status"]["podIP"]
        with self.launcher_http() as http:
            response = http.get(f"http://{ip}:{LAUNCHER_API_PORT}/v2/vllm/instances")
        response.raise_for_status()
        return list(response.json()["instances"])

    def delete_instance(self, launcher: Mapping[str, Any], instance_id: str) -> None:
        ip = launcher["status"]["podIP"]
        with self.launcher_http() as http:
            response = http.delete(f"http://{ip}:{LAUNCHER_API_PORT}/v2/vllm/instances/{instance_id}", timeout=30.0)
        response.raise_for_status()

    @staticmethod
    def engine_sleeping(ip: str, port: int) -> bool:
        """The engine's own answer to ``GET /is_sleeping``."""
        response = httpx.get(f"http://{ip}:{port}/is_sleeping", timeout=10.0)
        response.raise_for_status()
        return bool(response.json()["is_sleeping"])

    def engine_processes(self) -> list[EngineProcess]:
        """This session's engine processes on the machine, each with the Pod it belongs to.

        Every process started for this session's launchers and direct
        providers carries ``FMA_E2E_RUN`` in its environment (launchers pass
        their environment on to the preloaded parent and its instances).  From
        the process tree and simnode's record of each live Pod's container:

        * ``direct``: a direct provider's container process (it has GPUs);
        * ``instance``: a launcher instance, a child of the launcher's
          preloaded parent, itself a child of the launcher's container process;
        * ``detached``: a marked process that descends from no live Pod's
          container (its launcher or Pod is gone): an orphan.
        """
        marker = f"{manifests.RUN_ENV}={self.run_token}".encode()
        marked: dict[int, tuple[int, dict[str, str]]] = {}
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "environ").read_bytes()
                if marker not in raw:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] == "Z":
                continue
            env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
            marked[int(entry.name)] = (int(fields[1]), env)
        mains: dict[int, str] = {}
        for pod in self.watch.all_pods():
            pid = self.container_pid(pod)
            if pid is not None:
                mains[pid] = str(pod["metadata"]["name"])
        found = []
        for pid, (first_parent, env) in marked.items():
            chain, parent = [pid], first_parent
            while chain[-1] not in mains and parent in marked and parent not in chain:
                chain.append(parent)
                parent = marked[parent][0]
            gpus = env.get("CUDA_VISIBLE_DEVICES", "")
            if chain[-1] not in mains:
                found.append(EngineProcess(pid, env.get("HOSTNAME", ""), "detached", gpus))
            elif len(chain) == 1 and gpus:
                found.append(EngineProcess(pid, mains[pid], "direct", gpus))
            elif len(chain) == 3:
                found.append(EngineProcess(pid, mains[chain[-1]], "instance", gpus))
        return found

    # --- the controllers ------------------------------------------------------------------------------

    def controller_pods(self) -> list[dict[str, Any]]:
        return self.watch.live_pods({"app.kubernetes.io/component": "controllers"})

    def leader(self) -> str:
        """The holder of the controllers' Lease."""
        lease = self.api.get_or_none(resources.LEASES, "fma-controllers", self.namespace) or {}
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def restart_controllers(self, *, timeout: float = 120.0) -> None:
        """Delete every controllers Pod; wait for the Deployment to be back and a new Pod to lead."""
        old = {p["metadata"]["name"] for p in self.controller_pods()}
        for name in old:
            self.delete(resources.PODS, name, grace_period_seconds=0)

        def back() -> bool:
            pods = [p for p in self.controller_pods() if p["metadata"]["name"] not in old]
            ready = [p for p in pods if helm_release.pod_ready(p)]
            return len(ready) == len(old) and self.leader() in {p["metadata"]["name"] for p in ready}

        self.wait(back, timeout=timeout, what="new controllers Pods Ready, one of them holding the Lease")

    def controllers_log(self) -> str:
        """The end of each controllers Pod's log (for failure messages)."""
        parts = []
        for pod in self.controller_pods():
            name = pod["metadata"]["name"]
            parts.append(f"--- {name}\n{self.chart.log_of(name)[-4000:]}")
        return "\n".join(parts)

    # --- simnode ----------------------------------------------------------------------------------------

    def restart_simnode(self, *, timeout: float = 90.0) -> None:
        """Restart simnode: it adopts the running Pods and registers its Nodes again (also deleted ones)."""
        processes.stop(self.simnode_record, grace_seconds=20.0)
        self.simnode_record = simnode_mod.spawn(
            self.cluster, self.simnode_options, self.logs / f"simnode-{os.getpid()}-restart.log"
        )
        simnode_mod.wait_ready(self.cluster, self.simnode_options, self.simnode_record, timeout=timeout)

    def container_pid(self, pod: Mapping[str, Any], container: str = "inference-server") -> int | None:
        """The PID of a running container's process, from simnode's record of the Pod (None when not running)."""
        record = runtime_record.load(self.chart.simnode_state_dir, str(pod["metadata"]["uid"]))
        entry = record.containers.get(container) if record is not None else None
        return entry.process.pid if entry is not None and entry.process is not None else None

    def containers_on_the_host(self, wait: float = 30.0) -> list[str]:
        """``pod/container`` of each running container whose image is one of ``images`` but which runs on the host.

        In image mode such a container's process sees its image's root file system (``/proc/PID/root`` is
        the overlay simnode mounted); one that sees the host's ``/`` did not start from its image.  A
        container that is just starting (a Pod replaced a moment ago) is still in simnode's setup, on the
        host's root until it enters its image: it is judged once it runs its own command (at most ``wait``
        seconds later).
        """
        if self.images is None:
            return []
        ours = {image.name for image in self.images.images}
        found = []
        for pod in self.watch.all_pods():
            record = runtime_record.load(self.chart.simnode_state_dir, str(pod["metadata"]["uid"]))
            for container in pod["spec"]["containers"]:
                entry = record.containers.get(container["name"]) if record is not None else None
                if container.get("image") not in ours or entry is None or entry.process is None:
                    continue
                pid, started = entry.process.pid, entry.process.start_time
                name = f"{pod['metadata']['name']}/{container['name']}"
                waiting.wait_for(
                    lambda pid=pid: not container_process.in_setup(pid),
                    timeout=wait,
                    what=f"container {name} past simnode's setup",
                    interval=0.05,
                )
                try:
                    root = os.readlink(f"/proc/{pid}/root")
                except OSError:
                    continue  # it has just exited
                if root == "/" and processes.process_start_time(pid) == started:
                    found.append(name)
        return found

    def gpu_map(self) -> dict[str, dict[str, int]]:
        """The ``gpu-map`` ConfigMap: node → GPU UUID → index."""
        cm = self.api.get(resources.CONFIG_MAPS, "gpu-map", self.namespace)
        return {node: json.loads(value) for node, value in (cm.get("data") or {}).items()}

    def iter_launcher_states(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every Ready launcher and its instance list."""
        for launcher in self.launchers():
            if helm_release.pod_ready(launcher) and launcher.get("status", {}).get("podIP"):
                yield launcher, self.launcher_instances(launcher)
