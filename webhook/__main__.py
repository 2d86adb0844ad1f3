"""Entry point of ``fma-webhook``.

Parses the command line, builds the one ``Settings`` (flags win over
``FMA_WEBHOOK_*`` environment variables) and serves.  ``fma-webhook
render-config`` prints the MutatingWebhookConfiguration for a URL or a
Service instead.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import pydantic
import yaml

from crds import validation_paths
from webhook import configuration, server
from webhook import settings as settings_mod

__all__ = ["main"]

_LEVELS = ["critical", "error", "warning", "info", "debug"]


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fma-webhook", description="FMA mutating admission webhook (HTTPS).")
    p.add_argument("--host", help="listen address (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default 8443)")
    p.add_argument("--tls-cert-file", help="serving certificate (PEM); reloaded when it changes")
    p.add_argument("--tls-key-file", help="serving key (PEM)")
    p.add_argument("--cert-check-seconds", type=float, help="how often the certificate files are checked (10)")
    p.add_argument("--requester-image", help="image of the requester agent container")
    p.add_argument(
        "--requester-command", action="append", help="command word of the agent (repeat for each; fma-requester)"
    )
    p.add_argument("--image-pull-policy", choices=["Always", "IfNotPresent", "Never"])
    p.add_argument("--requester-cpu", help="CPU request of the agent (50m)")
    p.add_argument("--requester-memory", help="memory request and limit of the agent (128Mi)")
    p.add_argument("--probes-port", type=int, help="agent probe port (8080)")
    p.add_argument("--spi-port", type=int, help="agent SPI port when admin-port is not set (8081)")
    p.add_argument("--scheduler-name", help="scheduler for requesters; '' leaves it alone (fma-scheduler)")
    p.add_argument("--max-body-bytes", type=int, help="largest AdmissionReview accepted (7 MiB)")
    p.add_argument("--no-lookups", dest="lookups", action="store_false", default=None, help="never read the cluster")
    p.add_argument("--kubeconfig", help="credentials for lookups (default: usual lookup)")
    p.add_argument("--lookup-timeout-seconds", type=float, help="bound on one cluster lookup (1)")
    p.add_argument("--log-level", choices=_LEVELS)
    p.add_argument(
        "--placement", choices=["extender", "hints", "hints+extender"], help="how requesters reach sleepers (extender)"
    )
    p.add_argument("--placement-namespace", help="namespace of ISCs and LauncherConfigs for hints (default: all)")
    p.add_argument("--gpu-map-namespace", help="namespace of the gpu-map ConfigMap (default: --placement-namespace)")
    p.add_argument(
        "--gpu-allocation", choices=["lowest-index", "unknown"], help="device plugin GPU pick (lowest-index)"
    )
    p.add_argument("--sleeper-limit", type=int, help="the controller's direct-mode sleeper limit (2)")
    p.add_argument(
        "--nominate",
        nargs="?",
        const="gate",
        choices=["off", "gate", "plugin"],
        help="with hints, for a requester whose best node is certain-hot: gate it until the controllers nominate "
        "that node (gate; the bare flag), or name it for FMA's scheduler plugin (plugin) (off)",
    )
    p.add_argument("--max-hinted-nodes", type=int, help="most nodes named in one requester's hints (16)")
    p.add_argument(
        "--gpu-claims",
        choices=["device-plugin", "dra"],
        help="requesters' GPUs: nvidia.com/gpu or a ResourceClaim each (device-plugin)",
    )
    p.add_argument("--dra-device-class", help="DeviceClass of the requesters' claims (fma-gpu)")
    p.add_argument("--dra-driver", help="DRA driver whose uuid attribute names a sleeper's GPUs (gpu.nvidia.com)")
    return p


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fma-webhook render-config", description="Print the webhook configuration.")
    p.add_argument("--ca-bundle-file", required=True, help="PEM CA bundle the apiserver should trust")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="https URL of the webhook's /mutate")
    where.add_argument("--service", help="<namespace>/<name>[:port] of the webhook's Service")
    p.add_argument("--name", help="configuration name (fma-webhook)")
    p.add_argument("--fma-namespace", help="FMA's own namespace, excluded from mutation")
    return p


def _render(argv: list[str]) -> int:
    args = _render_parser().parse_args(argv)
    bundle = pathlib.Path(args.ca_bundle_file).read_bytes()
    service = None
    if args.service:
        namespace, _, rest = args.service.partition("/")
        name, _, port = rest.partition(":")
        service = configuration.ServiceRef(namespace, name, int(port) if port else 443)
    document = configuration.render(
        bundle, url=args.url, service=service, name=args.name, fma_namespace=args.fma_namespace
    )
    print(yaml.safe_dump(document, sort_keys=False), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``fma-webhook`` (or ``fma-webhook render-config``)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["render-config"]:
        return _render(words[1:])
    args = _serve_parser().parse_args(words)
    given: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = settings_mod.Settings(**given)
    except pydantic.ValidationError as exc:
        print(f"fma-webhook: invalid configuration: {validation_paths.summary(exc)}", file=sys.stderr)
        return 2
    return server.run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
