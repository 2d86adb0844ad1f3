"""simnode's options: one dataclass, its command line, and parsing it back.

``fma-dev up`` builds ``SimnodeOptions`` and ``spawn`` turns them into the
``python -m devcluster.simnode`` command line; the process parses them back
with ``parse``.  Keeping both directions here keeps them in step.  Pure.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from collections.abc import Sequence

__all__ = ["GPU_MODES", "SimnodeOptions", "parse", "to_argv"]

GPU_MODES = ("device-plugin", "dra", "both")
"""Per simnode (so per node): device plugin only, DRA only, or both, as clusters in transition have."""


@dataclasses.dataclass(frozen=True)
class SimnodeOptions:
    """What simnode simulates.

    ``state_dir`` holds the per-Pod records, logs and volumes; None means
    ``simnode/`` next to the kubeconfig (inside the cluster's state
    directory, so ``fma-dev down`` removes it).
    """

    nodes: int = 2
    gpus_per_node: int = 2
    gpu_product: str = "NVIDIA-A100-SXM4-80GB"
    gpu_memory_mib: int = 81920
    gpu_allocation: str = "lowest"
    status_only_nodes: int = 0
    gpu_map_namespace: str | None = "default"
    node_prefix: str = "simnode"
    state_dir: pathlib.Path | None = None
    leave_pods_running: bool = False
    heartbeat_workers: int = 4
    hosts_file: pathlib.Path | None = None
    """Mounted at ``/etc/hosts`` in every container (the Service proxy's names); None: the host's own."""
    image_archives: pathlib.Path | None = None
    """Image mode: containers whose image is an OCI archive under this directory run inside it (None: off)."""
    gpu_mode: str = "device-plugin"
    """How the nodes offer their GPUs: ``device-plugin`` (``nvidia.com/gpu``), ``dra`` (ResourceSlices) or ``both``."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.simnode",
        description="Simulated GPU nodes whose Pods run as local processes (plays kubelet and device plugin).",
    )
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the cluster")
    parser.add_argument("--nodes", type=int, default=2, help="nodes whose Pods really run")
    parser.add_argument("--gpus-per-node", type=int, default=2)
    parser.add_argument("--gpu-product", default="NVIDIA-A100-SXM4-80GB")
    parser.add_argument("--gpu-memory-mib", type=int, default=81920)
    parser.add_argument("--gpu-allocation", choices=("lowest", "random"), default="lowest")
    parser.add_argument("--status-only-nodes", type=int, default=0, help="nodes whose Pods only get a status")
    parser.add_argument(
        "--gpu-map-namespace", default="default", help="namespace of the gpu-map ConfigMap ('' for none)"
    )
    parser.add_argument("--node-prefix", default="simnode")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument(
        "--leave-pods-running", action="store_true", help="on exit, leave Pod processes for a later simnode to adopt"
    )
    parser.add_argument("--heartbeat-workers", type=int, default=4)
    parser.add_argument("--hosts-file", default=None, help="mounted at /etc/hosts in every container")
    parser.add_argument(
        "--image-archives", default=None, help="image mode: run containers from the OCI archives under this directory"
    )
    parser.add_argument(
        "--gpu-mode",
        choices=GPU_MODES,
        default="device-plugin",
        help="device-plugin: nvidia.com/gpu capacity; dra: ResourceSlices of a DRA driver; both: the two at once",
    )
    return parser


def parse(argv: Sequence[str]) -> tuple[str, SimnodeOptions]:
    """(kubeconfig path, options) from a command line; exits with usage on bad input."""
    args = _parser().parse_args(list(argv))
    options = SimnodeOptions(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        gpu_product=args.gpu_product,
        gpu_memory_mib=args.gpu_memory_mib,
        gpu_allocation=args.gpu_allocation,
        status_only_nodes=args.status_only_nodes,
        gpu_map_namespace=args.gpu_map_namespace or None,
        node_prefix=args.node_prefix,
        state_dir=pathlib.Path(args.state_dir) if args.state_dir else None,
        leave_pods_running=args.leave_pods_running,
        heartbeat_workers=args.heartbeat_workers,
        hosts_file=pathlib.Path(args.hosts_file) if args.hosts_file else None,
        image_archives=pathlib.Path(args.image_archives) if args.image_archives else None,
        gpu_mode=args.gpu_mode,
    )
    return str(args.kubeconfig), options


def to_argv(kubeconfig: pathlib.Path | str, options: SimnodeOptions) -> list[str]:
    """The command-line arguments (after ``-m devcluster.simnode``) for these options."""
    argv = [
        f"--kubeconfig={kubeconfig}",
        f"--nodes={options.nodes}",
        f"--gpus-per-node={options.gpus_per_node}",
        f"--gpu-product={options.gpu_product}",
        f"--gpu-memory-mib={options.gpu_memory_mib}",
        f"--gpu-allocation={options.gpu_allocation}",
        f"--status-only-nodes={options.status_only_nodes}",
        f"--gpu-map-namespace={options.gpu_map_namespace or ''}",
        f"--node-prefix={options.node_prefix}",
        f"--heartbeat-workers={options.heartbeat_workers}",
    ]
    if options.state_dir is not None:
        argv.append(f"--state-dir={options.state_dir}")
    if options.leave_pods_running:
        argv.append("--leave-pods-running")
    if options.hosts_file is not None:
        argv.append(f"--hosts-file={options.hosts_file}")
    if options.image_archives is not None:
        argv.append(f"--image-archives={options.image_archives}")
    if options.gpu_mode != "device-plugin":
        argv.append(f"--gpu-mode={options.gpu_mode}")
    return argv
