"""The ``fma-launcher`` process: preloaded parent, process table and HTTP server, wired together.

Order matters: the zygote is forked first, while this process has no event
loop and no threads, then uvicorn starts.  At shutdown the watch streams are
ended before uvicorn waits for open connections (they would otherwise hold
it for the whole graceful timeout), then every instance is stopped, then
the zygote is closed.

The first inventory publication (no instances yet) is made once uvicorn
listens: it is the launcher's "I serve" on its own Pod, which the dual-pods
controller takes as reachable without waiting for the readiness probe's
first period (docs/launcher.md).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from types import FrameType

import httpx
import uvicorn

from crds import log_output
from launcher import engine as engine_mod
from launcher import (
    engine_readiness,
    event_log,
    gpu_table,
    inventory,
    launcher_app,
    launcher_metrics,
    pod_publisher,
    process_table,
    spawner,
    token_handoff,
    zygote,
)
from launcher import settings as settings_mod

__all__ = ["run"]

logger = logging.getLogger(__name__)

_SECRET_ENV = ("FMA_LAUNCHER_TOKEN",)


class _Server(uvicorn.Server):
    """uvicorn, telling ``on_serving`` once it listens and ending the watch streams before it waits for connections."""

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], None], on_serving: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown
        self._on_serving = on_serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_serving()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._before_shutdown()
        await super().shutdown(sockets)


def _token(settings: settings_mod.LauncherSettings, token_fd: int | None) -> str | None:
    if token_fd is not None:
        return token_handoff.read_fd(token_fd)
    if settings.auth_token_file is not None:
        return settings.auth_token_file.read_text().strip() or None
    return settings.token.get_secret_value() if settings.token is not None else None


def _readiness(spawn: spawner.Spawner) -> str | None:
    if spawn.broken:
        return "the preloaded parent exited; instances cannot start"
    if not spawn.preloaded:
        return "the engine is still being preloaded"
    return None


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(
    settings: settings_mod.LauncherSettings,
    observer: inventory.InventoryObserver | None = None,
    *,
    token_fd: int | None = None,
) -> int:
    """Serve the launcher API until SIGTERM/SIGINT; returns the exit status.

    ``observer`` is told about every instance change.  Without one, the
    launcher publishes its inventory on its own Pod when it runs in one
    (``pod_publisher``), and otherwise publishes nothing.  ``token_fd`` is
    the pipe the token was handed over on (``token_handoff``); the token is
    read only after the preloaded parent is forked, which closes the pipe.
    """
    log_output.configure(settings.log_level)
    engine = engine_mod.load(settings.engine)
    gpus = gpu_table.discover(settings)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    zygote_pid, sock = zygote.fork(engine, settings.preload_modules, close_fds=(token_fd,) if token_fd else ())
    token = _token(settings, token_fd)
    logger.info(
        "launcher starting",
        extra={"engine": engine.name, "gpu_source": gpus.source, "gpus": len(gpus.mapping), "auth": token is not None},
    )
    if token is None:
        logger.warning(
            "LAUNCHER API IS OPEN: no bearer token is set, so anyone who can reach this port can start processes; "
            "set FMA_LAUNCHER_TOKEN (or --auth-token-file)",
            extra={"host": settings.host, "port": settings.port},
        )
    spawn = spawner.Spawner(zygote_pid, sock)
    events = event_log.EventLog(settings.watch_buffer)
    metrics = launcher_metrics.LauncherMetrics()
    base_env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    publisher = pod_publisher.from_settings(settings) if observer is None else None
    health_http = httpx.AsyncClient(trust_env=False)  # the engines' /health, on this Pod's own addresses
    table = process_table.ProcessTable(
        spawn=spawn,
        engine=engine,
        gpus=gpus,
        events=events,
        observer=observer or publisher or inventory.NullObserver(),
        metrics=metrics,
        log_dir=settings.log_dir,
        stop_grace_seconds=settings.stop_grace_seconds,
        base_env=base_env,
        launcher_host=settings.host,
        max_instances=settings.max_instances,
        allowed_env=frozenset(settings.allow_env),
        health=engine_readiness.HealthCheck(health_http),
    )

    async def startup() -> None:
        if publisher is not None:
            publisher.start()  # it opens its apiserver connection while the engine is preloaded
        await spawn.start(table.on_exit)
        logger.info("engine preloaded", extra={"zygote_pid": zygote_pid, **spawn.preload_facts})

    def serving() -> None:
        """The socket listens: the first publication (no instances yet) says so on the Pod."""
        if publisher is not None:
            publisher.inventory_changed(table.snapshot())

    async def shutdown() -> None:
        await table.close()
        await health_http.aclose()
        if publisher is not None:
            await publisher.close()
        await spawn.close()

    app = launcher_app.create_app(
        table,
        metrics_render=metrics.render,
        token=token,
        max_body_bytes=settings.max_body_bytes,
        on_startup=startup,
        on_shutdown=shutdown,
        healthy=lambda: (
            "the preloaded parent exited; instances can neither start nor be watched" if spawn.broken else None
        ),
        ready=lambda: _readiness(spawn),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=int(settings.stop_grace_seconds) + 5,
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    _Server(config, events.close, serving).run()
    return 0
