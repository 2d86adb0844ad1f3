"""A server-side TLS context that picks up renewed certificate files without a restart.

``ssl.SSLContext.load_cert_chain`` may be called again on a live context:
connections accepted afterwards present the new certificate, established
ones keep theirs.  ``ReloadingContext`` therefore owns one context for the
life of the server and a watcher thread that re-reads the certificate and
key files every ``interval`` seconds, comparing their *contents* (a mounted
Secret is swapped through a symlink, so modification times are not enough).

A new pair is first loaded into a throw-away context; only if the key
matches the certificate is it loaded into the live one.  A half-written
pair (certificate renewed, key not yet) is thus skipped and retried on the
next check, and the server keeps presenting the old, still valid pair.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import pathlib
import ssl
import threading
from collections.abc import Callable, Iterator

from cryptography import x509

from certs import errors

__all__ = ["ReloadingContext"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _pair_file(pair: tuple[bytes, bytes]) -> Iterator[str]:
    """The exact bytes that were read, as one in-memory file (key, then chain), so both loads see the same pair."""
    fd = os.memfd_create("fma-serving-pair", os.MFD_CLOEXEC)
    try:
        os.write(fd, pair[1] + b"\n" + pair[0])
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ReloadingContext:
    """Owns a server ``SSLContext`` and keeps it loaded with the current files."""

    def __init__(
        self,
        cert_file: pathlib.Path,
        key_file: pathlib.Path,
        *,
        on_reload: Callable[[datetime.datetime], None] | None = None,
    ) -> None:
        """Load the pair once; raise ``InvalidMaterial`` when it is unusable."""
        self.cert_file = cert_file
        self.key_file = key_file
        self.context = _new_context()
        self._on_reload = on_reload
        self._digest = b""
        self._not_after: datetime.datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reloads = 0
        if not self.check():
            raise errors.InvalidMaterial(str(cert_file), "the certificate and key could not be loaded")

    @property
    def not_after(self) -> datetime.datetime | None:
        """Expiry of the certificate being served."""
        return self._not_after

    def _read(self) -> tuple[bytes, bytes] | None:
        try:
            return self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError as exc:
            logger.warning("cannot read the serving certificate files", extra={"error": str(exc)})
            return None

    def check(self) -> bool:
        """Reload when the files changed; return whether the live context holds a usable pair."""
        with self._lock:
            pair = self._read()
            if pair is None:
                return bool(self._digest)
            digest = hashlib.sha256(pair[0] + b"\0" + pair[1]).digest()
            if digest == self._digest:
                return True
            try:
                with _pair_file(pair) as combined:
                    _new_context().load_cert_chain(combined)
                    self.context.load_cert_chain(combined)
                certificate = x509.load_pem_x509_certificate(pair[0])
            except (ssl.SSLError, OSError, ValueError) as exc:
                logger.warning("serving certificate not reloaded; keeping the current one", extra={"error": str(exc)})
                return bool(self._digest)
            first = not self._digest
            self._digest = digest
            self._not_after = certificate.not_valid_after_utc
            if not first:
                self.reloads += 1
            logger.info(
                "serving certificate loaded",
                extra={"cert_file": str(self.cert_file), "not_after": self._not_after.isoformat(), "reload": not first},
            )
            if self._on_reload is not None:
                self._on_reload(self._not_after)
            return True

    def start(self, interval: float) -> None:
        """Check the files every ``interval`` seconds in a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, args=(interval,), name="cert-reloader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # supervising loop: keep serving the old certificate
                logger.exception("certificate check failed")
