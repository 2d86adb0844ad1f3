"""Entry point of ``fma-extender``: flags, settings, logging, the cluster model and uvicorn.

With ``--tls-cert-file``/``--tls-key-file`` it serves HTTPS through
``certs.ReloadingContext``, so renewed files (e.g. from ``fma-certs``) are
picked up without a restart.  Flags win over ``FMA_EXTENDER_*`` environment variables (only given flags are
passed to ``Settings``).  The watch caches start before the server; until
they have synced, ``/healthz`` answers 503 and the verbs answer neutrally for
nodes the model does not know yet.
"""

from __future__ import annotations

import argparse
import logging
import sys

import pydantic
import uvicorn

import kube
from certs import errors as certs_errors
from certs import reloading_context
from crds import log_output, sleeper_scoring, validation_paths
from extender import http_api, metrics
from extender import settings as settings_mod
from kube import errors as kube_errors
from kube import sleeper_cache

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fma-extender", description="FMA kube-scheduler extender (filter, prioritize).")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8890)")
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    p.add_argument("--namespace", help="namespace of ISCs and LauncherConfigs (default: all)")
    p.add_argument("--gpu-map-namespace", help="namespace of the gpu-map ConfigMap (default: --namespace)")
    p.add_argument("--tls-cert-file", help="serve HTTPS with this certificate (with --tls-key-file)")
    p.add_argument("--tls-key-file", help="private key of --tls-cert-file")
    p.add_argument("--sleeper-limit", type=int, help="the controller's direct-mode sleeper limit (default 2)")
    p.add_argument(
        "--gpu-allocation",
        choices=list(sleeper_scoring.ALLOCATIONS),
        help="how the device plugin picks GPUs (default lowest-index: simnode, NVIDIA device plugin)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the extender until SIGTERM or SIGINT."""
    args = _parser().parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = settings_mod.Settings(**given)
    except pydantic.ValidationError as exc:
        print(f"fma-extender: invalid configuration: {validation_paths.summary(exc)}", file=sys.stderr)
        return 2
    log_output.configure(settings.log_level)
    try:
        api = kube.connect(settings.kubeconfig, field_manager="fma-extender")
    except kube_errors.ConfigError as exc:
        print(f"fma-extender: {exc}", file=sys.stderr)
        return 2
    extender_metrics = metrics.ExtenderMetrics()
    model = sleeper_cache.SleeperCache(
        api,
        namespace=settings.namespace,
        gpu_map_namespace=settings.effective_gpu_map_namespace,
        on_malformed_inventory=extender_metrics.malformed_inventories.inc,
    )
    app = http_api.create_app(
        world=model,
        extender_metrics=extender_metrics,
        ready=lambda: model.synced,
        policy=sleeper_scoring.Policy(
            sleeper_limit=settings.sleeper_limit, allocation=sleeper_scoring.Allocation(settings.gpu_allocation)
        ),
        max_body_bytes=settings.max_body_bytes,
    )
    tls: reloading_context.ReloadingContext | None = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        try:
            tls = reloading_context.ReloadingContext(settings.tls_cert_file, settings.tls_key_file)
        except certs_errors.CertsError as exc:
            print(f"fma-extender: {exc}", file=sys.stderr)
            return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ssl_context_factory=(lambda _config, _default: tls.context) if tls is not None else None,
    )
    if tls is not None:
        tls.start(settings.cert_check_seconds)
    model.start()
    logger.info("extender starting", extra={"host": settings.host, "port": settings.port, "tls": settings.tls})
    try:
        uvicorn.Server(config).run()
    finally:
        model.stop()
        api.close()
        if tls is not None:
            tls.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
