"""Creating keys, the self-signed CA and serving certificates.

The only module that mints certificates.  Everything about *when* to mint
lives in ``rotation_plan``; this module only knows *how*.  Certificates are
back-dated by ``CLOCK_SKEW`` so that a peer whose clock runs slightly behind
does not reject a certificate that was issued a moment ago.

No I/O; the functions are not pure only in that keys and serial numbers
are random.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import credential

__all__ = [
    "ALGORITHMS",
    "CLOCK_SKEW",
    "Algorithm",
    "ServingIdentity",
    "create_ca",
    "issue_serving",
    "new_private_key",
]

Algorithm = Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
"""Key algorithms; ``ecdsa-p256`` is the default everywhere (small keys, fast handshakes)."""

ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
"""Every accepted ``Algorithm`` value."""

CLOCK_SKEW = datetime.timedelta(minutes=5)
"""How far ``notBefore`` is set before the issue time."""


@dataclasses.dataclass(frozen=True)
class ServingIdentity:
    """Who a serving certificate is for: its common name and subject alternative names."""

    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.dns_names and not self.ip_addresses:
            raise ValueError("a serving certificate needs at least one DNS name or IP address")
        for ip in self.ip_addresses:
            credential.normalise_ip(ip)


def new_private_key(algorithm: Algorithm) -> credential.PrivateKey:
    """Generate a private key of ``algorithm``."""
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    size = int(algorithm.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _key_pem(key: credential.PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(
    common_name: str, now: datetime.datetime, validity: datetime.timedelta, algorithm: Algorithm = "ecdsa-p256"
) -> credential.Credential:
    """A self-signed CA certificate (path length 0) valid for ``validity`` from ``now``."""
    key = new_private_key(algorithm)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return credential.Credential(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_serving(
    ca: credential.Credential,
    identity: ServingIdentity,
    now: datetime.datetime,
    validity: datetime.timedelta,
    algorithm: Algorithm = "ecdsa-p256",
) -> credential.Credential:
    """A TLS server certificate for ``identity`` signed by ``ca``; never valid beyond the CA."""
    key = new_private_key(algorithm)
    not_after = min(now + validity, ca.not_after)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in identity.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in identity.ip_addresses]
    ca_public = ca.certificate.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(identity.common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)  # type: ignore[arg-type]  # CA keys are EC or RSA
        .sign(ca.private_key, hashes.SHA256())
    )
    return credential.Credential(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))
