"""The ``fma-requester`` process: discover the GPUs once, then serve the SPI and the probe port.

The SPI also carries upstream's ``/v1/proxy/config`` (``requester_proxy``),
whose TCP proxy listens on ``proxy_port`` once configured.

Memory usage is measured per request through NVML when it works here, and
otherwise read from what engine simulators publish (``sim_usage``), which
is how the requester agent reports memory on GPU-less development nodes.
"""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType

import uvicorn

from crds import log_output
from launcher import errors, gpu_discovery, nvml, requester_app, requester_proxy, sim_usage
from launcher import settings as settings_mod

__all__ = ["memory_probe", "run"]

logger = logging.getLogger(__name__)


class _NvmlProbe:
    def __init__(self, handle: nvml.Nvml) -> None:
        self._nvml = handle

    def __call__(self, uuids: list[str]) -> dict[str, int]:
        used = self._nvml.memory_used_mib()
        missing = [u for u in uuids if u not in used]
        if missing:
            raise errors.GpuDiscoveryFailed(f"NVML does not know GPU {missing[0]!r}")
        return {u: used[u] for u in uuids}


class _SimProbe:
    def __init__(self, settings: settings_mod.RequesterSettings) -> None:
        self._dir = settings.sim_usage_dir

    def __call__(self, uuids: list[str]) -> dict[str, int]:
        return sim_usage.read_total(self._dir, uuids)


def memory_probe(settings: settings_mod.RequesterSettings) -> requester_app.MemoryProbe:
    """NVML when it is usable here, else the engine simulators' published usage."""
    try:
        return _NvmlProbe(nvml.load())
    except errors.NvmlUnavailable as exc:
        logger.info("using simulated GPU memory usage", extra={"reason": str(exc), "dir": str(settings.sim_usage_dir)})
        return _SimProbe(settings)


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(settings: settings_mod.RequesterSettings) -> int:
    """Serve until SIGTERM/SIGINT (graceful, within ``shutdown_grace_seconds``); returns the exit status."""
    log_output.configure(settings.log_level)
    uuids, source = gpu_discovery.discover(settings.nvidia_visible_devices)
    logger.info("requester agent starting", extra={"gpus": uuids, "gpu_source": source})
    readiness = requester_app.Readiness()
    spi = requester_app.create_spi_app(readiness, uuids, memory_probe(settings))
    requester_proxy.install(spi, requester_proxy.TcpProxy(settings.host, settings.proxy_port))
    probes = requester_app.create_probes_app(readiness)
    sockets = [
        socket.create_server((settings.host, settings.probes_port)),
        socket.create_server((settings.host, settings.spi_port)),
    ]
    router = requester_app.PortRouter({settings.probes_port: probes, settings.spi_port: spi})
    config = uvicorn.Config(
        router,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.Server(config).run(sockets=sockets)
    return 0
