"""``fma-certs`` as a process: the files it writes serve TLS that its caBundle verifies, across a CA rotation."""

from __future__ import annotations

import json
import pathlib
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from certs import reloading_context, store

pytestmark = pytest.mark.component

SANS = ["--ip", "127.0.0.1", "--dns-name", "fma-webhook.fma.svc"]


def _certs(*argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "certs", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _handshake(port: int, cafile: pathlib.Path, hostname: str) -> None:
    client = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname=hostname),
    ):
        pass


def test_files_serve_tls_across_a_rotation(tmp_path: pathlib.Path) -> None:
    where = ["--dir", str(tmp_path)]
    assert _certs("init", *where, *SANS)["action"] == "create"
    context = reloading_context.ReloadingContext(tmp_path / store.TLS_CERT, tmp_path / store.TLS_KEY)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for hostname in ("127.0.0.1", "fma-webhook.fma.svc"):
            _handshake(port, tmp_path / store.BUNDLE, hostname)
        assert _certs("rotate", *where, *SANS, "--force-ca")["action"] == "stage"
        _handshake(port, tmp_path / store.BUNDLE, "127.0.0.1")  # old serving cert, bundle trusts old and new
        assert _certs("rotate", *where, *SANS)["action"] == "promote"
        assert context.check()
        assert context.reloads == 1
        _handshake(port, tmp_path / store.BUNDLE, "127.0.0.1")  # new serving cert, same bundle
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, tmp_path / store.CA_CERT, "other.example")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
