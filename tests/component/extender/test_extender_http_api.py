"""The extender's HTTP API on a real uvicorn on 127.0.0.1 over a hand-made cluster model."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from crds import keys, sleeper_config, sleeper_scoring, sleeper_view
from devcluster import waiting
from extender import http_api, metrics

pytestmark = pytest.mark.component

KEY = "Cmodel-c"


@dataclasses.dataclass
class FakeWorld:
    nodes: dict[str, sleeper_view.NodeView]

    def node(self, name: str) -> sleeper_view.NodeView | None:
        return self.nodes.get(name)

    def server_config(self, namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
        if (namespace, name) == ("team", "isc"):
            return sleeper_config.ServerConfigSummary(config_key=KEY, launcher_config_name="lc", port=8005)
        return None

    def launcher_config(self, namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
        return sleeper_config.LauncherConfigSummary(max_instances=2, node_selector={})

    def relevant_nodes(self, want: sleeper_scoring.Demand) -> frozenset[str] | None:
        return None


def _view(name: str, *, idle_launcher: bool = False) -> sleeper_view.NodeView:
    launchers = (sleeper_view.Launcher("team", f"l-{name}", "lc", ()),) if idle_launcher else ()
    return sleeper_view.NodeView(
        name=name,
        labels={},
        gpu_capacity=2,
        gpus=(f"{name}-0", f"{name}-1"),
        held=frozenset(),
        unknown_held=0,
        launchers=launchers,
    )


@dataclasses.dataclass
class Served:
    url: str
    ready: threading.Event
    metrics: metrics.ExtenderMetrics


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    ready = threading.Event()
    extender_metrics = metrics.ExtenderMetrics()
    world = FakeWorld({"a": _view("a"), "b": _view("b", idle_launcher=True)})
    app = http_api.create_app(
        world=world, extender_metrics=extender_metrics, ready=ready.is_set, max_body_bytes=64 * 1024
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    waiting.wait_for(lambda: server.started, timeout=20, what="uvicorn to start", interval=0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", ready, extender_metrics)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=5) as c:
        yield c


def _requester() -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "team", "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"}},
        "spec": {"containers": [{"name": "inference-server", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
    }


def test_healthz_follows_sync(served: Served, client: httpx.Client) -> None:
    served.ready.clear()
    assert client.get("/healthz").status_code == 503
    served.ready.set()
    assert client.get("/healthz").status_code == 200


def test_prioritize_in_node_cache_mode(client: httpx.Client) -> None:
    response = client.post("/prioritize", json={"Pod": _requester(), "NodeNames": ["a", "b", "ghost"]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {"Host": "a", "Score": sleeper_scoring.COLD_SCORE},
        {"Host": "b", "Score": sleeper_scoring.WARM_SCORE},
        {"Host": "ghost", "Score": sleeper_scoring.NEUTRAL_SCORE},
    ]


def test_filter_answers_in_kind(client: httpx.Client) -> None:
    names = client.post("/filter", json={"Pod": _requester(), "NodeNames": ["a", "b"], "Nodes": None}).json()
    assert names == {
        "Nodes": None,
        "NodeNames": ["a", "b"],
        "FailedNodes": {},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }
    items = [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
    full = client.post("/filter", json={"Pod": _requester(), "Nodes": {"items": items}}).json()
    assert full["Nodes"] == {"items": items}
    assert full["NodeNames"] is None


def test_non_fma_pod_gets_neutral_scores(client: httpx.Client) -> None:
    pod = {"metadata": {"name": "plain", "namespace": "x"}, "spec": {"containers": [{"name": "c"}]}}
    answer = client.post("/prioritize", json={"Pod": pod, "NodeNames": ["a", "b"]}).json()
    assert [entry["Score"] for entry in answer] == [sleeper_scoring.NEUTRAL_SCORE] * 2


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/filter", b"not json", id="filter garbage"),
        pytest.param("/prioritize", b'{"Pod": {"metadata": {}}}', id="prioritize without candidates"),
        pytest.param("/prioritize", b'{"Pod": 3, "NodeNames": []}', id="Pod not an object"),
    ],
)
def test_malformed_args_get_400_with_a_message(client: httpx.Client, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed ExtenderArgs: ")


_POD = b'{"metadata": {"name": "p", "namespace": "x"}, "spec": {"containers": [{"name": "c"}]}}'


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(b'{"Pod": ' + _POD + b', "NodeNames": ["a"], "x": NaN}', "NaN", id="nan"),
        pytest.param(b'{"Pod": ' + _POD + b', "NodeNames": ["a"], "x": -Infinity}', "Infinity", id="infinity"),
        pytest.param(b'{"Pod": ' + _POD + b', "NodeNames": ["\\udc80"]}', "surrogate", id="lone-surrogate"),
        pytest.param(
            b'{"Pod": ' + _POD + b', "NodeNames": ["a"], "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            "nested deeper than 201 levels",
            id="deep-nesting",
        ),
    ],
)
def test_hostile_json_gets_400_naming_the_problem(client: httpx.Client, body: bytes, named: str) -> None:
    """Issue 15: NaN, Infinity, lone surrogates and deep nesting are malformed at parse time."""
    response = client.post("/prioritize", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]


def test_oversized_body_gets_413(client: httpx.Client) -> None:
    body = json.dumps({"Pod": _requester(), "NodeNames": ["n" * 100] * 1000}).encode()
    assert client.post("/prioritize", content=body).status_code == 413


def test_metrics_count_verbs_nodes_and_decisions(client: httpx.Client) -> None:
    client.post("/prioritize", json={"Pod": _requester(), "NodeNames": ["a", "b"]})
    client.post("/filter", content=b"{")
    text = client.get("/metrics").text
    assert 'fma_extender_request_duration_seconds_bucket{le="0.02",verb="prioritize"}' in text
    assert 'fma_extender_decisions_total{placement="warm"}' in text
    assert 'fma_extender_nodes_scored_total{verb="prioritize"}' in text
    assert 'fma_extender_bad_requests_total{verb="filter"}' in text


def test_wrong_method_is_refused(client: httpx.Client) -> None:
    assert client.get("/prioritize").status_code == 405
