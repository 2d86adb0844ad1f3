"""Writing the caBundle into the objects through which the apiserver calls us.

Targets are named ``<kind>/<name>`` with ``kind`` one of
``mutatingwebhookconfiguration``, ``validatingwebhookconfiguration``,
``customresourcedefinition`` (its conversion webhook) or ``apiservice``.
``with_ca_bundle`` computes the new object (pure); ``inject`` reads, changes
and writes it back with the resourceVersion it read, retrying on conflicts;
``published`` tells whether every target already carries a CA.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509

from certs import ca_bundle, errors
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources

__all__ = ["KINDS", "Target", "bundles_of", "inject", "published", "with_ca_bundle"]

logger = logging.getLogger(__name__)

_APISERVICES = resources.custom("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)

KINDS: Mapping[str, resources.Resource] = {
    "mutatingwebhookconfiguration": resources.MUTATING_WEBHOOK_CONFIGURATIONS,
    "validatingwebhookconfiguration": resources.VALIDATING_WEBHOOK_CONFIGURATIONS,
    "customresourcedefinition": resources.CUSTOM_RESOURCE_DEFINITIONS,
    "apiservice": _APISERVICES,
}
"""Target kinds (lower case, as in ``kubectl``) and their API resources."""

_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class Target:
    """One object that carries a caBundle."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse ``kind/name``; a bare name means a MutatingWebhookConfiguration."""
        kind, slash, name = text.partition("/")
        if not slash:
            kind, name = "mutatingwebhookconfiguration", text
        kind = kind.lower()
        if kind not in KINDS:
            raise ValueError(f"unknown target kind {kind!r} in {text!r}; expected one of {sorted(KINDS)}")
        if not name:
            raise ValueError(f"target {text!r} has no name")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def _client_configs(kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The mutable dicts whose ``caBundle`` (or ``spec``'s) holds the bundle."""
    if kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        return [w.setdefault("clientConfig", {}) for w in obj.get("webhooks") or []]
    if kind == "customresourcedefinition":
        webhook = ((obj.get("spec") or {}).get("conversion") or {}).get("webhook")
        return [webhook.setdefault("clientConfig", {})] if isinstance(webhook, dict) else []
    return [obj.setdefault("spec", {})]


def with_ca_bundle(kind: str, obj: Mapping[str, Any], bundle_pem: bytes) -> tuple[dict[str, Any], bool]:
    """Return a copy of ``obj`` with every caBundle set to ``bundle_pem``, and whether anything changed (pure)."""
    updated = copy.deepcopy(dict(obj))
    encoded = base64.b64encode(bundle_pem).decode("ascii")
    changed = False
    for config in _client_configs(kind, updated):
        if config.get("caBundle") != encoded:
            config["caBundle"] = encoded
            changed = True
    return updated, changed


def bundles_of(kind: str, obj: Mapping[str, Any]) -> list[bytes]:
    """The decoded caBundles an object carries now (empty bytes where one is unset)."""
    out: list[bytes] = []
    for config in _client_configs(kind, copy.deepcopy(dict(obj))):
        try:
            out.append(base64.b64decode(config.get("caBundle") or "", validate=True))
        except (binascii.Error, ValueError):
            out.append(b"")
    return out


def inject(api: kube_client.Client, targets: Iterable[Target], bundle_pem: bytes) -> list[Target]:
    """Write ``bundle_pem`` into every target; return the ones that changed.

    Raises ``InjectionFailed`` when a target is missing, has no place for a
    caBundle, or keeps conflicting.
    """
    changed: list[Target] = []
    for target in targets:
        resource = KINDS[target.kind]
        for attempt in range(_ATTEMPTS):
            try:
                current = api.get(resource, target.name)
                updated, differs = with_ca_bundle(target.kind, current, bundle_pem)
                if not _client_configs(target.kind, updated):
                    raise errors.InjectionFailed(f"{target} has no webhook clientConfig to carry a caBundle")
                if differs:
                    api.replace(resource, updated)
                    changed.append(target)
                    logger.info("caBundle injected", extra={"target": str(target)})
                break
            except kube_errors.Conflict:
                if attempt == _ATTEMPTS - 1:
                    raise errors.InjectionFailed(f"{target} kept changing; caBundle not written") from None
            except kube_errors.KubeError as exc:
                raise errors.InjectionFailed(f"cannot inject the caBundle into {target}: {exc}") from exc
    return changed


def published(api: kube_client.Client, targets: Iterable[Target], certificate: x509.Certificate) -> bool:
    """Whether every caBundle of every target already includes ``certificate``."""
    for target in targets:
        try:
            current = api.get(KINDS[target.kind], target.name)
        except kube_errors.KubeError as exc:
            raise errors.InjectionFailed(f"cannot read {target}: {exc}") from exc
        bundles = bundles_of(target.kind, current)
        if not bundles or not all(_holds(pem, certificate) for pem in bundles):
            return False
    return True


def _holds(pem: bytes, certificate: x509.Certificate) -> bool:
    try:
        return ca_bundle.contains(pem, certificate)
    except errors.InvalidMaterial:
        return False
