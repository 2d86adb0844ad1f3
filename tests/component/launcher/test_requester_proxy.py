"""``/v1/proxy/config`` and the TCP proxy of the requester agent, over real sockets (docs/protocol.md, "Requester SPI").

The agent is the real ``fma-requester`` process; the backend is a TCP echo
server on loopback.  The semantics are upstream's: 404 before configuration,
400 for bad targets, 200 once the proxy listens, the same target again is
200, a different one 409, other methods 405.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.component

_ENTRY = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
PATH = "/v1/proxy/config"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1; yields its port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def requester(agent_factory: Callable[..., Any]) -> Iterator[tuple[httpx.Client, int]]:
    """A running requester agent: its SPI client and its proxy port."""
    probes, spi, proxy = processes.free_port(), processes.free_port(), processes.free_port()
    argv = [sys.executable, "-c", _ENTRY, "--host", "127.0.0.1", "--probes-port", str(probes), "--spi-port", str(spi)]
    agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": "GPU-1", "FMA_REQUESTER_PROXY_PORT": str(proxy)}, name="req")
    with httpx.Client(base_url=f"http://127.0.0.1:{spi}", timeout=10) as client:
        waiting.wait_for(
            lambda: client.get("/v1/dual-pods/accelerators").status_code == 200,
            timeout=20,
            what="the requester agent to answer",
            ignore=(httpx.TransportError,),
        )
        yield client, proxy


def _round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def test_lifecycle_of_the_proxy_config(requester: tuple[httpx.Client, int], echo_port: int) -> None:
    spi, proxy_port = requester
    before = spi.get(PATH)
    assert (before.status_code, before.text) == (404, "proxy not configured\n")
    with pytest.raises(OSError):  # noqa: PT011 - refused: nothing listens before configuration
        socket.create_connection(("127.0.0.1", proxy_port), timeout=2).close()

    target = {"address": "127.0.0.1", "port": echo_port}
    put = spi.put(PATH, json=target)
    assert put.status_code == 200, put.text
    assert put.text == f"configured proxy to: 127.0.0.1:{echo_port}\n"
    # The 200 means the proxy listens: a connection right away reaches the backend.
    payload = b"hello proxy\n" * 10000
    assert _round_trip(proxy_port, payload) == payload

    got = spi.get(PATH)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.json() == target

    again = spi.put(PATH, json=target)
    assert again.status_code == 200, "the same target again is accepted (a retry after a lost answer)"
    other = spi.put(PATH, json={"address": "10.0.0.1", "port": echo_port})
    assert (other.status_code, other.text) == (409, "proxy already configured\n")
    assert spi.get(PATH).json() == target


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{invalid json}", "failed to parse JSON", id="invalid-json"),
        pytest.param(b'{"address": "127.0.0.1", "port": NaN}', "failed to parse JSON", id="not-strict-json"),
        pytest.param(b'["127.0.0.1", 80]', "must be a JSON object", id="not-an-object"),
        pytest.param(b'{"address": "", "port": 8080}', "address is required", id="empty-address"),
        pytest.param(b'{"port": 8080}', "address is required", id="missing-address"),
        pytest.param(b'{"address": "127.0.0.1", "port": 0}', "invalid port 0", id="port-zero"),
        pytest.param(b'{"address": "127.0.0.1", "port": 70000}', "invalid port 70000", id="port-too-large"),
        pytest.param(b'{"address": "127.0.0.1", "port": "80"}', "port must be an integer", id="port-string"),
        pytest.param(b'{"address": 7, "port": 80}', "address must be a string", id="address-number"),
    ],
)
def test_bad_targets_are_400_and_leave_it_unconfigured(
    requester: tuple[httpx.Client, int], body: bytes, message: str
) -> None:
    spi, _ = requester
    response = spi.put(PATH, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.text
    assert spi.get(PATH).status_code == 404


@pytest.mark.parametrize("method", ["DELETE", "POST", "PATCH"])
def test_other_methods_are_405(requester: tuple[httpx.Client, int], method: str) -> None:
    spi, _ = requester
    assert spi.request(method, PATH).status_code == 405


def test_a_proxy_port_in_use_is_500_for_every_put(agent_factory: Callable[..., Any], echo_port: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as blocker:
        taken = blocker.getsockname()[1]
        probes, spi_port = processes.free_port(), processes.free_port()
        argv = [sys.executable, "-c", _ENTRY, "--host", "127.0.0.1", "--probes-port", str(probes)]
        argv += ["--spi-port", str(spi_port)]
        agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": "GPU-1", "FMA_REQUESTER_PROXY_PORT": str(taken)})
        with httpx.Client(base_url=f"http://127.0.0.1:{spi_port}", timeout=10) as spi:
            waiting.wait_for(
                lambda: spi.get(PATH).status_code == 404,
                timeout=20,
                what="the requester agent to answer",
                ignore=(httpx.TransportError,),
            )
            for _attempt in range(2):
                response = spi.put(PATH, json={"address": "127.0.0.1", "port": echo_port})
                assert response.status_code == 500
                assert "proxy failed to start" in response.text
