"""Deciding what a rotation run must do: the pure half of ``renewal``.

A run looks at the stored state (CA, staged next CA, serving certificate,
caBundle), the policy and the time, and returns a ``Plan``.  CA rotation is
done in two runs so that no client ever sees a certificate it does not trust:

1. **stage**: a new CA is created and stored as the *next* CA, and added to
   the caBundle next to the current one; the bundle is injected.  The
   serving certificate is unchanged (still signed by the old CA).
2. **promote** (a later run, once every injection target carries the new
   CA): the next CA becomes the current one and the serving certificate is
   re-issued by it.  The old CA stays in the bundle.
3. **prune** (a later run, ``overlap`` after the serving certificate was
   re-issued, so that every server has reloaded it): CAs that are neither
   current nor next, and expired CAs, leave the bundle.

A serving certificate alone is re-issued (no bundle change needed) when a
configured fraction of its validity remains, when its SANs or key algorithm
differ from the policy, or when the current CA did not sign it.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum

from cryptography import x509

from certs import credential, errors, issuer

__all__ = ["Action", "Plan", "Policy", "State", "plan"]


@dataclasses.dataclass(frozen=True)
class Policy:
    """What certificates should look like and when they are renewed."""

    identity: issuer.ServingIdentity
    ca_common_name: str = "fma-ca"
    ca_validity: datetime.timedelta = datetime.timedelta(days=3650)
    serving_validity: datetime.timedelta = datetime.timedelta(days=90)
    renew_fraction: float = 1 / 3
    overlap: datetime.timedelta = datetime.timedelta(hours=24)
    algorithm: issuer.Algorithm = "ecdsa-p256"

    def __post_init__(self) -> None:
        if not 0.0 < self.renew_fraction < 1.0:
            raise errors.InvalidPolicy(f"renew_fraction must be in (0, 1), got {self.renew_fraction!r}")
        if self.ca_validity <= datetime.timedelta(0) or self.serving_validity <= datetime.timedelta(0):
            raise errors.InvalidPolicy("validities must be positive")
        if self.serving_validity > self.ca_validity:
            raise errors.InvalidPolicy(
                f"serving validity {self.serving_validity} exceeds CA validity {self.ca_validity}"
            )
        if self.overlap < datetime.timedelta(0):
            raise errors.InvalidPolicy(f"overlap must not be negative, got {self.overlap!r}")


@dataclasses.dataclass(frozen=True)
class State:
    """What the store holds now (any part may be missing)."""

    ca: credential.Credential | None = None
    next_ca: credential.Credential | None = None
    serving: credential.Credential | None = None
    bundle: tuple[x509.Certificate, ...] = ()


class Action(enum.Enum):
    """The CA step of a plan."""

    CREATE = "create"
    """No usable CA: create CA, serving certificate and bundle from scratch."""
    STAGE = "stage"
    """Create the next CA and add it to the bundle."""
    PUBLISH = "publish"
    """A next CA is staged but not yet in every target: inject again and wait."""
    PROMOTE = "promote"
    """The next CA is everywhere: make it current and re-issue the serving certificate."""
    KEEP = "keep"
    """The CA stays as it is."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run does; ``reasons`` say why, for logs and ``show``."""

    action: Action
    reissue_serving: bool
    drop_from_bundle: frozenset[str]
    reasons: tuple[str, ...]

    @property
    def changes_store(self) -> bool:
        """Whether the store must be written."""
        return (
            self.action in (Action.CREATE, Action.STAGE, Action.PROMOTE)
            or self.reissue_serving
            or bool(self.drop_from_bundle)
        )


def _serving_problems(
    serving: credential.Credential | None, signer: credential.Credential, policy: Policy, now: datetime.datetime
) -> list[str]:
    if serving is None:
        return ["no serving certificate"]
    problems: list[str] = []
    certificate = serving.certificate
    if not credential.signed_by(certificate, signer.certificate):
        problems.append("the serving certificate is not signed by the current CA")
    fraction = credential.remaining_fraction(certificate, now)
    if fraction < policy.renew_fraction:
        problems.append(f"the serving certificate has {fraction:.1%} of its validity left")
    if set(serving.dns_names()) != set(policy.identity.dns_names):
        problems.append(
            f"serving DNS names {sorted(serving.dns_names())} differ from {sorted(policy.identity.dns_names)}"
        )
    wanted_ips = {credential.normalise_ip(ip) for ip in policy.identity.ip_addresses}
    if set(serving.ip_addresses()) != wanted_ips:
        problems.append(f"serving IP addresses {sorted(serving.ip_addresses())} differ from {sorted(wanted_ips)}")
    if serving.key_algorithm() != policy.algorithm:
        problems.append(f"serving key algorithm {serving.key_algorithm()!r} differs from {policy.algorithm!r}")
    return problems


def _ca_action(
    state: State, policy: Policy, now: datetime.datetime, *, next_ca_published: bool, force_ca: bool
) -> tuple[Action, str | None]:
    assert state.ca is not None
    if state.next_ca is not None:
        if next_ca_published:
            return Action.PROMOTE, "the next CA is in every caBundle: promoting it"
        return Action.PUBLISH, "the next CA is not yet in every caBundle"
    fraction = credential.remaining_fraction(state.ca.certificate, now)
    if force_ca:
        return Action.STAGE, "CA rotation forced"
    if fraction < policy.renew_fraction:
        return Action.STAGE, f"the CA has {fraction:.1%} of its validity left"
    return Action.KEEP, None


def _bundle_drops(state: State, now: datetime.datetime, *, serving_settled: bool) -> tuple[set[str], list[str]]:
    assert state.ca is not None
    keep = {state.ca.fingerprint} | ({state.next_ca.fingerprint} if state.next_ca else set())
    drop: set[str] = set()
    reasons: list[str] = []
    for certificate in state.bundle:
        digest = credential.fingerprint(certificate)
        if digest in keep:
            continue
        if now >= certificate.not_valid_after_utc:
            drop.add(digest)
            reasons.append(f"dropping expired CA {digest[:16]} from the caBundle")
        elif serving_settled:
            drop.add(digest)
            reasons.append(f"dropping retired CA {digest[:16]} from the caBundle")
    return drop, reasons


def plan(
    state: State,
    policy: Policy,
    now: datetime.datetime,
    *,
    next_ca_published: bool,
    force_ca: bool = False,
    force_serving: bool = False,
) -> Plan:
    """Decide one rotation run (pure).

    ``next_ca_published`` tells whether every injection target already
    trusts the staged next CA (true when there are no targets).
    """
    if state.ca is None or now >= state.ca.not_after:
        missing = "no CA" if state.ca is None else "the CA has expired"
        return Plan(Action.CREATE, True, frozenset(), (missing,))
    action, why = _ca_action(state, policy, now, next_ca_published=next_ca_published, force_ca=force_ca)
    reasons = [why] if why else []
    if action is Action.PROMOTE:
        reissue = True
    else:
        signer = state.ca
        problems = _serving_problems(state.serving, signer, policy, now)
        if force_serving:
            problems.append("serving renewal forced")
        reissue = bool(problems)
        reasons.extend(problems)
    settled = state.serving is not None and not reissue and now >= state.serving.not_before + policy.overlap
    drop, drop_reasons = _bundle_drops(state, now, serving_settled=settled)
    return Plan(action, reissue, frozenset(drop), tuple(reasons + drop_reasons))
