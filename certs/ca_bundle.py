"""The caBundle: the concatenated PEM CA certificates that clients trust.

During a CA rotation the bundle holds both the old and the new CA, so that
a client trusts the server whichever of the two signed the certificate it
presents.  This module composes and inspects bundles; deciding which CAs
belong in it is ``rotation_plan``'s job.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import credential

__all__ = ["compose", "contains", "fingerprints", "parse"]


def parse(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a bundle, in order; raise ``InvalidMaterial`` when it does not parse."""
    return credential.load_certificates("caBundle", pem)


def compose(certificates: Iterable[x509.Certificate]) -> bytes:
    """Concatenate PEM certificates in the given order, dropping duplicates."""
    seen: set[str] = set()
    out: list[bytes] = []
    for certificate in certificates:
        digest = credential.fingerprint(certificate)
        if digest not in seen:
            seen.add(digest)
            out.append(certificate.public_bytes(serialization.Encoding.PEM))
    return b"".join(out)


def fingerprints(pem: bytes) -> set[str]:
    """The SHA-256 fingerprints of a bundle's certificates."""
    return {credential.fingerprint(c) for c in parse(pem)}


def contains(pem: bytes, certificate: x509.Certificate) -> bool:
    """Whether the bundle ``pem`` holds ``certificate``."""
    return credential.fingerprint(certificate) in fingerprints(pem)
