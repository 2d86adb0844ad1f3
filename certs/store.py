"""Where certificates live: a directory of PEM files, or a Kubernetes Secret.

Both stores hold the same items under the same names (``ITEMS``), so a
Secret mounted as a volume looks exactly like a file store to the server
that reads it.  A store only reads and writes bytes; parsing is done by
``renewal``.

* ``FileStore`` writes each changed file atomically (a temporary file, then
  ``rename``), private keys with mode 0600, and deletes removed items.
* ``SecretStore`` keeps everything in one Opaque Secret and writes with the
  resourceVersion it read, so two concurrent rotations cannot both win
  (``errors.ConcurrentUpdate``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any, Protocol

from certs import errors
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources

__all__ = [
    "BUNDLE",
    "CA_CERT",
    "CA_KEY",
    "ITEMS",
    "NEXT_CA_CERT",
    "NEXT_CA_KEY",
    "PRIVATE_ITEMS",
    "TLS_CERT",
    "TLS_KEY",
    "FileStore",
    "SecretStore",
    "Snapshot",
    "Store",
]

CA_CERT = "ca.crt"
"""The current CA certificate."""
CA_KEY = "ca.key"
"""The current CA private key."""
NEXT_CA_CERT = "next-ca.crt"
"""A staged CA certificate, present only during a CA rotation."""
NEXT_CA_KEY = "next-ca.key"
"""The staged CA's private key."""
BUNDLE = "ca-bundle.crt"
"""Every CA clients should trust now (current, staged and retiring)."""
TLS_CERT = "tls.crt"
"""The serving certificate."""
TLS_KEY = "tls.key"
"""The serving certificate's private key."""

ITEMS: tuple[str, ...] = (CA_CERT, CA_KEY, NEXT_CA_CERT, NEXT_CA_KEY, BUNDLE, TLS_CERT, TLS_KEY)
"""Every item a store may hold."""
PRIVATE_ITEMS = frozenset({CA_KEY, NEXT_CA_KEY, TLS_KEY})
"""Items that are private keys (mode 0600 in a file store)."""

_MANAGED_BY = {"app.kubernetes.io/managed-by": "fma-certs"}

Snapshot = dict[str, bytes]
"""Item name → content, for the items that exist."""


class Store(Protocol):
    """Read and write the certificate items."""

    def describe(self) -> str:
        """Where the store is, for messages."""
        ...

    def load(self) -> Snapshot:
        """Every item present now."""
        ...

    def save(self, changes: Mapping[str, bytes | None]) -> None:
        """Write the given items (``None`` deletes one); other items are left alone."""
        ...


class FileStore:
    """A directory of PEM files."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        """The directory."""
        return str(self.directory)

    def load(self) -> Snapshot:
        """Read every item file that exists."""
        snapshot: Snapshot = {}
        for item in ITEMS:
            try:
                snapshot[item] = (self.directory / item).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise errors.StorageError(f"cannot read {str(self.directory / item)!r}: {exc}") from exc
        return snapshot

    def save(self, changes: Mapping[str, bytes | None]) -> None:
        """Write changed items atomically, in the order given."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for item, content in changes.items():
                _check_item(item)
                path = self.directory / item
                if content is None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                _write_atomically(path, content, 0o600 if item in PRIVATE_ITEMS else 0o644)
        except OSError as exc:
            raise errors.StorageError(f"cannot write to {str(self.directory)!r}: {exc}") from exc


def _check_item(item: str) -> None:
    if item not in ITEMS:
        raise ValueError(f"unknown store item {item!r}")


def _write_atomically(path: pathlib.Path, content: bytes, mode: int) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class SecretStore:
    """One Opaque Secret whose data keys are the item names."""

    def __init__(self, api: kube_client.Client, namespace: str, name: str) -> None:
        self._api = api
        self.namespace = namespace
        self.name = name
        self._resource_version: str | None = None
        self._loaded = False

    def describe(self) -> str:
        """``secret/<namespace>/<name>``."""
        return f"secret/{self.namespace}/{self.name}"

    def load(self) -> Snapshot:
        """Read the Secret (an absent Secret is an empty store) and remember its resourceVersion."""
        try:
            secret = self._api.get_or_none(resources.SECRETS, self.name, self.namespace)
        except kube_errors.KubeError as exc:
            raise errors.StorageError(f"cannot read {self.describe()}: {exc}") from exc
        self._loaded = True
        if secret is None:
            self._resource_version = None
            return {}
        self._resource_version = str(secret["metadata"]["resourceVersion"])
        snapshot: Snapshot = {}
        for item, encoded in (secret.get("data") or {}).items():
            if item in ITEMS:
                try:
                    snapshot[item] = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise errors.StorageError(f"{self.describe()} item {item!r} is not base64: {exc}") from exc
        return snapshot

    def save(self, changes: Mapping[str, bytes | None]) -> None:
        """Apply ``changes`` to the Secret read last; ``ConcurrentUpdate`` if it changed since."""
        for item in changes:
            _check_item(item)
        try:
            current = self._api.get_or_none(resources.SECRETS, self.name, self.namespace)
            if current is None:
                if self._resource_version is not None:
                    raise errors.ConcurrentUpdate(f"{self.describe()} was deleted since it was read")
                data = {k: _b64(v) for k, v in changes.items() if v is not None}
                created = self._api.create(resources.SECRETS, self._body(data, None), self.namespace)
            else:
                version = str(current["metadata"]["resourceVersion"])
                if self._loaded and version != self._resource_version:
                    raise errors.ConcurrentUpdate(f"{self.describe()} changed (or was created) since it was read")
                data = dict(current.get("data") or {})
                for item, content in changes.items():
                    if content is None:
                        data.pop(item, None)
                    else:
                        data[item] = _b64(content)
                body = dict(current)
                body["data"] = data
                created = self._api.replace(resources.SECRETS, body)
        except kube_errors.Conflict as exc:
            raise errors.ConcurrentUpdate(f"{self.describe()} changed concurrently: {exc}") from exc
        except kube_errors.KubeError as exc:
            raise errors.StorageError(f"cannot write {self.describe()}: {exc}") from exc
        self._resource_version = str(created["metadata"]["resourceVersion"])

    def _body(self, data: dict[str, str], version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "labels": dict(_MANAGED_BY)}
        if version is not None:
            metadata["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "data": data}


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")
