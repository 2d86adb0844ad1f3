"""``/metrics``, ``/healthz`` and ``/readyz`` of the controllers process.

A plain threaded HTTP server: it must keep answering while the workers are
busy, and it needs nothing of an async framework.  ``/readyz`` is OK once
the caches have synced (a standby replica is ready too: it can take over).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client

__all__ = ["HealthServer"]


class HealthServer:
    """Serves metrics and health endpoints in a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: prometheus_client.CollectorRegistry,
        ready: Callable[[], bool],
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = prometheus_client.generate_latest(registry)
                    self._send(200, body, prometheus_client.CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok = outer._ready()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"caches not synced\n", "text/plain")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._ready = ready
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
