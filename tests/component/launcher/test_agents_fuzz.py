"""Property-based fuzzing of the three agents' HTTP APIs: malformed input never gives a 5xx or kills the process.

Requests are generated with hypothesis from each running app's own OpenAPI
schema (its paths, methods, path and query parameters and JSON body
schemas), in the spirit of schemathesis but with hypothesis only: bodies are
schema-shaped objects, the same with one field replaced by arbitrary JSON or
an unknown field added, arbitrary JSON, or raw bytes; path parameters and
query values are arbitrary text; log reads get arbitrary ``Range`` headers;
each path also gets a method it does not define.  Endpoints whose bodies the
schema does not describe (the simulator reads raw JSON) get their field
names as hints.  The JSON values include what Python's ``json`` writes but
JSON does not allow: ``NaN``, ``Infinity`` and lone UTF-16 surrogates
(issue 15: leaving them out is why these tests once passed while such bodies
got 500s), and a few bodies are hostile by shape: nested 200,000 levels
deep, or larger than every agent's body cap.

Each endpoint group (one path template) runs ``FMA_FUZZ_EXAMPLES`` examples
(default 100), derandomised so that a run is reproducible, against one
process per agent; the process must still be alive and answering at the end.
Bodies that would really start a launcher instance keep its engine on a
loopback port.  The watch stream is left out: a well-formed watch is an
endless stream, not a malformed request.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

from devcluster import processes

pytestmark = pytest.mark.component

EXAMPLES = int(os.environ.get("FMA_FUZZ_EXAMPLES", "100"))
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much],
)


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Text, a third of the time drawn with lone surrogates allowed (hypothesis leaves category Cs out by default)."""
    plain = st.text(max_size=max_size)
    return st.one_of(plain, plain, st.text(st.characters(exclude_categories=()), max_size=max_size))


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and +-Infinity included: json.dumps writes them as bare literals
    | texts(40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts(12), children, max_size=4),
    max_leaves=12,
)

HOSTILE_BODIES: st.SearchStrategy[bytes] = st.sampled_from(
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"options": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"options": "' + b"x" * (5 * 1024 * 1024) + b'"}',
        b'{"options": "--model m", "annotations": {"a": "\\udc80"}}',
        b'{"options": "--model m", "env_vars": {"A": "\\ud800"}}',
        b'{"options": "--model m", "annotations": {"a": NaN}}',
        b'{"prompt": "x", "max_tokens": Infinity, "temperature": -Infinity}',
        b'{"options": 1e400}',
        b'{"options": "\xed\xb2\x80"}',
    ]
)
"""Bodies hostile by shape: deep nesting, beyond every body cap, non-finite numbers, lone surrogates."""


@dataclasses.dataclass(frozen=True)
class Operation:
    """One path template of an app's OpenAPI schema, with what it accepts."""

    path: str
    methods: dict[str, dict[str, Any]]
    components: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Request:
    """One generated HTTP request."""

    method: str
    path: str
    params: dict[str, str]
    body: bytes | None
    headers: dict[str, str]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return dict(components["schemas"][ref.rsplit("/", 1)[1]])
    return schema


