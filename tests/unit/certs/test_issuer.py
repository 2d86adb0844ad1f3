"""Minting: the CA and serving certificates have the extensions clients require."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs import credential, errors, issuer


def test_ca_is_a_self_signed_p256_ca(now) -> None:
    ca = issuer.create_ca("fma-ca", now, datetime.timedelta(days=10))
    certificate = ca.certificate
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert credential.signed_by(certificate, certificate)
    assert ca.not_before == now - issuer.CLOCK_SKEW
    assert ca.not_after == now + datetime.timedelta(days=10)


def test_serving_certificate_has_sans_eku_and_the_ca_as_issuer(now) -> None:
    ca = issuer.create_ca("fma-ca", now, datetime.timedelta(days=10))
    identity = issuer.ServingIdentity("web", ("web.fma.svc", "web.fma.svc.cluster.local"), ("127.0.0.1", "::1"))
    serving = issuer.issue_serving(ca, identity, now, datetime.timedelta(days=2))
    certificate = serving.certificate
    assert serving.dns_names() == ("web.fma.svc", "web.fma.svc.cluster.local")
    assert serving.ip_addresses() == ("127.0.0.1", "::1")
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert credential.signed_by(certificate, ca.certificate)
    assert not credential.signed_by(ca.certificate, certificate)
    assert serving.key_algorithm() == "ecdsa-p256"


def test_serving_certificate_never_outlives_its_ca(now) -> None:
    ca = issuer.create_ca("fma-ca", now, datetime.timedelta(days=1))
    serving = issuer.issue_serving(ca, issuer.ServingIdentity("w", ("w",)), now, datetime.timedelta(days=30))
    assert serving.not_after == ca.not_after


def test_rsa_is_available(now) -> None:
    ca = issuer.create_ca("fma-ca", now, datetime.timedelta(days=1), "rsa-2048")
    serving = issuer.issue_serving(
        ca, issuer.ServingIdentity("w", ("w",)), now, datetime.timedelta(hours=1), "rsa-2048"
    )
    assert isinstance(serving.certificate.public_key(), rsa.RSAPublicKey)
    assert serving.key_algorithm() == "rsa-2048"
    assert credential.signed_by(serving.certificate, ca.certificate)


def test_identity_needs_a_san_and_valid_ips() -> None:
    with pytest.raises(ValueError, match="at least one"):
        issuer.ServingIdentity("w")
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        issuer.ServingIdentity("w", ip_addresses=("localhost",))


def test_credential_parse_checks_the_pair(now) -> None:
    ca = issuer.create_ca("a", now, datetime.timedelta(days=1))
    other = issuer.create_ca("b", now, datetime.timedelta(days=1))
    assert credential.Credential.parse("ca", ca.cert_pem, ca.key_pem).fingerprint == ca.fingerprint
    with pytest.raises(errors.InvalidMaterial, match="does not match"):
        credential.Credential.parse("ca", ca.cert_pem, other.key_pem)
    with pytest.raises(errors.InvalidMaterial, match="not PEM"):
        credential.Credential.parse("ca", b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", ca.key_pem)
    with pytest.raises(errors.InvalidMaterial, match="private key does not parse"):
        credential.Credential.parse("ca", ca.cert_pem, b"nope")


def test_remaining_fraction(now) -> None:
    ca = issuer.create_ca("a", now + issuer.CLOCK_SKEW, datetime.timedelta(days=10) - issuer.CLOCK_SKEW)
    certificate = ca.certificate
    assert credential.remaining_fraction(certificate, now) == 1.0
    assert credential.remaining_fraction(certificate, now + datetime.timedelta(days=5)) == pytest.approx(0.5)
    assert credential.remaining_fraction(certificate, now + datetime.timedelta(days=11)) == 0.0
