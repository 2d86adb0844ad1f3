"""The launcher API over real HTTP: every endpoint and status code of docs/protocol.md, "Launcher API".

The instances run the sim engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.component

BASE = "/v2/vllm/instances"


def _put(agent: Any, instance_id: str, options: str, **extra: object) -> httpx.Response:
    return agent.client.put(f"{BASE}/{instance_id}", json={"options": options, **extra})


def _main_pid(agent: Any, instance_id: str) -> int:
    """The instance's main PID, as its engine simulator logged it."""

    def find() -> int | None:
        log = agent.client.get(f"{BASE}/{instance_id}/log").content
        for line in log.splitlines():
            record = json.loads(line)
            if record.get("msg") == "engine simulator starting":
                return int(record["pid"])
        return None

    return waiting.wait_for(find, timeout=20, what=f"instance {instance_id} to log its PID")


def _wait_ready_log(agent: Any, instance_id: str) -> bytes:
    return waiting.wait_for(
        lambda: (
            (log := agent.client.get(f"{BASE}/{instance_id}/log").content) and b"engine simulator ready" in log and log
        ),
        timeout=20,
        what=f"instance {instance_id} to log that it is ready",
    )


def test_index_and_health(launcher: Any) -> None:
    index = launcher.client.get("/").json()
    assert index["name"] == "Multi-Instance vLLM Management API"
    assert index["version"] == "2.0"
    assert len(index["endpoints"]) == 10
    assert index["endpoints"]["watch_instances"] == f"GET {BASE}/watch"
    assert launcher.client.get("/health").json() == {"status": "OK"}


def test_put_creates_once_and_then_conflicts(launcher: Any, harness: Any) -> None:
    options = harness.sim_options(processes.free_port())
    first = _put(launcher, "inst-a", options, gpu_uuids=["GPU-aaaa"], annotations={"isc-name": "x"})
    assert first.status_code == 201, first.text
    state = first.json()
    assert state["status"] == "running"
    assert state["instance_id"] == "inst-a"
    assert state["revision"] == 1
    assert state["annotations"] == {"isc-name": "x"}
    assert state["env_vars"]["CUDA_VISIBLE_DEVICES"] == "3"
    assert "exit_code" not in state
    second = _put(launcher, "inst-a", options)
    assert second.status_code == 409
    assert second.json() == {"detail": "Instance with ID inst-a already exists"}
    assert launcher.client.get(BASE).json()["total_instances"] == 1


def test_post_assigns_a_uuid4(launcher: Any, harness: Any) -> None:
    response = launcher.client.post(
        BASE, json={"options": harness.sim_options(processes.free_port()), "env_vars": None}
    )
    assert response.status_code == 201
    assert uuid.UUID(response.json()["instance_id"]).version == 4
    got = launcher.client.get(f"{BASE}/{response.json()['instance_id']}")
    assert got.status_code == 200
    assert got.json()["status"] == "running"


