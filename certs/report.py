"""What ``fma-certs show`` prints: a pydantic description of a store's contents.

Pure; no I/O.
"""

from __future__ import annotations

import datetime

import pydantic
from cryptography import x509

from certs import credential, rotation_plan

__all__ = ["CertificateReport", "StoreReport", "describe", "describe_state"]


class CertificateReport(pydantic.BaseModel):
    """One certificate."""

    model_config = pydantic.ConfigDict(extra="forbid")

    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    remaining_fraction: float
    fingerprint_sha256: str
    dns_names: list[str] = pydantic.Field(default_factory=list)
    ip_addresses: list[str] = pydantic.Field(default_factory=list)


class StoreReport(pydantic.BaseModel):
    """The certificates a store holds."""

    model_config = pydantic.ConfigDict(extra="forbid")

    store: str
    ca: CertificateReport | None
    next_ca: CertificateReport | None
    serving: CertificateReport | None
    ca_bundle: list[CertificateReport]


def describe(certificate: x509.Certificate, now: datetime.datetime) -> CertificateReport:
    """Describe one certificate."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = list(san.get_values_for_type(x509.DNSName))
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    return CertificateReport(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        remaining_fraction=round(credential.remaining_fraction(certificate, now), 4),
        fingerprint_sha256=credential.fingerprint(certificate),
        dns_names=dns,
        ip_addresses=ips,
    )


def describe_state(where: str, state: rotation_plan.State, now: datetime.datetime) -> StoreReport:
    """Describe everything in a store."""

    def one(item: credential.Credential | None) -> CertificateReport | None:
        return None if item is None else describe(item.certificate, now)

    return StoreReport(
        store=where,
        ca=one(state.ca),
        next_ca=one(state.next_ca),
        serving=one(state.serving),
        ca_bundle=[describe(c, now) for c in state.bundle],
    )
