"""Which Pod this process runs in: its namespace and name, found without the downward API if need be.

Our own launcher template gives the launcher ``POD_NAME`` and ``NAMESPACE``
(downward API).  A LauncherConfig written for upstream's controller does not:
upstream sets them only on its notifier sidecar.  The publisher must still
find its own Pod, or a crashed instance goes unnoticed (docs/protocol.md,
"Launcher Pod annotations").  So each half of the identity comes from the
first of these sources that gives a usable value:

- namespace: ``NAMESPACE``; the ``kubernetes.io.namespace`` claim of the
  service-account token; the ``namespace`` file next to the token (every
  service-account volume has one);
- name: ``POD_NAME``; the ``kubernetes.io.pod.name`` claim of the token (a
  projected token is bound to its Pod, and its claims say which); the Pod's
  hostname (``HOSTNAME``, else the system's host name), which the kubelet sets
  to the Pod name unless the Pod sets ``spec.hostname`` or the name is longer
  than 63 characters.

The token is only read, never verified: the apiserver verifies it on every
call, and a wrong identity shows up as a failed patch in the publisher's log.

``resolve`` is pure; ``discover`` reads the two files and the host name.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import pathlib
import socket
from typing import Any

from launcher import settings as settings_mod

__all__ = ["PodIdentity", "discover", "resolve", "token_claims"]

logger = logging.getLogger(__name__)

_MAX_NAME = 253


@dataclasses.dataclass(frozen=True)
class PodIdentity:
    """A Pod's namespace and name, and where each came from (for the log)."""

    namespace: str
    name: str
    namespace_source: str
    name_source: str


def token_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT, unverified; ``{}`` when ``token`` is not one (pure)."""
    if not token:
        return {}
    parts = token.strip().split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= _MAX_NAME else None


def resolve(
    *,
    pod_name: str | None,
    namespace: str | None,
    token: str | None,
    namespace_file: str | None,
    hostname: str | None,
) -> PodIdentity | None:
    """The identity from the first usable source of each half, or None when a half has none (pure)."""
    raw_kube = token_claims(token).get("kubernetes.io")
    kube: dict[str, Any] = raw_kube if isinstance(raw_kube, dict) else {}
    raw_pod = kube.get("pod")
    pod: dict[str, Any] = raw_pod if isinstance(raw_pod, dict) else {}
    namespaces = [("NAMESPACE", namespace), ("token", kube.get("namespace")), ("namespace file", namespace_file)]
    names = [("POD_NAME", pod_name), ("token", pod.get("name")), ("hostname", hostname)]
    found_namespace = next(((source, v) for source, raw in namespaces if (v := _text(raw))), None)
    found_name = next(((source, v) for source, raw in names if (v := _text(raw))), None)
    if found_namespace is None or found_name is None:
        return None
    return PodIdentity(
        namespace=found_namespace[1],
        name=found_name[1],
        namespace_source=found_namespace[0],
        name_source=found_name[0],
    )


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeError):
        return None


def discover(settings: settings_mod.LauncherSettings) -> PodIdentity | None:
    """This process's Pod, from the environment, the service-account files and the host name (reads files)."""
    directory = settings.service_account_dir
    identity = resolve(
        pod_name=settings.pod_name,
        namespace=settings.namespace,
        token=_read(directory / "token"),
        namespace_file=_read(directory / "namespace"),
        hostname=settings.hostname or socket.gethostname(),
    )
    if identity is not None:
        logger.info(
            "found this Pod's identity",
            extra={
                "pod": f"{identity.namespace}/{identity.name}",
                "namespace_source": identity.namespace_source,
                "name_source": identity.name_source,
            },
        )
    return identity