def test_unknown_instance_is_404_everywhere(launcher: Any) -> None:
    for method, path in [("GET", f"{BASE}/nope"), ("DELETE", f"{BASE}/nope"), ("GET", f"{BASE}/nope/log")]:
        response = launcher.client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Instance nope not found"}


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_unknown_gpu_uuid_is_400_and_changes_nothing(launcher: Any, method: str, harness: Any) -> None:
    body = {"options": harness.sim_options(processes.free_port()), "gpu_uuids": ["GPU-aaaa", "GPU-zzzz"]}
    path = BASE if method == "POST" else f"{BASE}/gpu-test"
    response = launcher.client.request(method, path, json=body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("GPU UUID 'GPU-zzzz' not found. Available UUIDs: [")
    assert "'GPU-aaaa'" in detail
    view = launcher.client.get(BASE).json()
    assert view == {"revision": 0, "total_instances": 0, "running_instances": 0, "instances": []}


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        pytest.param(f"{BASE}/Bad_ID!", {"options": ""}, 400, "not a valid label value", id="id-not-a-label-value"),
        pytest.param(f"{BASE}/{'a' * 64}", {"options": ""}, 400, "not a valid label value", id="id-too-long"),
        pytest.param(f"{BASE}/-x", {"options": ""}, 400, "not a valid label value", id="id-leading-dash"),
        pytest.param(f"{BASE}/ok", {"options": "x" * 20000}, 422, "options", id="options-too-long"),
        pytest.param(f"{BASE}/ok", {"options": "", "env_vars": {"BAD-NAME": "1"}}, 422, "BAD-NAME", id="env-name"),
        pytest.param(f"{BASE}/ok", {"options": "", "env_vars": {"1X": "1"}}, 422, "1X", id="env-name-digit"),
        pytest.param(f"{BASE}/ok", {"gpu_uuids": []}, 422, "options", id="missing-options"),
        pytest.param(f"{BASE}/ok", {"options": "", "extra": 1}, 422, "extra", id="unknown-field"),
        pytest.param(f"{BASE}/ok", {"options": 5}, 422, "options", id="options-not-a-string"),
        pytest.param(f"{BASE}/ok", {"options": "", "gpu_uuids": "GPU-aaaa"}, 422, "gpu_uuids", id="gpus-not-a-list"),
        pytest.param(f"{BASE}/ok", [1, 2], 422, "body", id="body-not-an-object"),
    ],
)
def test_bad_input_is_4xx_naming_the_problem(launcher: Any, path: str, body: object, status: int, needle: str) -> None:
    response = launcher.client.put(path, json=body)
    assert response.status_code == status, response.text
    assert needle in json.dumps(response.json()["detail"])
    assert launcher.client.get(BASE).json()["revision"] == 0


