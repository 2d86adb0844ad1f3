"""Settings of ``fma-certs``: where certificates are stored, what they cover and when they rotate.

Built once in ``main()`` from flags (which win) and ``FMA_CERTS_*``
environment variables; nothing here runs at import time.
"""

from __future__ import annotations

import datetime
import pathlib

import pydantic
import pydantic_settings

from certs import credential, injection, issuer, rotation_plan

__all__ = ["Settings"]


class Settings(pydantic_settings.BaseSettings):
    """One run of ``fma-certs``."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="FMA_CERTS_", extra="forbid")

    dir: pathlib.Path | None = None
    """A directory store; exclusive with ``secret``."""
    secret: str | None = None
    """A Secret store, ``<namespace>/<name>``."""
    kubeconfig: str | None = None
    """Credentials for the Secret store and injection (default: $KUBECONFIG, ~/.kube/config or in-cluster)."""
    dns_names: list[str] = pydantic.Field(default_factory=list)
    ip_addresses: list[str] = pydantic.Field(default_factory=list)
    common_name: str = "fma-webhook"
    ca_common_name: str = "fma-ca"
    ca_days: float = pydantic.Field(default=3650.0, gt=0)
    serving_days: float = pydantic.Field(default=90.0, gt=0)
    renew_fraction: float = pydantic.Field(default=1 / 3, gt=0, lt=1)
    overlap_hours: float = pydantic.Field(default=24.0, ge=0)
    algorithm: issuer.Algorithm = "ecdsa-p256"
    inject: list[str] = pydantic.Field(default_factory=list)
    """Injection targets, ``kind/name`` (a bare name is a MutatingWebhookConfiguration)."""

    @pydantic.field_validator("ip_addresses")
    @classmethod
    def _ips(cls, value: list[str]) -> list[str]:
        return [credential.normalise_ip(ip) for ip in value]

    @pydantic.field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
            raise ValueError(f"expected <namespace>/<name>, got {value!r}")
        return value

    @pydantic.field_validator("inject")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for text in value:
            injection.Target.parse(text)
        return value

    @pydantic.model_validator(mode="after")
    def _one_store(self) -> Settings:
        if (self.dir is None) == (self.secret is None):
            raise ValueError("exactly one of dir and secret must be given")
        return self

    def targets(self) -> list[injection.Target]:
        """The parsed injection targets."""
        return [injection.Target.parse(text) for text in self.inject]

    def policy(self) -> rotation_plan.Policy:
        """The rotation policy; raises ``ValueError`` without any SAN."""
        return rotation_plan.Policy(
            identity=issuer.ServingIdentity(self.common_name, tuple(self.dns_names), tuple(self.ip_addresses)),
            ca_common_name=self.ca_common_name,
            ca_validity=datetime.timedelta(days=self.ca_days),
            serving_validity=datetime.timedelta(days=self.serving_days),
            renew_fraction=self.renew_fraction,
            overlap=datetime.timedelta(hours=self.overlap_hours),
            algorithm=self.algorithm,
        )
