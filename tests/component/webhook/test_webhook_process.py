"""``fma-webhook`` as a process: serves TLS from the settings, logs JSON, stops cleanly on SIGTERM."""

from __future__ import annotations

import datetime
import json
import signal
import socket
import ssl
import subprocess
import sys

import httpx
import pytest

from certs import issuer, renewal, rotation_plan, store
from devcluster import waiting

pytestmark = pytest.mark.component


def test_process_serves_and_stops(tmp_path) -> None:
    policy = rotation_plan.Policy(identity=issuer.ServingIdentity("w", ip_addresses=("127.0.0.1",)))
    renewal.run(store.FileStore(tmp_path), policy, datetime.datetime.now(datetime.UTC))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "FMA_WEBHOOK_TLS_CERT_FILE": str(tmp_path / store.TLS_CERT),
        "FMA_WEBHOOK_TLS_KEY_FILE": str(tmp_path / store.TLS_KEY),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "webhook", "--host", "127.0.0.1", "--port", str(port), "--no-lookups"],
        env={**env, "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    verify = ssl.create_default_context(cafile=str(tmp_path / store.BUNDLE))
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=5) as client:
            ready = waiting.wait_for(
                lambda: client.get("/readyz"), timeout=30, what="fma-webhook to answer", ignore=(httpx.TransportError,)
            )
            assert ready.status_code == 200
            answer = client.post("/mutate", content=b"{}").json()["response"]
            assert answer["allowed"] is False
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    messages = {r["msg"] for r in records}
    assert "webhook serving" in messages
    assert "admission answered" in messages
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
