"""The ``fma-controllers`` process: caches, leader election and both controllers (plus the nominator).

Wiring only: it builds the API clients, the watch caches the controllers
share, the metrics registry and the health server, then campaigns for the
``fma-controllers`` Lease.  Only the leader reconciles; a replica that loses
the lease stops (and its Deployment restarts it as a standby), as
controller-runtime managers do.
"""

from __future__ import annotations

import base64
import logging
import secrets
import signal
import threading
from types import FrameType

import httpx
import prometheus_client

import kube
from controllers import (
    claim_keeper,
    dpc_metrics,
    dual_pods,
    health_server,
    launcher_template,
    node_agents,
    nomination,
    populator,
)
from controllers import settings as settings_mod
from crds import names
from kube import resources

__all__ = ["Controllers", "launcher_token", "run"]

logger = logging.getLogger(__name__)


class Controllers:
    """Both controllers of one namespace, with their caches; started by ``start``, stopped by ``stop``."""

    def __init__(self, settings: settings_mod.Settings, registry: prometheus_client.CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.api = kube.connect(settings.kubeconfig, field_manager=names.DPC_FIELD_MANAGER)
        namespace = settings.namespace
        self.pods = kube.WatchCache(
            self.api,
            resources.PODS,
            namespace=namespace,
            indexers={**dual_pods.POD_INDEXERS, **populator.POD_INDEXERS},
        )
        self.nodes = kube.WatchCache(self.api, resources.NODES)
        self.iscs = kube.WatchCache(self.api, resources.INFERENCE_SERVER_CONFIGS, namespace=namespace)
        self.lcs = kube.WatchCache(self.api, resources.LAUNCHER_CONFIGS, namespace=namespace)
        self.lpps = kube.WatchCache(self.api, resources.LAUNCHER_POPULATION_POLICIES, namespace=namespace)
        self.gpu_maps = kube.WatchCache(
            self.api,
            resources.CONFIG_MAPS,
            namespace=settings.gpu_map_namespace or namespace,
            field_selector=f"metadata.name={names.GPU_MAP_CONFIGMAP}",
        )
        self.caches = [self.pods, self.nodes, self.iscs, self.lcs, self.lpps, self.gpu_maps]
        self.metrics = dpc_metrics.DPCMetrics(registry)
        token = launcher_token(self.api, settings)
        self._http = httpx.Client()

        def observe(purpose: str, method: str, code: str, seconds: float) -> None:
            self.metrics.http_latency_seconds.labels(
                purpose=purpose, method=method, exported_namespace=namespace, isc_name="", status_code=code
            ).observe(seconds)

        self.dual_pods: dual_pods.DualPodsController | None = None
        if settings.enable_dual_pods:
            self.dual_pods = dual_pods.DualPodsController(
                self.api,
                settings=dual_pods.DPCSettings(
                    namespace=namespace,
                    gpu_map_namespace=settings.gpu_map_namespace,
                    sleeper_limit=settings.sleeper_limit,
                    num_workers=settings.num_workers,
                    debug_accelerator_memory=settings.debug_accelerator_memory,
                    start_deadline_seconds=settings.start_deadline,
                    launcher_token=token,
                    launcher_token_secret=settings.launcher_token_secret,
                ),
                pods=self.pods,
                nodes=self.nodes,
                iscs=self.iscs,
                lcs=self.lcs,
                gpu_maps=self.gpu_maps,
                agents=node_agents.NodeAgents(self._http, observe=observe, launcher_token=token),
                events=kube.EventRecorder(self.api, component=names.DPC_FIELD_MANAGER, instance=settings.identity),
                metrics=self.metrics,
            )
            self.dual_pods.register_handlers()
        self.populator: populator.Populator | None = None
        if settings.enable_populator:
            # The populator writes with its own field manager and event component
            # (docs/protocol.md, "Fixed names, containers and environment").
            self._populator_api = kube.connect(settings.kubeconfig, field_manager=names.POPULATOR_FIELD_MANAGER)
            self.populator = populator.Populator(
                self._populator_api,
                namespace=namespace,
                pods=self.pods,
                nodes=self.nodes,
                launcher_configs=self.lcs,
                policies=self.lpps,
                events=kube.EventRecorder(
                    self._populator_api, component=names.POPULATOR_FIELD_MANAGER, instance=settings.identity
                ),
                registry=registry,
                settings=populator.PopulatorSettings(
                    expectation_timeout=settings.expectation_timeout,
                    stuck_starting_threshold=settings.stuck_starting_threshold,
                    stuck_scheduling_threshold=settings.stuck_scheduling_threshold,
                    auth_token_secret=settings.launcher_token_secret,
                ),
            )
            self.populator.register_handlers()
        self.claim_keeper: claim_keeper.ClaimKeeper | None = None
        if settings.enable_gpu_claims:
            self.claim_keeper = claim_keeper.ClaimKeeper(
                self.api,
                namespace=namespace,
                pods=self.pods,
                events=kube.EventRecorder(self.api, component=names.DPC_FIELD_MANAGER, instance=settings.identity),
            )
            self.claim_keeper.register_handlers()
            self.caches.append(self.claim_keeper.claims)
        # Always on: a requester the webhook gated for nomination waits for this (controllers/nomination.py).
        self.nominator = nomination.Nominator(
            self.api, namespace=namespace, pods=self.pods, nodes=self.nodes, registry=registry
        )
        self.nominator.register_handlers()
        self._leading = False

    def start_caches(self, timeout: float = 60.0) -> bool:
        """Start every cache and wait for their first lists."""
        for cache in self.caches:
            cache.start()
        return kube.cache.wait_all_synced(self.caches, timeout)

    def synced(self) -> bool:
        """Whether every cache has loaded."""
        return all(c.synced for c in self.caches)

    def start_leading(self) -> None:
        """Begin reconciling (called when this replica becomes the leader)."""
        self._leading = True
        self.nominator.start()
        if self.dual_pods is not None:
            self.dual_pods.start()
        if self.populator is not None:
            self.populator.start(workers=self.settings.num_workers)
        if self.claim_keeper is not None:
            self.claim_keeper.start()
        logger.info("controllers started", extra={"namespace": self.settings.namespace})

    def stop(self) -> None:
        """Stop reconciling and watching."""
        if self._leading:
            self.nominator.stop()
        if self.dual_pods is not None and self._leading:
            self.dual_pods.stop()
        if self.claim_keeper is not None and self._leading:
            self.claim_keeper.stop()
        if self.populator is not None and self._leading:
            self.populator.stop()
            self._populator_api.close()
        for cache in self.caches:
            cache.stop()
        self._http.close()
        self.api.close()


def launcher_token(api: kube.Client, settings: settings_mod.Settings) -> str | None:
    """The bearer token the controllers send to launchers, or None when auth is off.

    See docs/security.md, "Launcher auth, end to end".
    ``--launcher-token-file`` wins.  Otherwise, with ``--launcher-token-secret``,
    the token is read from that Secret in the controllers' namespace (key
    ``token``), and the Secret is created with a random token when it does not
    exist yet, so launcher auth needs nothing but the Secret's name.  Launchers
    get the same Secret through ``secretKeyRef`` (``launcher_template``).
    """
    if settings.launcher_token_file:
        with open(settings.launcher_token_file, encoding="utf-8") as handle:
            return handle.read().strip() or None
    name = settings.launcher_token_secret
    if not name:
        logger.warning(
            "launcher auth is off: launchers created by these controllers serve their API to anyone who can "
            "reach them; set --launcher-token-secret"
        )
        return None
    key = launcher_template.AUTH_TOKEN_SECRET_KEY
    secret = api.get_or_none(resources.SECRETS, name, settings.namespace)
    if secret is None:
        body = {
            "metadata": {"name": name},
            "type": "Opaque",
            "data": {key: base64.b64encode(secrets.token_urlsafe(32).encode()).decode()},
        }
        try:
            secret = api.create(resources.SECRETS, body, settings.namespace)
            logger.info("launcher token Secret created", extra={"secret": name})
        except kube.errors.AlreadyExists:
            secret = api.get(resources.SECRETS, name, settings.namespace)  # another replica made it first
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        raise ValueError(f"Secret {settings.namespace}/{name} has no key {key!r} holding the launcher token")
    return base64.b64decode(encoded).decode().strip() or None


def run(settings: settings_mod.Settings, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the exit code."""
    stop = stop or threading.Event()
    lost = threading.Event()
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    registry = prometheus_client.CollectorRegistry()
    controllers = Controllers(settings, registry)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    health = health_server.HealthServer(
        settings.metrics_host, settings.metrics_port, registry=registry, ready=controllers.synced
    )
    health.start()
    if not controllers.start_caches():
        logger.error("caches did not sync; is the API reachable and are the CRDs installed?")
        health.stop()
        controllers.stop()
        return 1
    elector: kube.LeaderElector | None = None
    if settings.leader_elect:

        def lost_lease() -> None:
            if not stop.is_set():
                lost.set()
                stop.set()

        elector = kube.LeaderElector(
            controllers.api,
            namespace=settings.namespace,
            name=names.CONTROLLERS_LEASE,
            identity=settings.identity,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            on_started_leading=controllers.start_leading,
            on_stopped_leading=lost_lease,
        )
        elector.start()
    else:
        controllers.start_leading()
    stop.wait()
    logger.info("shutting down", extra={"lost_lease": lost.is_set()})
    if elector is not None:
        elector.stop()
    controllers.stop()
    health.stop()
    return 1 if lost.is_set() else 0
