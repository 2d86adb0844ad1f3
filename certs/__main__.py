"""Entry point of ``fma-certs``: ``init``, ``rotate``, ``inject`` and ``show``.

* ``init``   — make the store right: create CA, serving certificate and
  caBundle when missing (and renew what is due); inject the bundle.
* ``rotate`` — one rotation run (see ``rotation_plan``); ``--force-ca``
  starts a CA rotation, ``--force-serving`` re-issues the serving
  certificate.  Run it periodically (for example from a CronJob).
* ``inject`` — write the stored caBundle into the targets, nothing else.
* ``show``   — describe the stored certificates (``--json`` for machines).

Exit status: 0 on success, 1 when the work failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from typing import Any

import pydantic

from certs import ca_bundle, errors, injection, renewal, report, store
from certs import settings as settings_mod
from crds import validation_paths
from kube import client as kube_client
from kube import errors as kube_errors

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("store (exactly one)")
    where.add_argument("--dir", help="directory of PEM files ($FMA_CERTS_DIR)")
    where.add_argument("--secret", help="Secret <namespace>/<name> ($FMA_CERTS_SECRET)")
    common.add_argument("--kubeconfig", help="kubeconfig for the Secret and injection (default: usual lookup)")
    common.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    policy = argparse.ArgumentParser(add_help=False)
    group = policy.add_argument_group("certificates")
    group.add_argument("--dns-name", dest="dns_names", action="append", help="serving DNS SAN (repeatable)")
    group.add_argument("--ip", dest="ip_addresses", action="append", help="serving IP SAN (repeatable)")
    group.add_argument("--common-name", help="serving certificate CN (default fma-webhook)")
    group.add_argument("--ca-common-name", help="CA CN (default fma-ca)")
    group.add_argument("--ca-days", type=float, help="CA validity in days (default 3650)")
    group.add_argument("--serving-days", type=float, help="serving validity in days (default 90)")
    group.add_argument("--renew-fraction", type=float, help="renew when this share of validity is left (default 1/3)")
    group.add_argument("--overlap-hours", type=float, help="keep a retired CA in the caBundle this long (default 24)")
    group.add_argument("--algorithm", help="ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072, rsa-4096")
    targets = argparse.ArgumentParser(add_help=False)
    targets.add_argument(
        "--inject",
        action="append",
        metavar="KIND/NAME",
        help="caBundle target; a bare NAME is a MutatingWebhookConfiguration (repeatable)",
    )
    parser = argparse.ArgumentParser(prog="fma-certs", description="FMA certificates: CA, serving certs, caBundle.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", parents=[common, policy, targets], help="create what is missing, renew what is due")
    rotate = sub.add_parser("rotate", parents=[common, policy, targets], help="one rotation run")
    rotate.add_argument("--force-ca", action="store_true", help="start a CA rotation now")
    rotate.add_argument("--force-serving", action="store_true", help="re-issue the serving certificate now")
    sub.add_parser("inject", parents=[common, targets], help="write the stored caBundle into the targets")
    show = sub.add_parser("show", parents=[common], help="describe the stored certificates")
    show.add_argument("--json", action="store_true", help="print JSON")
    return parser


_SETTING_ARGS = (
    "dir",
    "secret",
    "kubeconfig",
    "dns_names",
    "ip_addresses",
    "common_name",
    "ca_common_name",
    "ca_days",
    "serving_days",
    "renew_fraction",
    "overlap_hours",
    "algorithm",
    "inject",
)


def _settings(args: argparse.Namespace) -> settings_mod.Settings:
    given: dict[str, Any] = {k: getattr(args, k) for k in _SETTING_ARGS if getattr(args, k, None) is not None}
    return settings_mod.Settings(**given)


def _api(settings: settings_mod.Settings) -> kube_client.Client:
    return kube_client.connect(settings.kubeconfig, field_manager="fma-certs")


def _store(settings: settings_mod.Settings, api: kube_client.Client | None) -> store.Store:
    if settings.dir is not None:
        return store.FileStore(settings.dir)
    assert settings.secret is not None
    assert api is not None
    namespace, name = settings.secret.split("/")
    return store.SecretStore(api, namespace, name)


def _run(args: argparse.Namespace, settings: settings_mod.Settings) -> int:
    now = datetime.datetime.now(datetime.UTC)
    targets = settings.targets()
    api = _api(settings) if settings.secret is not None or targets else None
    try:
        where = _store(settings, api)
        if args.command in ("init", "rotate"):
            outcome = renewal.run(
                where,
                settings.policy(),
                now,
                api=api,
                targets=targets,
                force_ca=getattr(args, "force_ca", False),
                force_serving=getattr(args, "force_serving", False),
            )
            summary = {
                "store": where.describe(),
                "action": outcome.plan.action.value,
                "reissued_serving": outcome.plan.reissue_serving,
                "dropped_from_bundle": sorted(outcome.plan.drop_from_bundle),
                "injected": [str(t) for t in outcome.injected],
                "reasons": list(outcome.plan.reasons),
            }
            print(json.dumps(summary))
            return 0
        state = renewal.read_state(where.load())
        if args.command == "inject":
            if not targets:
                print("fma-certs inject: give at least one --inject KIND/NAME", file=sys.stderr)
                return 2
            if not state.bundle:
                print(f"fma-certs inject: {where.describe()} holds no caBundle; run init first", file=sys.stderr)
                return 1
            assert api is not None
            changed = injection.inject(api, targets, ca_bundle.compose(state.bundle))
            print(json.dumps({"injected": [str(t) for t in changed]}))
            return 0
        described = report.describe_state(where.describe(), state, now)
        if args.json:
            print(described.model_dump_json(indent=2))
        else:
            _print_text(described)
        return 0
    finally:
        if api is not None:
            api.close()


def _print_text(described: report.StoreReport) -> None:
    print(f"store: {described.store}")
    for label, item in (("ca", described.ca), ("next ca", described.next_ca), ("serving", described.serving)):
        if item is None:
            print(f"{label}: none")
            continue
        sans = ", ".join(item.dns_names + item.ip_addresses)
        print(
            f"{label}: {item.subject} (issuer {item.issuer}) valid {item.not_before:%Y-%m-%d %H:%M} .. "
            f"{item.not_after:%Y-%m-%d %H:%M} UTC, {item.remaining_fraction:.1%} left, "
            f"sha256 {item.fingerprint_sha256[:16]}" + (f", SANs {sans}" if sans else "")
        )
    print(f"caBundle: {len(described.ca_bundle)} CA(s)")
    for item in described.ca_bundle:
        print(f"  - {item.subject} until {item.not_after:%Y-%m-%d} sha256 {item.fingerprint_sha256[:16]}")


def main(argv: list[str] | None = None) -> int:
    """Run ``fma-certs``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    try:
        settings = _settings(args)
        if args.command in ("init", "rotate"):
            settings.policy()
    except (pydantic.ValidationError, ValueError) as exc:
        message = validation_paths.summary(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
        print(f"fma-certs: invalid configuration: {message}", file=sys.stderr)
        return 2
    try:
        return _run(args, settings)
    except (errors.CertsError, kube_errors.KubeError) as exc:
        print(f"fma-certs {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
