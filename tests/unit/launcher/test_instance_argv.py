"""The instance argv: a launcher bound to one address passes it on as ``--host``.

See docs/launcher.md, "How an instance is started: the preloaded parent".
"""

from __future__ import annotations

import pytest

from launcher import instance_argv


@pytest.mark.parametrize(
    ("options", "launcher_host", "expected"),
    [
        pytest.param(
            " --model m  --port 8005",
            "127.0.50.1",
            ["--model", "m", "--port", "8005", "--host", "127.0.50.1"],
            id="specific-ipv4",
        ),
        pytest.param("--port 8005", "::1", ["--port", "8005", "--host", "::1"], id="specific-ipv6"),
        pytest.param("--port 8005", "0.0.0.0", ["--port", "8005"], id="wildcard-ipv4"),
        pytest.param("--port 8005", "::", ["--port", "8005"], id="wildcard-ipv6"),
        pytest.param(
            "--host 10.0.0.9 --port 8005", "127.0.50.1", ["--host", "10.0.0.9", "--port", "8005"], id="caller-host-wins"
        ),
        pytest.param("--host=10.0.0.9", "127.0.50.1", ["--host=10.0.0.9"], id="caller-host-equals-form"),
        pytest.param(
            "--hostname x", "127.0.50.1", ["--hostname", "x", "--host", "127.0.50.1"], id="prefix-is-not-host"
        ),
        pytest.param("", "127.0.50.1", ["--host", "127.0.50.1"], id="empty-options"),
    ],
)
def test_build(options: str, launcher_host: str, expected: list[str]) -> None:
    assert instance_argv.build(options, launcher_host) == expected


@pytest.mark.parametrize(
    ("host", "specific"), [("0.0.0.0", False), ("::", False), ("", False), ("10.1.2.3", True), ("localhost", True)]
)
def test_is_specific(host: str, specific: bool) -> None:
    assert instance_argv.is_specific(host) is specific
