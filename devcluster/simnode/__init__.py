"""simnode: simulated GPU nodes whose Pods really run as local processes.

One process registers N Nodes (with ``nvidia.com/gpu`` capacity, GPU labels
and a ``gpu-map``), keeps their Leases fresh and acts as their kubelet and
NVIDIA device plugin; ``--status-only-nodes`` adds Nodes whose Pods are only
reported Running (for scale tests).  See docs/devcluster.md, "Simulated GPU
nodes (simnode)".

This module is the surface ``fma-dev`` and the test fixtures use: start the
process (``spawn``), wait until its Nodes are Ready (``wait_ready``), stop it
and every container process it started (``stop``), and find a container's
log (``container_log``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time

import httpx

from devcluster import control_plane, processes
from devcluster import errors as cluster_errors
from devcluster.simnode import fleet, node_agent, options, runtime_record
from devcluster.simnode.options import SimnodeOptions

__all__ = ["SimnodeOptions", "container_log", "node_names", "spawn", "state_dir_of", "stop", "wait_ready"]


def state_dir_of(state: control_plane.ClusterState, opts: SimnodeOptions) -> pathlib.Path:
    """Where simnode keeps Pod records, logs and volumes for this cluster."""
    return opts.state_dir or state.kubeconfig.resolve().parent / "simnode"


def node_names(opts: SimnodeOptions) -> list[str]:
    """The names of the Nodes these options create, process-running ones first."""
    return [
        n.name
        for n in fleet.plan(
            prefix=opts.node_prefix,
            nodes=opts.nodes,
            status_only_nodes=opts.status_only_nodes,
            gpus_per_node=opts.gpus_per_node,
            gpu_product=opts.gpu_product,
            gpu_memory_mib=opts.gpu_memory_mib,
            gpu_mode=opts.gpu_mode,
        )
    ]


def spawn(state: control_plane.ClusterState, opts: SimnodeOptions, log_path: pathlib.Path) -> processes.ProcessRecord:
    """Start simnode in the background against ``state``'s cluster (as its admin).

    The process runs in its own session; stop it with ``stop``.  Use
    ``wait_ready`` to wait until its Nodes are Ready.
    """
    if opts.hosts_file is None and state.hosts_file is not None:
        # The Service proxy's names, so Pods resolve <svc>.<ns>.svc as in a real cluster.
        opts = dataclasses.replace(opts, hosts_file=state.hosts_file)
    argv = [sys.executable, "-m", "devcluster.simnode", *options.to_argv(state.kubeconfig, opts)]
    if opts.state_dir is None:
        argv.append(f"--state-dir={state_dir_of(state, opts)}")
    return processes.spawn("simnode", argv, log_path)


def _ready_nodes(api: httpx.Client) -> set[str]:
    response = api.get("/api/v1/nodes", params={"labelSelector": fleet.MANAGED_LABEL})
    response.raise_for_status()
    ready: set[str] = set()
    for item in response.json().get("items") or []:
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready.add(str(item["metadata"]["name"]))
    return ready


def wait_ready(
    state: control_plane.ClusterState,
    opts: SimnodeOptions,
    record: processes.ProcessRecord,
    timeout: float = 60.0,
) -> None:
    """Wait until every Node of ``opts`` is registered and Ready.

    Raises ``ComponentFailed`` with the end of simnode's log when the process
    exits or the Nodes are not Ready within ``timeout``.
    """
    wanted = set(node_names(opts))
    deadline = time.monotonic() + timeout
    missing: set[str] = wanted
    with state.http_client(timeout=5.0) as api:
        while True:
            if not processes.is_alive(record):
                raise cluster_errors.ComponentFailed(
                    f"simnode exited; last lines of {record.log}:\n{_tail(record.log)}"
                )
            try:
                missing = wanted - _ready_nodes(api)
            except httpx.HTTPError:
                missing = wanted
            if not missing:
                return
            if time.monotonic() > deadline:
                raise cluster_errors.ComponentFailed(
                    f"simnode nodes not Ready after {timeout}s: {sorted(missing)[:5]}; see {record.log}"
                )
            time.sleep(0.2)


def stop(
    record: processes.ProcessRecord, state_dir: pathlib.Path, *, grace_seconds: float = 20.0, leave_pods: bool = False
) -> int:
    """Stop simnode (it stops its Pods' processes) and then any container process it left behind.

    Returns how many container processes were still running after simnode
    exited and had to be stopped here (0 when simnode cleaned up after
    itself).  With ``leave_pods`` the container processes are kept for a
    later simnode (started with ``leave_pods_running``) to adopt.
    """
    processes.stop(record, grace_seconds=grace_seconds)
    if leave_pods:
        return 0
    return node_agent.stop_recorded_processes(state_dir)


def container_log(
    state_dir: pathlib.Path, namespace: str, pod: str, container: str | None = None
) -> pathlib.Path | None:
    """The log file of a Pod's container (its first container when None), for ``fma-dev logs``."""
    return runtime_record.find_log(state_dir, namespace, pod, container)


def _tail(path: str, lines: int = 20) -> str:
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])
