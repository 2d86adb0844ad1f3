"""The development cluster's PKI: one CA, the apiserver's serving certificate,
client certificates for each identity, and the service-account key pair.

Kept apart from the process management in ``control_plane`` because it is
pure computation plus file writes, and tests (for example the webhook test
that needs a TLS server trusted by the apiserver) reuse ``issue_certificate``.
The CA comes from the product's ``certs.issuer``; the leaf certificates here
also cover client certificates with organizations, which ``certs`` does not.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import issuer

__all__ = ["ClusterPKI", "KeyPair", "create_ca", "issue_certificate", "write_cluster_pki"]

_VALIDITY = datetime.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: pathlib.Path, stem: str) -> tuple[pathlib.Path, pathlib.Path]:
        """Write ``stem.crt`` and ``stem.key`` (mode 0600) and return their paths."""
        cert = directory / f"{stem}.crt"
        key = directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_ca(common_name: str, now: datetime.datetime) -> KeyPair:
    """Create a self-signed ECDSA P-256 CA valid from ``now`` (pure; the product's ``certs.issuer`` makes it)."""
    ca = issuer.create_ca(common_name, now, _VALIDITY * 10)
    return KeyPair(ca.cert_pem, ca.key_pem)


def issue_certificate(
    ca: KeyPair,
    common_name: str,
    now: datetime.datetime,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> KeyPair:
    """Issue an ECDSA P-256 leaf certificate signed by ``ca`` (pure)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"CA key must be ECDSA, got {type(ca_key).__name__!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclasses.dataclass(frozen=True)
class ClusterPKI:
    """Paths of every PKI file the control plane uses."""

    ca_cert: pathlib.Path
    ca_key: pathlib.Path
    apiserver_cert: pathlib.Path
    apiserver_key: pathlib.Path
    admin_cert: pathlib.Path
    admin_key: pathlib.Path
    controller_manager_cert: pathlib.Path
    controller_manager_key: pathlib.Path
    scheduler_cert: pathlib.Path
    scheduler_key: pathlib.Path
    service_account_key: pathlib.Path
    service_account_pub: pathlib.Path
    front_proxy_ca_cert: pathlib.Path
    front_proxy_client_cert: pathlib.Path
    front_proxy_client_key: pathlib.Path


def write_cluster_pki(directory: pathlib.Path, now: datetime.datetime, *, service_ip: str | None = None) -> ClusterPKI:
    """Generate the whole PKI into ``directory`` and return the file paths.

    ``service_ip`` is the ``kubernetes`` Service's ClusterIP, which Pods use
    as ``KUBERNETES_SERVICE_HOST``; the apiserver's certificate names it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca("fma-devcluster-ca", now)
    ca_cert, ca_key = ca.write(directory, "ca")
    apiserver = issue_certificate(
        ca,
        "kube-apiserver",
        now,
        dns_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ip_addresses=("127.0.0.1", *((service_ip,) if service_ip else ())),
        server=True,
    )
    api_cert, api_key = apiserver.write(directory, "apiserver")
    admin = issue_certificate(ca, "fma-admin", now, organizations=("system:masters",), client=True)
    admin_cert, admin_key = admin.write(directory, "admin")
    kcm = issue_certificate(ca, "system:kube-controller-manager", now, client=True)
    kcm_cert, kcm_key = kcm.write(directory, "controller-manager")
    sched = issue_certificate(ca, "system:kube-scheduler", now, client=True)
    sched_cert, sched_key = sched.write(directory, "scheduler")
    sa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key = directory / "sa.key"
    sa_key.touch(mode=0o600)
    sa_key.write_bytes(_key_pem(sa_private))
    sa_pub = directory / "sa.pub"
    sa_pub.write_bytes(
        sa_private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # The aggregation layer's own CA: without it the apiserver and every
    # component that delegates authentication log missing requestheader CAs.
    front_proxy_ca = create_ca("fma-devcluster-front-proxy-ca", now)
    fp_ca_cert, _ = front_proxy_ca.write(directory, "front-proxy-ca")
    front_proxy = issue_certificate(front_proxy_ca, "front-proxy-client", now, client=True)
    fp_cert, fp_key = front_proxy.write(directory, "front-proxy-client")
    return ClusterPKI(
        front_proxy_ca_cert=fp_ca_cert,
        front_proxy_client_cert=fp_cert,
        front_proxy_client_key=fp_key,
        ca_cert=ca_cert,
        ca_key=ca_key,
        apiserver_cert=api_cert,
        apiserver_key=api_key,
        admin_cert=admin_cert,
        admin_key=admin_key,
        controller_manager_cert=kcm_cert,
        controller_manager_key=kcm_key,
        scheduler_cert=sched_cert,
        scheduler_key=sched_key,
        service_account_key=sa_key,
        service_account_pub=sa_pub,
    )
