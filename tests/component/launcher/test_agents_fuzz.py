"""Seeded random fuzzing of the three agents' HTTP APIs: malformed input never gives a 5xx or kills them.

hypothesis is not a dependency of this project, so the generator is a
seeded ``random.Random`` (``FMA_FUZZ_SEED`` overrides the seed; a failure
message names it so a run can be replayed).  Bodies that would really start
an instance keep the engine on a loopback port.
"""

from __future__ import annotations

import json
import os
import random
import string
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes

pytestmark = pytest.mark.component

SEED = int(os.environ.get("FMA_FUZZ_SEED", "20261127"))
ROUNDS = int(os.environ.get("FMA_FUZZ_ROUNDS", "150"))


def _text(rng: random.Random, limit: int = 40) -> str:
    alphabet = string.printable + "\u00e9\u2603\U0001f600\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 1.5, float("1e308"), rng.randint(-(10**6), 10**6)])
    if kind in (3, 4):
        return _text(rng)
    if kind == 5:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng, 10): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _body(rng: random.Random, field_names: list[str]) -> tuple[bytes | None, dict[str, str]]:
    choice = rng.randint(0, 4)
    if choice == 0:
        return None, {}
    if choice == 1:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))), {"content-type": "application/json"}
    if choice == 2:
        obj = {rng.choice(field_names): _json_value(rng) for _ in range(rng.randint(0, 4))}
    else:
        obj = _json_value(rng)
    return json.dumps(obj).encode(), {"content-type": rng.choice(["application/json", "text/plain", "x/y"])}


def _path(rng: random.Random, templates: list[str]) -> str:
    path = rng.choice(templates)
    # "watch" is left out on purpose: a well-formed watch is an endless stream, not a malformed request.
    segment = rng.choice(["x", "..", "%00", "%ff", "a" * 300, urllib.parse.quote(_text(rng, 12), safe="")])
    return path.replace("{id}", segment or "x")


def _fuzz(
    rng: random.Random, client: httpx.Client, templates: list[str], fields: list[str], queries: list[str]
) -> None:
    failures = []
    for round_no in range(ROUNDS):
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
        path = _path(rng, templates)
        body, headers = _body(rng, fields)
        if rng.random() < 0.3:
            garbage = "".join(c for c in _text(rng, 20) if c.isprintable() and c.isascii()).strip()
            headers["range"] = rng.choice(["bytes=", "bytes=-", "bytes=9999999999999999999-", garbage])
        params = {rng.choice(queries): _text(rng, 8) for _ in range(rng.randint(0, 2))}
        headers = {k: v.encode("ascii", "replace").decode() for k, v in headers.items()}
        try:
            response = client.request(method, path, content=body, headers=headers, params=params)
        except httpx.TransportError as exc:
            failures.append(f"round {round_no}: {method} {path}: transport error {exc!r}")
            break
        if response.status_code >= 500:
            failures.append(
                f"round {round_no}: {method} {path} {params} {body[:80] if body else body!r}: {response.status_code}"
            )
    assert not failures, f"seed {SEED}: " + "; ".join(failures[:5])


def test_launcher_survives_malformed_input(launcher: Any, harness: Any) -> None:
    rng = random.Random(SEED)
    safe_port = processes.free_port()

    class _SafeClient(httpx.Client):
        """Keeps any instance that does start on loopback: options get a fixed host and port prefix."""

        def request(self, method: str, url: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
            content = kwargs.get("content")
            if content:
                try:
                    obj = json.loads(content)
                except (ValueError, UnicodeDecodeError):
                    obj = None
                if isinstance(obj, dict) and isinstance(obj.get("options"), str):
                    junk = "".join(c for c in obj["options"] if c not in "-")
                    obj["options"] = f"--host 127.0.0.1 --port {safe_port} --sim-startup-seconds 0 {junk}"
                    kwargs["content"] = json.dumps(obj).encode()
            return super().request(method, url, **kwargs)

    with _SafeClient(base_url=launcher.base_url, timeout=30) as client:
        _fuzz(
            rng,
            client,
            [
                "/",
                "/health",
                "/metrics",
                "/v2/vllm/instances",
                "/v2/vllm/instances/{id}",
                "/v2/vllm/instances/{id}/log",
                "/v2/vllm/instances/{id}/{id}",
            ],
            ["options", "gpu_uuids", "env_vars", "annotations", "x"],
            ["detail", "since", "x"],
        )
        assert client.get("/health").status_code == 200
        view = client.get("/v2/vllm/instances").json()
        assert view["total_instances"] == len(view["instances"])
        client.delete("/v2/vllm/instances").raise_for_status()
    assert launcher.proc.poll() is None


def test_requester_survives_malformed_input(agent_factory: Callable[..., Any], harness: Any) -> None:
    spi_port, probes_port = processes.free_port(), processes.free_port()
    entry = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
    argv = [
        sys.executable,
        "-c",
        entry,
        "--host",
        "127.0.0.1",
        "--spi-port",
        str(spi_port),
        "--probes-port",
        str(probes_port),
    ]
    proc = agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": "GPU-1"}, name="requester")
    rng = random.Random(SEED + 1)
    with httpx.Client(base_url=f"http://127.0.0.1:{spi_port}", timeout=10) as spi:
        harness.wait_http(spi, "/v1/dual-pods/accelerators", "the requester SPI")
        _fuzz(
            rng,
            spi,
            [
                "/v1/dual-pods/accelerators",
                "/v1/dual-pods/accelerator-memory-usage",
                "/v1/become-ready",
                "/v1/become-unready",
                "/v1/set-log",
                "/v1/{id}",
                "/ready",
            ],
            ["x"],
            ["startPos", "x"],
        )
        assert spi.get("/v1/dual-pods/accelerators").json() == ["GPU-1"]
    assert proc.poll() is None


def test_engine_sim_survives_malformed_input(agent_factory: Callable[..., Any], harness: Any) -> None:
    port = processes.free_port()
    entry = "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"
    argv = [
        sys.executable,
        "-c",
        entry,
        "serve",
        "m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-sleep-mode",
    ]
    argv += ["--sim-startup-seconds", "0", "--sim-model-gib", "0", "--sim-reload-seconds", "0", "--max-model-len", "64"]
    proc = agent_factory(argv, env={"VLLM_SERVER_DEV_MODE": "1"}, name="sim")
    rng = random.Random(SEED + 2)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as sim:
        harness.wait_http(sim, "/health", "the simulator")
        _fuzz(
            rng,
            sim,
            [
                "/health",
                "/v1/models",
                "/v1/completions",
                "/v1/chat/completions",
                "/sleep",
                "/wake_up",
                "/is_sleeping",
                "/metrics",
                "/{id}",
            ],
            ["model", "prompt", "max_tokens", "messages", "stream", "max_completion_tokens"],
            ["level", "tags", "x"],
        )
        assert sim.get("/health").status_code == 200
    assert proc.poll() is None
