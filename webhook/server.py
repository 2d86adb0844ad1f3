"""The ``fma-webhook`` process: settings → app → uvicorn over a reloading TLS context.

uvicorn would build its own ``SSLContext`` from file names once; its
``ssl_context_factory`` hands it the context of our
``certs.ReloadingContext`` instead, whose watcher thread loads
renewed certificate files into the live context, so a rotation needs no
restart (new connections get the new certificate, old ones finish).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import signal
import socket
import ssl
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

from certs import reloading_context
from crds import log_output, sleeper_scoring
from kube import client as kube_client
from kube import sleeper_cache
from webhook import app as app_mod
from webhook import cluster_facts, gpu_claim, metrics, mutation, requester_agent
from webhook import settings as settings_mod

__all__ = ["ThreadedServer", "build_state", "build_uvicorn", "mutation_options", "run", "sleeper_hints"]

logger = logging.getLogger(__name__)


def mutation_options(settings: settings_mod.Settings) -> mutation.Options:
    """The mutation's options from the settings (pure)."""
    agent = requester_agent.AgentSpec(
        image=settings.requester_image,
        command=tuple(settings.requester_command),
        image_pull_policy=settings.image_pull_policy,
        cpu=settings.requester_cpu,
        memory=settings.requester_memory,
        probes_port=settings.probes_port,
    )
    return mutation.Options(
        agent=agent,
        spi_port=settings.spi_port,
        scheduler_name=settings.scheduler_name,
        placement=settings.placement,
        gpu_claims=gpu_claims_options(settings),
        nominate=settings.nominate,
    )


def gpu_claims_options(settings: settings_mod.Settings) -> gpu_claim.GpuClaims:
    """The DRA options of ``settings`` (pure)."""
    return gpu_claim.GpuClaims(
        default=settings.gpu_claims, device_class=settings.dra_device_class, driver=settings.dra_driver
    )


def sleeper_hints(
    settings: settings_mod.Settings, api: kube_client.Client, webhook_metrics: metrics.Metrics
) -> cluster_facts.SleeperHints:
    """The hint source of ``settings`` over a (not yet started) sleeper cache read through ``api``."""
    cache = sleeper_cache.SleeperCache(
        api,
        namespace=settings.placement_namespace,
        gpu_map_namespace=settings.gpu_map_namespace or settings.placement_namespace,
        on_malformed_inventory=webhook_metrics.malformed_inventories.inc,
    )
    policy = sleeper_scoring.Policy(
        sleeper_limit=settings.sleeper_limit, allocation=sleeper_scoring.Allocation(settings.gpu_allocation)
    )
    return cluster_facts.SleeperHints(cache, policy, limit=settings.max_hinted_nodes)


def build_state(
    settings: settings_mod.Settings, facts: cluster_facts.FactSource, webhook_metrics: metrics.Metrics
) -> app_mod.AppState:
    """The app state for ``settings``."""
    return app_mod.AppState(
        options=mutation_options(settings),
        facts=facts,
        metrics=webhook_metrics,
        max_body_bytes=settings.max_body_bytes,
    )


def build_uvicorn(app: Any, context: ssl.SSLContext, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app`` over ``context`` (sockets are given to ``run``/``serve``)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level,
        access_log=False,
        ssl_context_factory=lambda _config, _default: context,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


@dataclasses.dataclass
class ThreadedServer:
    """A uvicorn server running in a background thread (for embedding: tests, benchmarks)."""

    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @classmethod
    def start(cls, app: Any, context: ssl.SSLContext, host: str = "127.0.0.1", timeout: float = 10.0) -> ThreadedServer:
        """Listen on a free port of ``host`` and serve ``app`` until ``stop``; wait until it accepts."""
        server = build_uvicorn(app, context)
        sock = socket.create_server((host, 0))
        port = int(sock.getsockname()[1])
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fma-webhook", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.01)
        return cls(server=server, thread=thread, port=port)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _certificate_valid(context: reloading_context.ReloadingContext) -> bool:
    """Ready while the certificate being served has not expired."""
    not_after = context.not_after
    return not_after is not None and not_after > datetime.datetime.now(datetime.UTC)


def run(settings: settings_mod.Settings) -> int:
    """Serve until SIGTERM/SIGINT (stop accepting, finish requests, exit 0); returns the exit status."""
    log_output.configure(settings.log_level)
    webhook_metrics = metrics.Metrics()
    context = reloading_context.ReloadingContext(
        settings.tls_cert_file, settings.tls_key_file, on_reload=webhook_metrics.certificate_loaded
    )
    context.start(settings.cert_check_seconds)
    lookups: cluster_facts.ClusterLookups | None = None
    facts: cluster_facts.FactSource = cluster_facts.NoLookups()
    if settings.lookups:
        api = kube_client.connect(settings.kubeconfig, field_manager="fma-webhook")
        lookups = cluster_facts.ClusterLookups(
            api,
            timeout=settings.lookup_timeout_seconds,
            # DRA mode reads the sleepers too: a claim prefers the best sleeper's GPUs.
            hints=sleeper_hints(settings, api, webhook_metrics) if settings.hints or settings.dra else None,
            gpu_claims=gpu_claims_options(settings),
        )
        lookups.start()
        facts = lookups
    state = build_state(settings, facts, webhook_metrics)
    state.ready = functools.partial(_certificate_valid, context)
    server = build_uvicorn(app_mod.create_app(state), context.context, log_level=settings.log_level)
    sock = socket.create_server((settings.host, settings.port), reuse_port=False)
    logger.info("webhook serving", extra={"host": settings.host, "port": sock.getsockname()[1]})
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the previous handler: exit 0 then.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run(sockets=[sock])
    finally:
        context.stop()
        if lookups is not None:
            lookups.stop()
    return 0
