"""A certificate with its private key, and what rotation needs to know about it.

Certificates travel as PEM bytes (that is how they are stored in files and
Secrets); this module parses them once and answers the questions the
rotation plan asks: validity window, remaining fraction, SANs, issuer.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs import errors

__all__ = [
    "Credential",
    "PrivateKey",
    "fingerprint",
    "load_certificates",
    "normalise_ip",
    "remaining_fraction",
    "signed_by",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The key types this package creates and accepts."""


def fingerprint(certificate: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the DER encoding (pure)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def load_certificates(name: str, pem: bytes) -> list[x509.Certificate]:
    """Parse every certificate in ``pem``; raise ``InvalidMaterial`` naming ``name`` when it does not parse."""
    if not pem.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise errors.InvalidMaterial(name, f"not PEM certificates: {exc}") from exc


def remaining_fraction(certificate: x509.Certificate, now: datetime.datetime) -> float:
    """The share of the validity window still ahead at ``now``: 1 at issue, 0 at (and after) expiry."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    total = (end - start).total_seconds()
    if total <= 0:
        return 0.0
    return max(0.0, min(1.0, (end - now).total_seconds() / total))


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``certificate`` (and the issuer names match)."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Credential:
    """A PEM certificate and its PEM private key, checked to belong together."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def parse(cls, name: str, cert_pem: bytes, key_pem: bytes) -> Credential:
        """Check that both parse and that the key matches the certificate; raise ``InvalidMaterial``."""
        credential = cls(cert_pem, key_pem)
        certificate = credential.certificate_of(name)
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise errors.InvalidMaterial(name, f"the private key does not parse: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise errors.InvalidMaterial(name, f"unsupported key type {type(key).__name__!r}")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise errors.InvalidMaterial(name, "the private key does not match the certificate")
        return credential

    def certificate_of(self, name: str) -> x509.Certificate:
        """The parsed (first) certificate; raise ``InvalidMaterial`` naming ``name``."""
        certificates = load_certificates(name, self.cert_pem)
        if not certificates:
            raise errors.InvalidMaterial(name, "no certificate found")
        return certificates[0]

    @functools.cached_property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate (the first one in ``cert_pem``)."""
        return self.certificate_of("certificate")

    @functools.cached_property
    def private_key(self) -> PrivateKey:
        """The parsed private key."""
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise errors.InvalidMaterial("private key", f"unsupported key type {type(key).__name__!r}")
        return key

    @property
    def not_before(self) -> datetime.datetime:
        """Start of validity (UTC)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime.datetime:
        """End of validity (UTC)."""
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the certificate."""
        return fingerprint(self.certificate)

    def dns_names(self) -> tuple[str, ...]:
        """The DNS subject alternative names, in certificate order."""
        return tuple(self._san().get_values_for_type(x509.DNSName))

    def ip_addresses(self) -> tuple[str, ...]:
        """The IP subject alternative names, as strings, in certificate order."""
        return tuple(str(ip) for ip in self._san().get_values_for_type(x509.IPAddress))

    def key_algorithm(self) -> str:
        """``ecdsa-p256``, ``ecdsa-p384``, ``rsa-2048`` … as the policy spells it."""
        key = self.certificate.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, key.curve.name)
        if isinstance(key, rsa.RSAPublicKey):
            return f"rsa-{key.key_size}"
        return type(key).__name__

    def _san(self) -> x509.SubjectAlternativeName:
        try:
            return self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return x509.SubjectAlternativeName([])


def normalise_ip(value: str) -> str:
    """The canonical text of an IP address; raise ``ValueError`` for anything else."""
    return str(ipaddress.ip_address(value))
