"""Certificates: a self-signed CA, serving certificates, rotation and caBundle injection.

Modules, one concept each: ``credential`` (a parsed certificate and key),
``issuer`` (minting), ``ca_bundle`` (the trusted set), ``rotation_plan``
(pure decisions), ``store`` (files or a Secret), ``injection`` (caBundle into
webhook configurations and friends), ``renewal`` (carrying out a run),
``reloading_context`` (servers reloading renewed files), ``report`` (what
``show`` prints) and ``settings`` (the CLI's settings).
"""

from certs import (
    ca_bundle,
    credential,
    errors,
    injection,
    issuer,
    reloading_context,
    renewal,
    report,
    rotation_plan,
    settings,
    store,
)
from certs.credential import Credential
from certs.errors import CertsError
from certs.reloading_context import ReloadingContext

__all__ = [
    "CertsError",
    "Credential",
    "ReloadingContext",
    "ca_bundle",
    "credential",
    "errors",
    "injection",
    "issuer",
    "reloading_context",
    "renewal",
    "report",
    "rotation_plan",
    "settings",
    "store",
]
