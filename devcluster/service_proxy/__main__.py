"""``python -m devcluster.service_proxy``: route the dev cluster's Services until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import kube
from crds import log_output
from devcluster.service_proxy import proxy

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.service_proxy",
        description="Listen on each Service's loopback ClusterIP and forward to a ready Pod of its selector.",
    )
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the cluster")
    parser.add_argument("--apiserver", required=True, help="HOST:PORT the kubernetes Service routes to")
    parser.add_argument("--hosts-file", required=True, help="the hosts file simnode mounts at /etc/hosts in Pods")
    parser.add_argument("--hosts-base", default="/etc/hosts", help="host entries the hosts file starts with")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the proxy, stop cleanly on SIGTERM/SIGINT."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    log_output.configure("info")
    host, _, port = str(args.apiserver).rpartition(":")
    base_path = pathlib.Path(args.hosts_base)
    base = base_path.read_text() if base_path.is_file() else "127.0.0.1\tlocalhost\n"
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        logging.getLogger("devcluster.service_proxy").info("signal received", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = kube.connect(args.kubeconfig, field_manager="fma-service-proxy", pool_size=8)
    try:
        proxy.Proxy(api, apiserver=(host, int(port)), hosts_file=pathlib.Path(args.hosts_file), hosts_base=base).run(
            stop
        )
    finally:
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
