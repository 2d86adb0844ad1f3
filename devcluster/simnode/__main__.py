"""``python -m devcluster.simnode``: run the simulated nodes until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import kube
from crds import log_output
from devcluster.simnode import node_agent, options

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the agent, stop cleanly on SIGTERM/SIGINT."""
    kubeconfig, opts = options.parse(sys.argv[1:] if argv is None else argv)
    log_output.configure("info")
    state_dir = opts.state_dir or pathlib.Path(kubeconfig).resolve().parent / "simnode"
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        logging.getLogger("devcluster.simnode").info("signal received", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = kube.connect(kubeconfig, field_manager="simnode", pool_size=max(16, opts.heartbeat_workers + 8))
    try:
        node_agent.Agent(api, opts, state_dir).run(stop)
    finally:
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
