"""``fma-dev``: start, inspect and stop the development cluster.

Subcommands: ``build``, ``up``, ``down``, ``status``, ``kubeconfig``, ``env``,
``logs`` and ``demo``.  The cluster lives in one state directory
(``$FMA_DEVCLUSTER_DIR`` or ``~/.local/state/fma/devcluster``) whose
``state.json`` records every process, so separate invocations cooperate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import yaml

from devcluster import binaries, control_plane, demo, errors, processes, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode import options as simnode_options

__all__ = ["main"]


def _say(message: str) -> None:
    print(f"[fma-dev] {message}", file=sys.stderr, flush=True)


def _state_dir(args: argparse.Namespace) -> pathlib.Path:
    return pathlib.Path(args.state_dir) if args.state_dir else control_plane.default_state_dir()


def _cmd_build(_: argparse.Namespace) -> int:
    for path in dataclasses.astuple(binaries.ensure_all()):
        print(path)
    return 0


def _load_yaml_file(path: str) -> dict[str, Any]:
    loaded = yaml.safe_load(pathlib.Path(path).read_text())
    if not isinstance(loaded, dict):
        raise errors.DevClusterError(f"--scheduler-config {path!r} must hold a YAML mapping")
    return loaded


def _cmd_up(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    existing = control_plane.load(state_dir)
    if existing is not None and all(existing.alive().values()) and args.reuse:
        _say(f"reusing the cluster already running at {existing.server}")
        _print_access(existing)
        return 0
    started = time.monotonic()
    _say("ensuring binaries (built once into the cache)")
    bins = binaries.ensure_all()
    _say(f"starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler in {state_dir}")
    overlay = _load_yaml_file(args.scheduler_config) if args.scheduler_config else None
    state = control_plane.up(
        control_plane.ClusterOptions(
            state_dir=state_dir,
            apiserver_port=args.apiserver_port,
            scheduler_config=overlay,
            binaries=bins,
        )
    )
    _say(f"control plane ready in {time.monotonic() - started:.1f}s at {state.server}")
    _say(f"Services get ClusterIPs in {state.service_cidr}; the service proxy routes them (docs/devcluster.md)")
    if args.nodes or args.status_only_nodes:
        opts = simnode_mod.SimnodeOptions(
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            gpu_product=args.gpu_product,
            gpu_allocation=args.gpu_allocation,
            status_only_nodes=args.status_only_nodes,
            gpu_map_namespace=args.gpu_map_namespace,
            gpu_mode=args.gpu_mode,
        )
        _say(f"starting simnode: {args.nodes} nodes x {args.gpus_per_node} GPUs, {args.status_only_nodes} status-only")
        record = simnode_mod.spawn(state, opts, state_dir / "logs" / "simnode.log")
        _simnode_file(state_dir).write_text(json.dumps(dataclasses.asdict(record)))
        simnode_mod.wait_ready(state, opts, record, timeout=120.0)
        _say(f"nodes Ready after {time.monotonic() - started:.1f}s")
    _print_access(state)
    return 0


def _simnode_file(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / "simnode.json"


def _simnode_record(state_dir: pathlib.Path) -> processes.ProcessRecord | None:
    path = _simnode_file(state_dir)
    if not path.is_file():
        return None
    return processes.ProcessRecord(**json.loads(path.read_text()))


def _print_access(state: control_plane.ClusterState) -> None:
    kubectl = binaries.locate().kubectl
    _say("reach it with:")
    print(f"export KUBECONFIG={state.kubeconfig}")
    print(f"export PATH={kubectl.parent}:$PATH   # kubectl {binaries.KUBERNETES_VERSION}")


def _cmd_down(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    record = _simnode_record(state_dir)
    if record is not None:
        # simnode next: it stops every container process it started.
        leftovers = simnode_mod.stop(record, state_dir / "simnode")
        if leftovers:
            _say(f"stopped {leftovers} container processes simnode left behind")
    if not control_plane.down(state_dir):
        _say(f"no development cluster recorded in {state_dir}; nothing to stop")
        return 0
    _say("stopped the development cluster and removed its state")
    return 0


def _require(state_dir: pathlib.Path) -> control_plane.ClusterState:
    state = control_plane.load(state_dir)
    if state is None:
        raise errors.NotRunning(f"no development cluster in {str(state_dir)!r}; start one with 'fma-dev up'")
    return state


def _cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state = control_plane.load(state_dir)
    if state is None:
        print(f"no development cluster in {state_dir}")
        return 1
    alive = state.alive()
    print(f"server:     {state.server}")
    print(f"kubeconfig: {state.kubeconfig}")
    if state.service_cidr:
        print(f"services:   {state.service_cidr} (kubernetes at {state.kubernetes_service_ip}:443)")
    records = list(state.processes)
    simnode_record = _simnode_record(state_dir)
    if simnode_record is not None:
        records.append(simnode_record)
        alive[simnode_record.name] = processes.is_alive(simnode_record)
    for record in records:
        status = "running" if alive[record.name] else "NOT RUNNING"
        print(f"{record.name:<26} pid {record.pid:<8} {status:<12} log {record.log}")
    return 0 if all(alive.values()) else 1


def _cmd_kubeconfig(args: argparse.Namespace) -> int:
    print(_require(_state_dir(args)).kubeconfig)
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    state = _require(_state_dir(args))
    print(f"export KUBECONFIG={state.kubeconfig}")
    print(f"export PATH={binaries.locate().kubectl.parent}:$PATH")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state = _require(state_dir)
    names = {r.name: r for r in state.processes}
    simnode_record = _simnode_record(state_dir)
    if simnode_record is not None:
        names[simnode_record.name] = simnode_record
    record = names.get(args.name)
    if record is not None and args.container is None:
        path = pathlib.Path(record.log)
    else:
        found = simnode_mod.container_log(state_dir / "simnode", args.namespace, args.name, args.container)
        if found is None:
            raise errors.DevClusterError(
                f"no component and no Pod log {args.namespace}/{args.name!r}; components: {', '.join(sorted(names))}"
            )
        path = found
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    print("\n".join(lines[-args.tail :] if args.tail else lines))
    return 0


def _kubectl(state: control_plane.ClusterState, *argv: str, stdin: str | None = None) -> None:
    kubectl = binaries.locate().kubectl
    print(f"$ kubectl {' '.join(argv)}", flush=True)
    subprocess.run(
        [str(kubectl), f"--kubeconfig={state.kubeconfig}", *argv],
        input=stdin,
        text=True,
        check=True,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state = control_plane.load(state_dir)
    if state is None or not all(state.alive().values()):
        args.reuse = True
        args.apiserver_port = 6443
        args.scheduler_config = None
        args.nodes, args.gpus_per_node, args.status_only_nodes = 2, 4, 0
        # The chart's components read gpu-map in the release namespace.
        args.gpu_product, args.gpu_allocation = "NVIDIA-A100-SXM4-80GB", "lowest"
        args.gpu_map_namespace = demo.NAMESPACE
        _cmd_up(args)
        state = _require(state_dir)
    else:
        _say(f"using the cluster already running at {state.server}")
    _kubectl(state, "version")
    _kubectl(state, "get", "--raw=/readyz")
    if _simnode_record(state_dir) is None:
        raise errors.DevClusterError(
            "the demo needs simulated GPU nodes; start the cluster with 'fma-dev up --nodes 2'"
        )
    _kubectl(state, "get", "nodes", "-L", "nvidia.com/gpu.product,nvidia.com/gpu.count")
    started = time.monotonic()
    result = demo.run(state, _say)
    _kubectl(
        state,
        "get",
        "pods",
        "-n",
        demo.NAMESPACE,
        "-l",
        "app.kubernetes.io/component=launcher",
        "-o",
        "wide",
        "-L",
        "dual-pods.llm-d.ai/dual,dual-pods.llm-d.ai/sleeping",
    )
    _say(f"the story took {time.monotonic() - started:.0f}s; the GPU timeline is {result.png}")
    _say("the cluster keeps running; stop it with 'make cluster-down'")
    _print_access(state)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fma-dev", description="The FMA development cluster.")
    parser.add_argument(
        "--state-dir", help="state directory (default: $FMA_DEVCLUSTER_DIR or ~/.local/state/fma/devcluster)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the control-plane binaries, kubectl, etcd and helm (cached)").set_defaults(
        func=_cmd_build
    )
    up = sub.add_parser("up", help="start the development cluster in the background")
    up.add_argument("--reuse", action="store_true", help="succeed and reuse a cluster that already runs")
    up.add_argument("--apiserver-port", type=int, default=6443, help="preferred apiserver port (another if taken)")
    up.add_argument("--scheduler-config", help="YAML merged into the KubeSchedulerConfiguration (e.g. extenders)")
    up.add_argument("--nodes", type=int, default=2, help="simulated GPU nodes whose Pods run (default 2; 0 for none)")
    up.add_argument("--gpus-per-node", type=int, default=4, help="GPUs per simulated node (default 4)")
    up.add_argument("--gpu-product", default="NVIDIA-A100-SXM4-80GB", help="nvidia.com/gpu.product label")
    up.add_argument("--gpu-allocation", default="lowest", choices=["lowest", "random"], help="device-plugin order")
    up.add_argument(
        "--gpu-mode",
        choices=simnode_options.GPU_MODES,
        default="device-plugin",
        help="how the nodes offer GPUs: nvidia.com/gpu, DRA ResourceSlices, or both (default device-plugin)",
    )
    up.add_argument("--status-only-nodes", type=int, default=0, help="extra nodes that only report Pods Running")
    up.add_argument("--gpu-map-namespace", default="default", help="namespace of the gpu-map ConfigMap")
    up.set_defaults(func=_cmd_up)
    sub.add_parser("down", help="stop the cluster and remove its state").set_defaults(func=_cmd_down)
    sub.add_parser("status", help="show the cluster's processes").set_defaults(func=_cmd_status)
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path").set_defaults(func=_cmd_kubeconfig)
    sub.add_parser("env", help="print shell exports for kubectl").set_defaults(func=_cmd_env)
    logs = sub.add_parser("logs", help="print a component's log, or a Pod container's output")
    logs.add_argument("name", help="a component (etcd, kube-apiserver, ..., simnode) or a Pod name")
    logs.add_argument("-n", "--namespace", default="default", help="the Pod's namespace")
    logs.add_argument("-c", "--container", help="the Pod's container (default: its first)")
    logs.add_argument("--tail", type=int, default=0, help="only the last N lines")
    logs.set_defaults(func=_cmd_logs)
    sub.add_parser("demo", help="start the cluster if needed and show it working").set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fma-dev``; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    try:
        return int(args.func(args))
    except errors.AlreadyRunning as exc:
        print(f"fma-dev: {exc} (or pass --reuse)", file=sys.stderr)
        return 3
    except (errors.DevClusterError, binaries.BuildError) as exc:
        print(f"fma-dev: {exc}", file=sys.stderr)
        return 1
    except waiting.WaitTimeout as exc:
        print(f"fma-dev: {exc}; see 'fma-dev logs' and 'fma-dev status'", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"fma-dev: command failed with exit code {exc.returncode}: {exc.cmd}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
