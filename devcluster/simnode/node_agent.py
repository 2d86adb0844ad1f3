"""The simnode process: registers the Nodes and plays their kubelets.

It registers (or re-registers) the Nodes, publishes ``gpu-map``, keeps the
heartbeats going, watches the Pods bound to its Nodes and hands each to a
``PodRunner`` (process-running nodes) or the ``StatusOnlyWorker``, and
watches its Nodes so that a deleted Node stops its Pods.  After a restart
it adopts the Pods recorded in the state directory and stops the processes
of Pods that no longer exist.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import logging
import os
import pathlib
import sys
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

import kube
from crds import validation_paths
from devcluster import binaries
from devcluster.simnode import (
    container_process,
    dra_driver,
    event_recorder,
    fleet,
    heartbeat,
    image_rootfs,
    node_ledger,
    options,
    pod,
    pod_runner,
    runtime_record,
    status_only,
)
from kube import resources

__all__ = ["Agent", "base_env", "service_env", "stop_recorded_processes", "tool_dirs"]

logger = logging.getLogger(__name__)

_POD_FIELD_SELECTOR = "spec.nodeName!="
_WATCH_SECONDS = 240
_NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def service_env(server: str) -> dict[str, str]:
    """The ``kubernetes`` Service variables, pointing at the local apiserver.  Pure."""
    url = urllib.parse.urlparse(server)
    host = url.hostname or "127.0.0.1"
    port = str(url.port or 443)
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        prefix: f"tcp://{host}:{port}",
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": port,
        f"{prefix}_ADDR": host,
    }


def base_env(prefix: str, host_path: str | None, home: str | None, tool_dirs: Sequence[str] = ()) -> dict[str, str]:
    """What every container process starts with.  Pure.

    PATH is led by the project's virtualenv (every console script) and then
    ``tool_dirs`` (the cached Kubernetes binaries, so a Pod's command may be
    ``kube-scheduler``, as in an image that ships it), then the host's PATH.
    """
    path = host_path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": ":".join([f"{prefix}/bin", *tool_dirs, path]), "HOME": home or "/root", "LANG": "C.UTF-8"}


def tool_dirs(root: pathlib.Path | None = None) -> list[str]:
    """The directories of cached binaries a Pod's command is looked up in (``base_env``): the Kubernetes
    binaries' (``kube-scheduler``, ``kubectl``), which also holds the symlink ``fma-kube-scheduler`` to FMA's
    kube-scheduler build once ``binaries.ensure_fma_scheduler`` has built it.  ``root``: the cache (tests)."""
    return [str(binaries.locate(root).kubectl.parent)]


def kubernetes_service_address(service: Mapping[str, Any] | None, server: str) -> str:
    """Where Pods reach the apiserver: the ``kubernetes`` Service when it has a loopback ClusterIP
    (the dev cluster's Service proxy routes it), else the apiserver's own address.  Pure."""
    spec = (service or {}).get("spec") or {}
    cluster_ip = str(spec.get("clusterIP") or "")
    ports = [p for p in spec.get("ports") or [] if p.get("name") == "https"] or list(spec.get("ports") or [])
    if cluster_ip.startswith("127.") and ports:
        return f"https://{cluster_ip}:{int(ports[0]['port'])}"
    return server


def stop_recorded_processes(state_dir: pathlib.Path, grace_seconds: float = 2.0) -> int:
    """Stop every container process recorded under ``state_dir`` that still runs; returns how many.

    The safety net after simnode itself is stopped or killed: container
    processes run in their own sessions and would otherwise outlive it.
    """
    stopped = 0
    for record in runtime_record.load_all(state_dir):
        for entry in record.containers.values():
            if entry.process is None:
                continue
            handle = container_process.Handle.adopt(entry.process.pid, entry.process.start_time)
            if handle.poll() is None:
                handle.stop(grace_seconds)
                stopped += 1
    return stopped


class Agent:
    """Plays the kubelet (and the NVIDIA device plugin) for a set of Nodes."""

    def __init__(self, api: kube.Client, opts: options.SimnodeOptions, state_dir: pathlib.Path) -> None:
        self._api = api
        self._options = opts
        self._state_dir = state_dir
        self._nodes = fleet.plan(
            prefix=opts.node_prefix,
            nodes=opts.nodes,
            status_only_nodes=opts.status_only_nodes,
            gpus_per_node=opts.gpus_per_node,
            gpu_product=opts.gpu_product,
            gpu_memory_mib=opts.gpu_memory_mib,
            gpu_mode=opts.gpu_mode,
        )
        self._by_name = {n.name: n for n in self._nodes}
        self._ledgers = {n.name: node_ledger.NodeLedger(n, opts.gpu_allocation) for n in self._nodes}
        self._events = event_recorder.EventRecorder(api)
        self._runners: dict[str, pod_runner.PodRunner] = {}
        self._lock = threading.Lock()
        self._deleted_nodes: set[str] = set()
        self._cluster_ips: dict[str, str] = {}
        self._status_only = status_only.StatusOnlyWorker(
            api, {n.name: n for n in self._nodes if n.status_only}, self._ledgers, self.foreign_ips
        )
        self._service_env = service_env(kubernetes_service_address(self._kubernetes_service(), api.server))
        self._base_env = base_env(sys.prefix, os.environ.get("PATH"), os.environ.get("HOME"), tool_dirs())
        self._heartbeat: heartbeat.Heartbeat | None = None
        self._images = (
            image_rootfs.Store(opts.image_archives, state_dir / "images") if opts.image_archives is not None else None
        )
        self.synced = threading.Event()

    def _kubernetes_service(self) -> dict[str, Any] | None:
        try:
            return self._api.get(resources.SERVICES, "kubernetes", "default")
        except kube.errors.NotFound:
            return None

    # -- registration ---------------------------------------------------------------

    def _register_one(self, node: fleet.NodeIdentity) -> str:
        now = datetime.datetime.now(datetime.UTC)
        body = fleet.node_body(node, now)
        try:
            created = self._api.request("POST", "/api/v1/nodes", body=body)
            self._drop_not_ready_taint(node, created)
        except kube.errors.Conflict:
            created = self._api.request(
                "PATCH",
                f"/api/v1/nodes/{node.name}",
                body={"metadata": {"labels": body["metadata"]["labels"]}},
                content_type=kube.client.PATCH_CONTENT_TYPES["merge"],
            )
            self._api.request(
                "PATCH",
                f"/api/v1/nodes/{node.name}/status",
                body=fleet.node_status_body(node, now),
                content_type=kube.client.PATCH_CONTENT_TYPES["strategic"],
            )
        uid = str(created["metadata"]["uid"])
        lease = fleet.lease_body(node, uid, now)
        try:
            self._api.request(
                "POST", f"/apis/coordination.k8s.io/v1/namespaces/{fleet.LEASE_NAMESPACE}/leases", body=lease
            )
        except kube.errors.Conflict:
            self._api.request(
                "PATCH",
                f"/apis/coordination.k8s.io/v1/namespaces/{fleet.LEASE_NAMESPACE}/leases/{node.name}",
                body={"spec": lease["spec"]},
                content_type=kube.client.PATCH_CONTENT_TYPES["merge"],
            )
        return uid

    def _drop_not_ready_taint(self, node: fleet.NodeIdentity, created: dict[str, Any]) -> None:
        """Remove the ``not-ready`` taint that admission puts on every new Node.

        The node lifecycle controller would remove it too, since the Node is
        Ready from its creation, but only a few Nodes per second: with a
        thousand Nodes the last ones would stay unschedulable for minutes.
        """
        taints = (created.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != _NOT_READY_TAINT]
        if len(kept) == len(taints):
            return
        self._api.request(
            "PATCH",
            f"/api/v1/nodes/{node.name}",
            body={"spec": {"taints": kept or None}},
            content_type=kube.client.PATCH_CONTENT_TYPES["merge"],
        )

    def register(self) -> dict[str, str]:
        """Create or update every Node, its status and Lease; returns node name → UID."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="register") as pool:
            uids = dict(zip(self._by_name, pool.map(self._register_one, self._nodes), strict=True))
        logger.info("nodes registered", extra={"nodes": len(uids)})
        return uids

    def publish_gpu_map(self) -> None:
        """Merge this simnode's nodes into the ``gpu-map`` ConfigMap (created with its namespace if needed)."""
        namespace = self._options.gpu_map_namespace
        if not namespace:
            return
        data = fleet.gpu_map_data(self._nodes)
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        try:
            self._api.request(
                "PATCH", f"{path}/gpu-map", body={"data": data}, content_type=kube.client.PATCH_CONTENT_TYPES["merge"]
            )
            return
        except kube.errors.NotFound:
            pass
        with contextlib.suppress(kube.errors.Conflict):
            self._api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gpu-map"}, "data": data}
        try:
            self._api.request("POST", path, body=body)
        except kube.errors.Conflict:
            self._api.request(
                "PATCH", f"{path}/gpu-map", body={"data": data}, content_type=kube.client.PATCH_CONTENT_TYPES["merge"]
            )

    # -- pods -----------------------------------------------------------------------

    def foreign_ips(self, uid: str) -> set[str]:
        """Pod IPs the cluster reports for every Pod but ``uid`` (other simnodes' Pods included)."""
        with self._lock:
            return {ip for other, ip in self._cluster_ips.items() if other != uid}

    def _context(self, node: fleet.NodeIdentity) -> pod_runner.RunnerContext:
        return pod_runner.RunnerContext(
            api=self._api,
            state_dir=self._state_dir,
            node=node,
            ledger=self._ledgers[node.name],
            events=self._events,
            service_env=self._service_env,
            base_env=self._base_env,
            foreign_ips=self.foreign_ips,
            hosts_file=self._options.hosts_file,
            images=self._images,
        )

    def _parse(self, raw: dict[str, Any]) -> pod.Pod | None:
        try:
            return pod.Pod.model_validate(raw)
        except pydantic.ValidationError as exc:
            meta = raw.get("metadata") or {}
            problems = validation_paths.summary(exc)
            logger.warning(
                "pod not understood",
                extra={"pod": f"{meta.get('namespace')}/{meta.get('name')}", "problems": problems},
            )
            return None

    def dispatch(self, raw: dict[str, Any], *, deleted: bool) -> None:
        """Route one Pod event to its runner or the status-only worker."""
        the_pod = self._parse(raw)
        if the_pod is None:
            return
        uid = the_pod.metadata.uid
        with self._lock:
            if deleted or not the_pod.status.pod_ip:
                self._cluster_ips.pop(uid, None)
            else:
                self._cluster_ips[uid] = the_pod.status.pod_ip
        node_name = the_pod.spec.node_name or ""
        node = self._by_name.get(node_name)
        if node is None or node_name in self._deleted_nodes:
            return
        if node.status_only:
            self._status_only.update(uid, None if deleted else the_pod)
            return
        with self._lock:
            runner = self._runners.get(uid)
            if deleted:
                if runner is not None:
                    runner.update(None)
                    del self._runners[uid]
                return
            if runner is not None and runner.alive:
                runner.update(the_pod)
                return
            runner = pod_runner.PodRunner(self._context(node), the_pod, runtime_record.load(self._state_dir, uid))
            self._runners[uid] = runner
        runner.start()

    def _sync(self, items: list[dict[str, Any]]) -> None:
        listed: set[str] = set()
        with self._lock:
            self._cluster_ips.clear()
        for raw in items:
            uid = str((raw.get("metadata") or {}).get("uid", ""))
            listed.add(uid)
            self.dispatch(raw, deleted=False)
        with self._lock:
            vanished = [uid for uid in self._runners if uid not in listed]
        for uid in vanished:
            with self._lock:
                runner = self._runners.pop(uid, None)
            if runner is not None:
                runner.update(None)
        if not self.synced.is_set():
            self._stop_orphans(listed)
            self.synced.set()

    def _stop_orphans(self, listed: set[str]) -> None:
        """Stop processes of recorded Pods that no longer exist (deleted while simnode was down)."""
        for record in runtime_record.load_all(self._state_dir):
            if record.uid in listed:
                continue
            for entry in record.containers.values():
                if entry.process is not None:
                    container_process.Handle.adopt(entry.process.pid, entry.process.start_time).stop(2.0)
            if record.node in self._ledgers:
                self._ledgers[record.node].release(record.uid)
            runtime_record.remove(self._state_dir, record.uid)
            logger.info("stopped orphaned pod", extra={"pod": f"{record.namespace}/{record.name}"})

    def _watch_pods(self, stop: threading.Event) -> None:
        resource_version: str | None = None
        query = {"fieldSelector": _POD_FIELD_SELECTOR}
        while not stop.is_set():
            try:
                if resource_version is None:
                    listing = self._api.request("GET", "/api/v1/pods", query=query)
                    resource_version = str(listing["metadata"]["resourceVersion"])
                    self._sync(list(listing.get("items") or []))
                for kind, obj in self._api.watch(
                    resources.PODS,
                    field_selector=_POD_FIELD_SELECTOR,
                    resource_version=resource_version,
                    timeout_seconds=_WATCH_SECONDS,
                ):
                    if stop.is_set():
                        return
                    resource_version = str((obj.get("metadata") or {}).get("resourceVersion", resource_version))
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self.dispatch(obj, deleted=kind == "DELETED")
            except kube.errors.Gone:
                resource_version = None
            except (kube.errors.KubeError, ValueError) as exc:
                logger.warning("pod watch failed; retrying", extra={"error": repr(exc)})
                stop.wait(1.0)

    # -- nodes ----------------------------------------------------------------------

    def _node_gone(self, name: str) -> None:
        if name in self._deleted_nodes:
            return
        logger.warning("node deleted from the API; stopping its pods", extra={"node": name})
        self._deleted_nodes.add(name)
        if self._heartbeat is not None:
            self._heartbeat.forget(name)
        self._status_only.forget_node(name)
        with self._lock:
            mine = [(uid, r) for uid, r in self._runners.items() if r.node_name == name]
        for uid, runner in mine:
            runner.shutdown(pod_runner.ShutdownMode.NODE_GONE)
            with self._lock:
                self._runners.pop(uid, None)

    def _node_seen(self, node: Mapping[str, Any]) -> None:
        """One of our Nodes that the API shows not Ready gets its status reported now.

        The node lifecycle controller sets Ready to Unknown when it misses
        heartbeats (e.g. while the apiserver was away); as the kubelet's next
        status update would, the node puts it back at once instead of at the
        next periodic report.
        """
        name = str((node.get("metadata") or {}).get("name"))
        if name not in self._by_name or name in self._deleted_nodes or self._heartbeat is None:
            return
        ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
        if ready and ready[0].get("status") != "True":
            self._heartbeat.report_now(name)

    def _watch_nodes(self, stop: threading.Event) -> None:
        resource_version: str | None = None
        query = {"labelSelector": fleet.MANAGED_LABEL}
        while not stop.is_set():
            try:
                if resource_version is None:
                    listing = self._api.request("GET", "/api/v1/nodes", query=query)
                    resource_version = str(listing["metadata"]["resourceVersion"])
                    present = {str(i["metadata"]["name"]) for i in listing.get("items") or []}
                    for name in self._by_name:
                        if name not in present:
                            self._node_gone(name)
                    for item in listing.get("items") or []:
                        self._node_seen(item)
                for kind, obj in self._api.watch(
                    resources.NODES,
                    label_selector=fleet.MANAGED_LABEL,
                    resource_version=resource_version,
                    timeout_seconds=_WATCH_SECONDS,
                ):
                    if stop.is_set():
                        return
                    meta = obj.get("metadata") or {}
                    resource_version = str(meta.get("resourceVersion", resource_version))
                    if kind == "DELETED" and meta.get("name") in self._by_name:
                        self._node_gone(str(meta["name"]))
                    elif kind in ("ADDED", "MODIFIED"):
                        self._node_seen(obj)
            except kube.errors.Gone:
                resource_version = None
            except (kube.errors.KubeError, ValueError) as exc:
                logger.warning("node watch failed; retrying", extra={"error": repr(exc)})
                stop.wait(1.0)

    # -- lifecycle ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Register, then serve until ``stop`` is set; then stop (or leave) the Pods' processes."""
        uids = self.register()
        self.publish_gpu_map()
        dra_driver.publish(self._api, self._nodes, uids)
        for record in runtime_record.load_all(self._state_dir):
            if record.node in self._ledgers:
                self._ledgers[record.node].restore(record.uid, record.pod_ip, record.gpus)
        state_dir = self._state_dir
        self._heartbeat = heartbeat.Heartbeat(
            self._api,
            self._nodes,
            uids,
            workers=self._options.heartbeat_workers,
            silenced=lambda name: heartbeat.silence_file(state_dir, name).exists(),
        )
        threads = [
            threading.Thread(target=self._heartbeat.run, args=(stop,), name="heartbeat", daemon=True),
            threading.Thread(target=self._status_only.run, args=(stop,), name="status-only", daemon=True),
            threading.Thread(target=self._watch_pods, args=(stop,), name="pod-watch", daemon=True),
            threading.Thread(target=self._watch_nodes, args=(stop,), name="node-watch", daemon=True),
        ]
        for thread in threads:
            thread.start()
        logger.info(
            "simnode running",
            extra={"nodes": len(self._nodes), "state_dir": str(self._state_dir), "pod_path": self._base_env["PATH"]},
        )
        stop.wait()
        logger.info("simnode stopping")
        self._status_only.close()
        mode = pod_runner.ShutdownMode.LEAVE if self._options.leave_pods_running else pod_runner.ShutdownMode.KILL
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.shutdown(mode)
        for runner in runners:
            runner.join(15.0)
        threads[0].join(5.0)
