"""``Client.watch`` over a real HTTP server on loopback: whole events are yielded, a cut one is a broken watch."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client

from kube import client, errors, resources

WHOLE = json.dumps({"type": "ADDED", "object": {"metadata": {"name": "n1", "resourceVersion": "5"}}}).encode()
CUT = '{"type": "MODIFIED", "object": {"metadata": {"name": "n\u00e9'.encode()[:-1]  # ends inside "é"


class _Stream(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def serve() -> Iterator[type[_Stream]]:
    handler = type("Handler", (_Stream,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.address = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _client(address: str) -> client.Client:
    configuration = k8s_client.Configuration()
    configuration.host = address
    return client.Client(k8s_client.ApiClient(configuration))


def test_whole_events_are_yielded_and_the_stream_ends(serve: type[_Stream]) -> None:
    serve.body = WHOLE + b"\n" + WHOLE.replace(b"ADDED", b"DELETED") + b"\n"
    api = _client(serve.address)  # type: ignore[attr-defined]
    try:
        events = list(api.watch(resources.NODES, timeout_seconds=5))
    finally:
        api.close()
    assert [kind for kind, _ in events] == ["ADDED", "DELETED"]
    assert events[0][1]["metadata"]["name"] == "n1"


def test_a_stream_cut_inside_an_event_is_a_broken_watch_not_a_decode_error(serve: type[_Stream]) -> None:
    serve.body = WHOLE + b"\n" + CUT
    api = _client(serve.address)  # type: ignore[attr-defined]
    try:
        stream = api.watch(resources.NODES, timeout_seconds=5)
        assert next(stream)[0] == "ADDED"
        with pytest.raises(errors.TransportError, match="ended inside an event"):
            next(stream)
    finally:
        api.close()


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(b'{"type": "ADDED", "object": {"metadata": {"name": "n\xc3"}}}', id="invalid-utf8"),
        pytest.param(b'{"type": "ADDED", "object": {"metad', id="truncated-json-line"),
        pytest.param(b'["ADDED"]', id="not-an-object"),
    ],
)
def test_an_undecodable_event_line_is_a_broken_watch(serve: type[_Stream], damaged: bytes) -> None:
    """A whole line that is not a JSON object (seen once under load: invalid UTF-8 at byte 4095) breaks the
    watch as a TransportError, which the caches answer by watching again, not as a decoding exception."""
    serve.body = WHOLE + b"\n" + damaged + b"\n" + WHOLE + b"\n"
    api = _client(serve.address)  # type: ignore[attr-defined]
    try:
        stream = api.watch(resources.NODES, timeout_seconds=5)
        assert next(stream)[0] == "ADDED"
        with pytest.raises(errors.TransportError, match="watch of nodes sent a"):
            next(stream)
    finally:
        api.close()
