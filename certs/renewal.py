"""Carrying out a rotation run: read the store, plan, mint, write, inject.

The order of writes is what keeps clients trusting the server:

1. trust first: the caBundle (and a staged next CA) is written and injected
   into every target;
2. then identity: the current CA and the serving certificate are written,
   which servers pick up through ``reloading_context``.

A failure in step 1 leaves the serving certificate untouched.  Every run is
level-triggered, so running it again after a failure converges.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Sequence

from cryptography import x509

from certs import ca_bundle, credential, errors, injection, issuer, rotation_plan, store
from kube import client as kube_client

__all__ = ["Outcome", "read_state", "run"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a run decided and did."""

    plan: rotation_plan.Plan
    state: rotation_plan.State
    injected: tuple[injection.Target, ...]


def _pair(snapshot: store.Snapshot, cert_item: str, key_item: str, *, strict: bool) -> credential.Credential | None:
    cert, key = snapshot.get(cert_item), snapshot.get(key_item)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        if strict:
            raise errors.InvalidMaterial(cert_item, f"{cert_item!r} and {key_item!r} must both be present")
        return None
    try:
        return credential.Credential.parse(cert_item, cert, key)
    except errors.InvalidMaterial:
        if strict:
            raise
        logger.warning("ignoring unusable stored certificate", extra={"item": cert_item})
        return None


def read_state(snapshot: store.Snapshot) -> rotation_plan.State:
    """Parse a store snapshot.

    A broken CA raises ``InvalidMaterial`` (replacing it silently would cut
    off every client); a broken serving certificate or bundle is treated as
    missing, so the run re-creates it.
    """
    ca = _pair(snapshot, store.CA_CERT, store.CA_KEY, strict=True)
    next_ca = _pair(snapshot, store.NEXT_CA_CERT, store.NEXT_CA_KEY, strict=True)
    serving = _pair(snapshot, store.TLS_CERT, store.TLS_KEY, strict=False)
    try:
        bundle = tuple(ca_bundle.parse(snapshot.get(store.BUNDLE, b"")))
    except errors.InvalidMaterial:
        logger.warning("ignoring unusable stored caBundle")
        bundle = ()
    return rotation_plan.State(ca=ca, next_ca=next_ca, serving=serving, bundle=bundle)


def _bundle_after(
    state: rotation_plan.State,
    plan: rotation_plan.Plan,
    ca: credential.Credential,
    next_ca: credential.Credential | None,
) -> list[x509.Certificate]:
    if plan.action is rotation_plan.Action.CREATE:
        return [ca.certificate]
    certificates = [c for c in state.bundle if credential.fingerprint(c) not in plan.drop_from_bundle]
    present = {credential.fingerprint(c) for c in certificates}
    for wanted in (ca, next_ca):
        if wanted is not None and wanted.fingerprint not in present:
            certificates.append(wanted.certificate)
    return certificates


def run(
    target_store: store.Store,
    policy: rotation_plan.Policy,
    now: datetime.datetime,
    *,
    api: kube_client.Client | None = None,
    targets: Sequence[injection.Target] = (),
    force_ca: bool = False,
    force_serving: bool = False,
) -> Outcome:
    """One rotation run against ``target_store``; injects into ``targets`` through ``api``."""
    if targets and api is None:
        raise ValueError("injection targets need an API client")
    state = read_state(target_store.load())
    published = True
    if state.next_ca is not None and targets and api is not None:
        published = injection.published(api, targets, state.next_ca.certificate)
    decided = rotation_plan.plan(
        state, policy, now, next_ca_published=published, force_ca=force_ca, force_serving=force_serving
    )
    logger.info(
        "rotation planned",
        extra={
            "store": target_store.describe(),
            "action": decided.action.value,
            "reissue_serving": decided.reissue_serving,
            "reasons": list(decided.reasons),
        },
    )
    ca, next_ca = state.ca, state.next_ca
    trust: dict[str, bytes | None] = {}
    identity: dict[str, bytes | None] = {}
    if decided.action is rotation_plan.Action.CREATE:
        ca, next_ca = issuer.create_ca(policy.ca_common_name, now, policy.ca_validity, policy.algorithm), None
        identity.update({store.CA_CERT: ca.cert_pem, store.CA_KEY: ca.key_pem})
        identity.update({store.NEXT_CA_CERT: None, store.NEXT_CA_KEY: None})
    elif decided.action is rotation_plan.Action.STAGE:
        next_ca = issuer.create_ca(policy.ca_common_name, now, policy.ca_validity, policy.algorithm)
        trust.update({store.NEXT_CA_CERT: next_ca.cert_pem, store.NEXT_CA_KEY: next_ca.key_pem})
    elif decided.action is rotation_plan.Action.PROMOTE:
        assert next_ca is not None
        ca, next_ca = next_ca, None
        identity.update({store.CA_CERT: ca.cert_pem, store.CA_KEY: ca.key_pem})
        identity.update({store.NEXT_CA_CERT: None, store.NEXT_CA_KEY: None})
    assert ca is not None
    serving = state.serving
    if decided.reissue_serving:
        serving = issuer.issue_serving(ca, policy.identity, now, policy.serving_validity, policy.algorithm)
        identity.update({store.TLS_CERT: serving.cert_pem, store.TLS_KEY: serving.key_pem})
    bundle = ca_bundle.compose(_bundle_after(state, decided, ca, next_ca))
    if bundle != ca_bundle.compose(state.bundle):
        trust[store.BUNDLE] = bundle
    if decided.action is rotation_plan.Action.CREATE:
        # Nothing trusts the new CA yet and nothing old is worth keeping: one write.
        trust, identity = {**trust, **identity}, {}
    if trust:
        target_store.save(trust)
    injected: tuple[injection.Target, ...] = ()
    if targets and api is not None:
        injected = tuple(injection.inject(api, targets, bundle))
    if identity:
        target_store.save(identity)
    after = rotation_plan.State(ca=ca, next_ca=next_ca, serving=serving, bundle=tuple(ca_bundle.parse(bundle)))
    return Outcome(plan=decided, state=after, injected=injected)