def test_malformed_json_and_oversized_body(launcher: Any) -> None:
    broken = launcher.client.put(f"{BASE}/ok", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert "json" in json.dumps(broken.json()["detail"]).lower()
    huge = launcher.client.put(
        f"{BASE}/ok", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    assert "exceeds the limit" in huge.json()["detail"]
    assert launcher.client.get(BASE).json()["total_instances"] == 0


def test_list_views_and_get(launcher: Any, harness: Any) -> None:
    for name in ("one", "two"):
        assert _put(launcher, name, harness.sim_options(processes.free_port())).status_code == 201
    detail = launcher.client.get(BASE, params={"detail": "true"}).json()
    assert detail["revision"] == 2
    assert detail["total_instances"] == 2
    assert detail["running_instances"] == 2
    assert [i["instance_id"] for i in detail["instances"]] == ["one", "two"]
    ids = launcher.client.get(BASE, params={"detail": "false"}).json()
    assert ids == {"revision": 2, "instance_ids": ["one", "two"], "count": 2}
    assert launcher.client.get(f"{BASE}/two").json()["revision"] == 2


def test_log_ranges(launcher: Any, harness: Any) -> None:
    assert _put(launcher, "logs", harness.sim_options(processes.free_port())).status_code == 201
    full = _wait_ready_log(launcher, "logs")
    whole = launcher.client.get(f"{BASE}/logs/log")
    total = len(whole.content)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/octet-stream"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-range"] == f"bytes 0-{total - 1}/{total}"
    assert whole.content.startswith(full)

    tail = launcher.client.get(f"{BASE}/logs/log", headers={"Range": "bytes=5-"})
    assert tail.status_code == 206
    assert tail.content == whole.content[5:]
    assert tail.headers["content-range"] == f"bytes 5-{total - 1}/{total}"

    middle = launcher.client.get(f"{BASE}/logs/log", headers={"Range": "bytes=2-4"})
    assert middle.status_code == 206
    assert middle.content == whole.content[2:5]
    assert middle.headers["content-range"] == f"bytes 2-4/{total}"

    clipped = launcher.client.get(f"{BASE}/logs/log", headers={"Range": f"bytes=3-{total + 100}"})
    assert clipped.status_code == 206
    assert clipped.headers["content-range"] == f"bytes 3-{total - 1}/{total}"

    beyond = launcher.client.get(f"{BASE}/logs/log", headers={"Range": f"bytes={total}-"})
    assert beyond.status_code == 416
    assert beyond.content == b""
    assert beyond.headers["content-range"] == f"bytes */{total}"

    for bad in ("bytes=-5", "bytes=1-2,4-5", "items=0-1", "bytes=5-2", "garbage", "bytes=a-"):
        response = launcher.client.get(f"{BASE}/logs/log", headers={"Range": bad})
        assert response.status_code == 400, bad
        assert "Range" in response.json()["detail"]


def test_empty_log_is_200_without_range_and_416_with(launcher: Any, harness: Any) -> None:
    options = harness.sim_options(processes.free_port(), "--uvicorn-log-level", "critical")
    assert _put(launcher, "quiet", options).status_code == 201
    response = launcher.client.get(f"{BASE}/quiet/log")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-range"] == "bytes */0"
    ranged = launcher.client.get(f"{BASE}/quiet/log", headers={"Range": "bytes=0-"})
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"


def test_crashed_instance_shows_stopped_until_deleted(launcher: Any, harness: Any) -> None:
    assert _put(launcher, "crash", harness.sim_options(processes.free_port())).status_code == 201
    os.kill(_main_pid(launcher, "crash"), signal.SIGKILL)
    state = waiting.wait_for(
        lambda: (s := launcher.client.get(f"{BASE}/crash").json())["status"] == "stopped" and s,
        timeout=10,
        what="the crashed instance to show stopped",
    )
    assert state["exit_code"] == -9
    assert state["revision"] == 2
    view = launcher.client.get(BASE).json()
    assert view["total_instances"] == 1
    assert view["running_instances"] == 0
    deleted = launcher.client.delete(f"{BASE}/crash")
    assert deleted.status_code == 200
    assert deleted.json()["revision"] == 3
    assert launcher.client.get(f"{BASE}/crash").status_code == 404


def test_delete_reaps_the_whole_process_group(launcher: Any, harness: Any) -> None:
    options = harness.sim_options(processes.free_port(), "--sim-workers", "2", "--sim-ignore-sigterm")
    assert _put(launcher, "stubborn", options).status_code == 201
    log = _wait_ready_log(launcher, "stubborn")
    pids = harness.log_pids(log)
    assert len(pids) == 3, log
    assert all(harness.alive(p) for p in pids)
    log_files = list((launcher.workdir / "logs").glob("*stubborn.log"))
    assert len(log_files) == 1
    response = launcher.client.delete(f"{BASE}/stubborn")
    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "stopped"
    assert state["exit_code"] == -9  # it ignored SIGTERM, so the group got SIGKILL after the grace period
    assert [p for p in pids if harness.alive(p)] == []  # no orphan survives, checked right at the answer
    assert not log_files[0].exists()


def test_delete_of_a_cooperative_instance_is_quick(launcher: Any, harness: Any) -> None:
    options = harness.sim_options(processes.free_port(), "--sim-workers", "1")
    assert _put(launcher, "nice", options).status_code == 201
    pids = harness.log_pids(_wait_ready_log(launcher, "nice"))
    response = launcher.client.delete(f"{BASE}/nice")
    assert response.status_code == 200
    assert response.json()["exit_code"] != -9  # it honoured SIGTERM within the grace period
    assert response.elapsed.total_seconds() < 2
    assert [p for p in pids if harness.alive(p)] == []  # its SIGTERM-deaf worker was killed with the group


def test_delete_all(launcher: Any, harness: Any) -> None:
    for name in ("x1", "x2"):
        assert _put(launcher, name, harness.sim_options(processes.free_port())).status_code == 201
    result = launcher.client.delete(BASE).json()
    assert result["status"] == "all_stopped"
    assert result["total_stopped"] == 2
    assert sorted(s["instance_id"] for s in result["stopped_instances"]) == ["x1", "x2"]
    assert all(s["status"] == "stopped" for s in result["stopped_instances"])
    assert launcher.client.get(BASE).json()["total_instances"] == 0


def _read_lines(agent: Any, params: dict[str, str], sink: queue.Queue[dict[str, object]]) -> threading.Thread:
    ready = threading.Event()

    def run() -> None:
        with (
            httpx.Client(base_url=agent.base_url, timeout=30) as client,
            client.stream("GET", f"{BASE}/watch", params=params) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/x-ndjson"
            assert response.headers["x-content-type-options"] == "nosniff"
            ready.set()
            for line in response.iter_lines():
                sink.put(json.loads(line))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread


def _take(sink: queue.Queue[dict[str, object]], n: int) -> list[dict[str, object]]:
    return [sink.get(timeout=20) for _ in range(n)]


def test_watch_streams_created_stopped_deleted_in_order(launcher: Any, harness: Any) -> None:
    assert _put(launcher, "before", harness.sim_options(processes.free_port())).status_code == 201
    live: queue.Queue[dict[str, object]] = queue.Queue()
    _read_lines(launcher, {}, live)
    first = _take(live, 1)[0]
    assert first["type"] == "CREATED"  # the synthetic event for the existing instance
    assert first["object"]["instance_id"] == "before"  # type: ignore[index]

    assert _put(launcher, "w", harness.sim_options(processes.free_port())).status_code == 201
    os.kill(_main_pid(launcher, "w"), signal.SIGKILL)
    waiting.wait_for(
        lambda: launcher.client.get(f"{BASE}/w").json()["status"] == "stopped", timeout=10, what="w to stop"
    )
    assert launcher.client.delete(f"{BASE}/w").status_code == 200
    events = _take(live, 3)
    assert [e["type"] for e in events] == ["CREATED", "STOPPED", "DELETED"]
    assert [e["object"]["revision"] for e in events] == [2, 3, 4]  # type: ignore[index]
    assert events[1]["object"]["exit_code"] == -9  # type: ignore[index]
    assert all(set(e) == {"type", "object"} for e in events)

    replay: queue.Queue[dict[str, object]] = queue.Queue()
    _read_lines(launcher, {"since": "1"}, replay)
    assert [e["type"] for e in _take(replay, 3)] == ["CREATED", "STOPPED", "DELETED"]


def test_watch_since_outside_the_buffer_is_410(launcher_factory: Callable[..., Any], harness: Any) -> None:
    agent = launcher_factory("--watch-buffer", "2")
    for name in ("a", "b", "c"):
        assert _put(agent, name, harness.sim_options(processes.free_port())).status_code == 201
    old = agent.client.get(f"{BASE}/watch", params={"since": "0"})
    assert old.status_code == 410
    assert old.json() == {"detail": "Requested revision 0 is no longer available. Oldest available: 1."}
    future = agent.client.get(f"{BASE}/watch", params={"since": "99"})
    assert future.status_code == 410
    sink: queue.Queue[dict[str, object]] = queue.Queue()
    _read_lines(agent, {"since": "1"}, sink)
    assert [e["object"]["instance_id"] for e in _take(sink, 2)] == ["b", "c"]  # type: ignore[index]


def test_concurrent_creates_and_deletes_stay_consistent(launcher: Any, harness: Any) -> None:
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        async with httpx.AsyncClient(base_url=launcher.base_url, timeout=60) as client:
            ports = [processes.free_port() for _ in range(4)]
            distinct = [
                client.put(f"{BASE}/c{i}", json={"options": harness.sim_options(p)}) for i, p in enumerate(ports)
            ]
            same = [
                client.put(f"{BASE}/dup", json={"options": harness.sim_options(processes.free_port())})
                for _ in range(4)
            ]
            responses = await asyncio.gather(*distinct, *same)
            deletes = await asyncio.gather(*(client.delete(f"{BASE}/c{i % 2}") for i in range(4)))
            return (
                [r.status_code for r in responses[:4]],
                [r.status_code for r in responses[4:]],
                [r.status_code for r in deletes],
            )

    created, duplicates, deleted = asyncio.run(scenario())
    assert created == [201] * 4
    assert sorted(duplicates) == [201, 409, 409, 409]
    assert all(code in (200, 404) for code in deleted)
    view = launcher.client.get(BASE).json()
    assert sorted(i["instance_id"] for i in view["instances"]) == ["c2", "c3", "dup"]
    assert view["revision"] == 5 + 2  # five CREATED, two DELETED
    replay: queue.Queue[dict[str, object]] = queue.Queue()
    _read_lines(launcher, {"since": "0"}, replay)
    events = _take(replay, 7)
    assert [e["object"]["revision"] for e in events] == list(range(1, 8))  # type: ignore[index]
    assert sorted(e["object"]["instance_id"] for e in events if e["type"] == "DELETED") == ["c0", "c1"]  # type: ignore[index]


def test_bearer_auth_guards_everything_but_health(launcher_factory: Callable[..., Any]) -> None:
    agent = launcher_factory(env={"FMA_LAUNCHER_TOKEN": "s3cret"})
    with httpx.Client(base_url=agent.base_url, timeout=10) as anonymous:
        assert anonymous.get("/health").status_code == 200
        for path in ("/", BASE, "/metrics", f"{BASE}/watch"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get(BASE, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert agent.client.get(BASE).status_code == 200  # the fixture's client sends the token


def test_auth_token_file(launcher_factory: Callable[..., Any], tmp_path: os.PathLike[str]) -> None:
    token_file = os.path.join(tmp_path, "token")
    with open(token_file, "w") as f:
        f.write("from-file\n")
    agent = launcher_factory("--auth-token-file", token_file)
    assert agent.client.get(BASE).status_code == 401
    assert agent.client.get(BASE, headers={"Authorization": "Bearer from-file"}).status_code == 200


def test_metrics(launcher: Any, harness: Any) -> None:
    assert _put(launcher, "m1", harness.sim_options(processes.free_port())).status_code == 201
    text = launcher.client.get("/metrics").text
    assert re.search(r'^fma_launcher_instances\{status="running"\} 1\.0$', text, re.M), text
    assert re.search(r"^fma_launcher_instance_start_seconds_count 1\.0$", text, re.M), text
    assert launcher.client.delete(f"{BASE}/m1").status_code == 200
    text = launcher.client.get("/metrics").text
    assert re.search(r'^fma_launcher_instances\{status="running"\} 0\.0$', text, re.M), text
    assert re.search(r"^fma_launcher_instance_stop_seconds_count 1\.0$", text, re.M), text


def test_losing_the_preloaded_parent_fails_liveness(launcher: Any, harness: Any) -> None:
    assert launcher.client.get("/readyz").json() == {"status": "ready"}
    records = [json.loads(line) for line in (launcher.workdir / "agent.log").read_text().splitlines()]
    (zygote_pid,) = [r["zygote_pid"] for r in records if r.get("msg") == "engine preloaded"]
    os.kill(zygote_pid, signal.SIGKILL)
    health = waiting.wait_for(
        lambda: (r := launcher.client.get("/health")).status_code == 503 and r,
        timeout=10,
        what="/health to report the lost preloaded parent",
    )
    assert "preloaded parent" in health.json()["detail"]
    response = _put(launcher, "late", harness.sim_options(processes.free_port()))
    assert response.status_code == 503  # issue 15: the engine is unavailable, not an internal error
    assert "preloaded parent" in response.json()["detail"]
    ready = launcher.client.get("/readyz")
    assert ready.status_code == 503
    assert "preloaded parent" in ready.json()["detail"]
    assert launcher.client.get(BASE).json()["total_instances"] == 0


def test_vllm_engine_without_vllm_fails_start_up_clearly(agent_factory: Callable[..., Any], tmp_path: Any) -> None:
    argv = [sys.executable, "-m", "launcher", "--engine", "vllm", "--host", "127.0.0.1"]
    argv += ["--port", str(processes.free_port()), "--no-nvml", "--log-dir", str(tmp_path)]
    proc = agent_factory(argv, name="vllm-launcher")
    assert proc.wait(30) != 0
    (log,) = tmp_path.glob("vllm-launcher-*/agent.log")
    text = log.read_text()
    assert "the engine could not be preloaded: " in text
    assert "vllm" in text.split("the engine could not be preloaded: ", 1)[1].lower()