def from_schema(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that fit a JSON schema of FastAPI's OpenAPI output, loosely (sizes are capped)."""
    schema = _resolve(schema, components)
    if depth > 3:
        return JSON_VALUES
    if "anyOf" in schema:
        return st.one_of(*(from_schema(s, components, depth + 1) for s in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "string":
        return texts(min(int(schema.get("maxLength", 64)), 64))
    if kind == "integer":
        return st.integers(min_value=-(2**40), max_value=2**40)
    if kind == "number":
        return st.floats()
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components, depth + 1), max_size=4)
    if kind == "object":
        properties = {k: from_schema(v, components, depth + 1) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            more = st.dictionaries(texts(20), from_schema(extra, components, depth + 1), max_size=4)
            return st.builds(lambda a, b: {**b, **a}, fixed, more)
        return fixed
    return JSON_VALUES


def _body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = (operation.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _bodies(schema: dict[str, Any] | None, components: dict[str, Any], hints: list[str]) -> st.SearchStrategy[Any]:
    """Schema-shaped objects, one field spoilt or an unknown one added, arbitrary JSON, raw bytes, hostile bodies."""
    if schema is not None:
        shaped = from_schema(schema, components)
        names = [*_resolve(schema, components).get("properties", {}), "unexpected"]
    else:
        shaped = st.dictionaries(st.sampled_from(hints or ["x"]), JSON_VALUES, max_size=len(hints) + 1)
        names = [*hints, "unexpected"]
    spoilt = st.builds(
        lambda obj, key, value: {**obj, key: value} if isinstance(obj, dict) else obj,
        shaped,
        st.sampled_from(names),
        JSON_VALUES,
    )
    encoded = st.one_of(shaped, spoilt, JSON_VALUES).map(lambda v: json.dumps(v).encode())
    return st.one_of(st.none(), encoded, encoded, st.binary(max_size=64), HOSTILE_BODIES)


def _segments() -> st.SearchStrategy[str]:
    """Path parameter values: label-like IDs, arbitrary text, and a few classics."""
    text = st.one_of(
        st.from_regex(r"\A[A-Za-z0-9][-A-Za-z0-9_.]{0,20}\Z"),
        st.text(min_size=1, max_size=70),
        st.sampled_from(["..", "%00", "%ff", "a" * 300, " ", "I" + "x" * 43 + "i"]),
    )
    return text.filter(lambda s: s.strip() != "watch").map(lambda s: urllib.parse.quote(s, safe=""))


def _ascii_header(value: str) -> str:
    return "".join(c for c in value if c.isascii() and c.isprintable()).strip()


RANGES = st.one_of(
    st.none(),
    st.sampled_from(["bytes=", "bytes=-", "bytes=-5", "bytes=5-1", "bytes=0-0,2-3", "items=0-1", "bytes=99999999999-"]),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(-5, 10**20), st.one_of(st.just(""), st.integers(-5, 10**20))),
    st.text(max_size=20).map(_ascii_header),
)


@st.composite
def http_requests(draw: st.DrawFn, operation: Operation, hints: list[str]) -> Request:
    """A request to ``operation``'s path with a defined method (mostly) or any other."""
    method = draw(st.one_of(st.sampled_from(sorted(operation.methods)), st.sampled_from(METHODS))).upper()
    spec = operation.methods.get(method.lower(), {})
    path = operation.path
    params: dict[str, str] = {}
    for parameter in spec.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            path = path.replace("{" + name + "}", draw(_segments()))
        elif parameter["in"] == "query" and draw(st.booleans()):
            value = draw(
                st.one_of(from_schema(parameter.get("schema", {}), operation.components), st.text(max_size=12))
            )
            params[name] = value if isinstance(value, str) else json.dumps(value)
    for name in draw(st.lists(st.sampled_from(["x", "detail", "since", "level"]), max_size=2)):
        params.setdefault(name, draw(st.text(max_size=8)))
    path = path.replace("{", "").replace("}", "")
    headers = {"content-type": draw(st.sampled_from(["application/json", "text/plain", "x/y", ""]))}
    if path.endswith("/log") or draw(st.integers(0, 9)) == 0:
        value = draw(RANGES)
        if value is not None:
            headers["range"] = value
    body = draw(_bodies(_body_schema(spec), operation.components, hints))
    return Request(method=method, path=path, params=params, body=body, headers=headers)


def operations(client: httpx.Client, leave_out: tuple[str, ...] = ()) -> list[Operation]:
    """The path templates of the app behind ``client``, from its ``/openapi.json``."""
    schema = client.get("/openapi.json").raise_for_status().json()
    components = schema.get("components", {})
    return [
        Operation(path=path, methods=dict(methods), components=components)
        for path, methods in sorted(schema["paths"].items())
        if path not in leave_out
    ]


def _send(
    client: httpx.Client, operation: Operation, request: Request, allowed: frozenset[int], seen: Counter[int]
) -> None:
    response = client.request(
        request.method, request.path, params=request.params, content=request.body, headers=request.headers
    )
    seen[response.status_code] += 1
    assert response.status_code < 500 or response.status_code in allowed, (
        f"{operation.path}: {request.method} {request.path} {request.params} {request.body!r:.120}"
        f" -> {response.status_code} {response.text[:200]!r}"
    )


def _property(
    client: httpx.Client,
    operation: Operation,
    hints: list[str],
    rewrite: Callable[[Request], Request],
    allowed: frozenset[int],
    seen: Counter[int],
) -> Callable[[], None]:
    """The hypothesis test of one operation: no generated request gets a 5xx outside ``allowed``."""

    @_SETTINGS
    @hypothesis.given(http_requests(operation, hints))
    def check(request: Request) -> None:
        _send(client, operation, rewrite(request), allowed, seen)

    return check


def fuzz(
    client: httpx.Client,
    ops: list[Operation],
    hints: dict[str, list[str]] | None = None,
    rewrite: Callable[[Request], Request] = lambda r: r,
    designed: dict[str, frozenset[int]] | None = None,
) -> Counter[int]:
    """Send generated requests to every operation; a 5xx or a transport error fails, naming the group.

    ``designed`` lists, per path, the 5xx statuses the contract gives on purpose
    (a probe that is not ready, inference while the engine sleeps).  Returns
    how often each status was answered, so a test can check that the
    generated requests reach the handlers and not just the validation.
    """
    seen: Counter[int] = collections.Counter()
    for operation in ops:
        allowed = (designed or {}).get(operation.path, frozenset())
        _property(client, operation, (hints or {}).get(operation.path, []), rewrite, allowed, seen)()
    return seen


def _safe_options(port: int) -> Callable[[Request], Request]:
    """Keeps any instance that does start on loopback: options get a fixed host and port prefix."""

    def rewrite(request: Request) -> Request:
        try:
            obj = json.loads(request.body) if request.body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return request
        if not (isinstance(obj, dict) and isinstance(obj.get("options"), str)):
            return request
        junk = "".join(c for c in obj["options"] if c != "-")
        obj["options"] = f"--host 127.0.0.1 --port {port} --sim-startup-seconds 0 {junk}"
        return dataclasses.replace(request, body=json.dumps(obj).encode())

    return rewrite


def test_launcher_survives_malformed_input(launcher: Any) -> None:
    with httpx.Client(base_url=launcher.base_url, timeout=30) as client:
        ops = operations(client, leave_out=("/v2/vllm/instances/watch",))
        assert {op.path for op in ops} >= {"/v2/vllm/instances", "/v2/vllm/instances/{instance_id}/log"}
        seen = fuzz(client, ops, rewrite=_safe_options(processes.free_port()))
        assert {200, 201, 400, 404, 405, 422} <= set(seen), seen  # handlers were reached, instances created
        assert client.get("/health").status_code == 200
        view = client.get("/v2/vllm/instances").json()
        assert view["total_instances"] == len(view["instances"])
        client.delete("/v2/vllm/instances").raise_for_status()
        assert client.get("/v2/vllm/instances").json()["total_instances"] == 0
    assert launcher.proc.poll() is None


def test_requester_survives_malformed_input(agent_factory: Callable[..., Any], harness: Any) -> None:
    spi_port, probes_port = processes.free_port(), processes.free_port()
    entry = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
    argv = [sys.executable, "-c", entry, "--host", "127.0.0.1", "--spi-port", str(spi_port)]
    argv += ["--probes-port", str(probes_port)]
    proc = agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": "GPU-1"}, name="requester")
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{spi_port}", timeout=10) as spi,
        httpx.Client(base_url=f"http://127.0.0.1:{probes_port}", timeout=10) as probes,
    ):
        harness.wait_http(spi, "/v1/dual-pods/accelerators", "the requester SPI")
        fuzz(spi, operations(spi))
        fuzz(probes, operations(probes), designed={"/ready": frozenset({503})})  # 503 = not ready, by design
        assert spi.get("/v1/dual-pods/accelerators").json() == ["GPU-1"]
        assert probes.get("/ready").status_code in (200, 503)
    assert proc.poll() is None


def test_engine_sim_survives_malformed_input(agent_factory: Callable[..., Any], harness: Any) -> None:
    port = processes.free_port()
    entry = "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"
    argv = [sys.executable, "-c", entry, "serve", "m", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--enable-sleep-mode", "--sim-startup-seconds", "0", "--sim-model-gib", "0", "--sim-reload-seconds", "0"]
    argv += ["--max-model-len", "64"]
    proc = agent_factory(argv, env={"VLLM_SERVER_DEV_MODE": "1"}, name="sim")
    inference = ["model", "prompt", "max_tokens", "messages", "stream", "max_completion_tokens", "temperature"]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as sim:
        harness.wait_http(sim, "/health", "the simulator")
        ops = operations(sim)
        assert {op.path for op in ops} >= {"/v1/completions", "/sleep", "/wake_up"}
        asleep = frozenset({503})  # inference while asleep is 503 by contract; the fuzz sends /sleep too
        fuzz(
            sim,
            ops,
            hints={"/v1/completions": inference, "/v1/chat/completions": inference},
            designed={"/v1/completions": asleep, "/v1/chat/completions": asleep},
        )
        assert sim.get("/health").status_code == 200
    assert proc.poll() is None
