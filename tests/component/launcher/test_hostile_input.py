"""Regression tests for the node agents under hostile input (issue 15), one per finding, over real HTTP.

Each body is sent as raw bytes: a well-behaved client library cannot even
encode a lone surrogate or ``NaN``, which is exactly why these inputs were
never tried.  Every test asserts the 4xx naming the problem *and* that no
state was half made (nothing spawned, nothing listed, the agent still
answering).
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.component

BASE = "/v2/vllm/instances"
JSON = {"Content-Type": "application/json"}


def _raw_put(agent: Any, instance_id: str, body: str) -> Any:
    return agent.client.put(f"{BASE}/{instance_id}", content=body.encode(), headers=JSON)


def test_lone_surrogate_in_annotations_is_refused_and_spawns_nothing(launcher: Any, harness: Any) -> None:
    options = harness.sim_options(processes.free_port())
    body = '{"options": "%s", "annotations": {"isc-name": "\\udc80"}}' % options  # noqa: UP031 - raw JSON text
    answer = _raw_put(launcher, "inst-surrogate", body)
    assert answer.status_code == 422, answer.text
    assert "surrogate" in answer.text
    listing = launcher.client.get(BASE)
    assert listing.status_code == 200, listing.text
    assert listing.json()["total_instances"] == 0
    assert launcher.client.get(f"{BASE}/inst-surrogate").status_code == 404
    assert not list((launcher.workdir / "logs").glob("*.log")), "an instance was spawned for a refused create"


def _sim_body(harness: Any, **extra: str) -> str:
    fields = ", ".join(f'"{k}": {v}' for k, v in extra.items())
    options = harness.sim_options(processes.free_port())
    return '{"options": "%s"%s}' % (options, ", " + fields if fields else "")  # noqa: UP031 - raw JSON text


def _nothing_spawned(agent: Any) -> None:
    listing = agent.client.get(BASE)
    assert listing.status_code == 200, listing.text
    assert listing.json()["total_instances"] == 0
    assert not list((agent.workdir / "logs").glob("*.log")), "an instance was spawned for a refused create"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        pytest.param("annotations", '{"x": NaN}', "NaN", id="nan"),
        pytest.param("annotations", '{"x": Infinity}', "Infinity", id="infinity"),
        pytest.param("annotations", '{"x": -Infinity}', "Infinity", id="minus-infinity"),
        pytest.param("annotations", '{"x": 1e400}', "too large", id="overflowing-number"),
        pytest.param("env_vars", '{"A": "\\ud800"}', "surrogate", id="surrogate-in-env-vars"),
        pytest.param("gpu_uuids", '["GPU-aaaa", "\\udfff"]', "surrogate", id="surrogate-in-gpu-uuids"),
        pytest.param("annotations", "[" * 200_000 + "]" * 200_000, "nested deeper", id="deep-nesting"),
    ],
)
def test_malformed_json_is_a_422_naming_the_problem(
    launcher: Any, harness: Any, field: str, value: str, named: str
) -> None:
    answer = _raw_put(launcher, "inst-bad", _sim_body(harness, **{field: value}))
    assert answer.status_code == 422, answer.text
    assert named in answer.text
    _nothing_spawned(launcher)


def test_surrogate_in_options_is_refused_and_the_next_create_still_works(launcher: Any, harness: Any) -> None:
    body = '{"options": "--model \\udc80"}'
    answer = _raw_put(launcher, "inst-bad", body)
    assert answer.status_code == 422, answer.text
    assert "surrogate" in answer.text
    # No pending spawn was left behind: a good create right after is answered.
    good = launcher.client.put(f"{BASE}/inst-good", json={"options": harness.sim_options(processes.free_port())})
    assert good.status_code == 201, good.text


def test_huge_body_is_a_413(launcher: Any) -> None:
    answer = _raw_put(launcher, "inst-big", '{"options": "' + "x" * (2 * 1024 * 1024) + '"}')
    assert answer.status_code == 413, answer.text
    assert "limit" in answer.json()["detail"]


def test_surrogate_in_a_path_value_is_a_4xx_that_can_be_encoded(launcher: Any) -> None:
    answer = launcher.client.get(f"{BASE}/%ED%B2%80")  # raw UTF-8 bytes of a lone surrogate
    assert answer.status_code == 404
    answer = launcher.client.get(BASE, params={"detail": "\udc80".encode("utf-8", "surrogatepass")})
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PYTHONPATH", "PYTHONSTARTUP"])
def test_code_loading_environment_is_refused(launcher: Any, harness: Any, name: str) -> None:
    config = {"options": harness.sim_options(processes.free_port()), "env_vars": {name: "/tmp/evil"}}
    answer = launcher.client.put(f"{BASE}/inst-env", json=config)
    assert answer.status_code == 422, answer.text
    assert name in answer.json()["detail"]
    _nothing_spawned(launcher)


def test_code_loading_environment_allowed_by_setting(launcher_factory: Any, harness: Any) -> None:
    agent = launcher_factory("--allow-env", "PYTHONPATH")
    config = {"options": harness.sim_options(processes.free_port()), "env_vars": {"PYTHONPATH": "/opt/extra"}}
    assert agent.client.put(f"{BASE}/inst-env", json=config).status_code == 201
    config["env_vars"] = {"LD_PRELOAD": "/tmp/evil.so"}
    assert agent.client.put(f"{BASE}/inst-env2", json=config).status_code == 422


def test_duplicate_gpu_is_refused(launcher: Any, harness: Any) -> None:
    config = {"options": harness.sim_options(processes.free_port()), "gpu_uuids": ["GPU-aaaa", "GPU-aaaa"]}
    answer = launcher.client.put(f"{BASE}/inst-dup", json=config)
    assert answer.status_code == 422, answer.text
    assert "GPU-aaaa" in answer.text
    assert "twice" in answer.text
    _nothing_spawned(launcher)


def test_too_many_option_words_are_refused(launcher: Any) -> None:
    answer = launcher.client.put(f"{BASE}/inst-words", json={"options": " ".join(["-x"] * 600)})
    assert answer.status_code == 422, answer.text
    assert "at most 512" in answer.text
    _nothing_spawned(launcher)


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        pytest.param(("--max-instances", "1"), None, id="flag"),
        # How the controllers set it, from the LauncherConfig's maxInstances (controllers/launcher_template.py).
        pytest.param((), {"FMA_LAUNCHER_MAX_INSTANCES": "1"}, id="environment"),
    ],
)
def test_max_instances_is_enforced_by_the_launcher(
    launcher_factory: Any, harness: Any, flags: tuple[str, ...], env: dict[str, str] | None
) -> None:
    agent = launcher_factory(*flags, env=env)
    first = agent.client.put(f"{BASE}/one", json={"options": harness.sim_options(processes.free_port())})
    assert first.status_code == 201, first.text
    second = agent.client.put(f"{BASE}/two", json={"options": harness.sim_options(processes.free_port())})
    assert second.status_code == 429, second.text
    assert "maximum is 1" in second.json()["detail"]
    assert agent.client.get(BASE).json()["total_instances"] == 1
    assert agent.client.delete(f"{BASE}/one").status_code == 200
    third = agent.client.put(f"{BASE}/two", json={"options": harness.sim_options(processes.free_port())})
    assert third.status_code == 201, third.text


def test_open_launcher_says_so_loudly(launcher: Any) -> None:
    assert "LAUNCHER API IS OPEN" in (launcher.workdir / "agent.log").read_text()


def test_probes_are_open_and_create_is_not_with_auth(launcher_factory: Any, harness: Any) -> None:
    agent = launcher_factory(env={"FMA_LAUNCHER_TOKEN": "hunter2-token"})
    anonymous = httpx.Client(base_url=agent.base_url, timeout=10)
    with anonymous:
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/readyz").json() == {"status": "ready"}
        config = {"options": harness.sim_options(processes.free_port())}
        assert anonymous.put(f"{BASE}/anon", json=config).status_code == 401
    assert "LAUNCHER API IS OPEN" not in (agent.workdir / "agent.log").read_text()
    _nothing_spawned(agent)


def _environ(pid: int) -> bytes:
    return pathlib.Path(f"/proc/{pid}/environ").read_bytes()


def test_the_token_never_reaches_an_instance(launcher_factory: Any, harness: Any) -> None:
    token = "tok-" + "7" * 40
    agent = launcher_factory(env={"FMA_LAUNCHER_TOKEN": token})
    config = {"options": harness.sim_options(processes.free_port()), "env_vars": {"MARK": "instance"}}
    assert agent.client.put(f"{BASE}/inst-tok", json=config).status_code == 201
    pid = waiting.wait_for(
        lambda: next(iter(harness.log_pids((agent.workdir / "logs").glob("*.log").__next__().read_bytes())), None),
        timeout=20,
        what="the instance to log its PID",
        ignore=(StopIteration, FileNotFoundError),
    )
    zygote = int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for process in (pid, zygote, agent.proc.pid):
        environ = _environ(process)
        assert token.encode() not in environ, process
        assert b"FMA_LAUNCHER_TOKEN=" not in environ, process
    # What an instance can read of its own memory does not hold it either (it was read after the fork).
    assert token.encode() not in _readable_memory(pid)


def _readable_memory(pid: int) -> bytes:
    """Every readable, writable private mapping of ``pid`` (its heap and stacks), concatenated."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("rw"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            with contextlib.suppress(OSError, ValueError, OverflowError):
                mem.seek(start)
                chunks.append(mem.read(end - start))
    return b"".join(chunks)


# --- the requester agent -------------------------------------------------------------------------

_REQUESTER = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
_SIM = "import sys; from launcher import __main__ as m; sys.exit(m.engine_sim_main())"


def _requester(agent_factory: Any, tmp_path: pathlib.Path, devices: str) -> httpx.Client:
    probes, spi = processes.free_port(), processes.free_port()
    argv = [sys.executable, "-c", _REQUESTER, "--host", "127.0.0.1", "--probes-port", str(probes)]
    argv += ["--spi-port", str(spi), "--sim-usage-dir", str(tmp_path / "usage")]
    agent_factory(argv, env={"NVIDIA_VISIBLE_DEVICES": devices}, name="requester")
    with httpx.Client(base_url=f"http://127.0.0.1:{probes}", timeout=10) as probe_client:
        waiting.wait_for(
            lambda: probe_client.get("/ready").status_code == 503,
            timeout=20,
            what="the requester agent to answer",
            ignore=(httpx.TransportError,),
        )
    return httpx.Client(base_url=f"http://127.0.0.1:{spi}", timeout=10)


def test_requester_set_log_body_is_capped(agent_factory: Any, tmp_path: pathlib.Path) -> None:
    spi = _requester(agent_factory, tmp_path, "GPU-1")
    with spi:
        big = spi.post("/v1/set-log", params={"startPos": "0"}, content=b"x" * (2 * 1024 * 1024))
        assert big.status_code == 413, big.text
        assert "limit" in big.text
        small = spi.post("/v1/set-log", params={"startPos": "0"}, content=b"line one\n")
        assert small.status_code == 200
        assert "accepted 9 new bytes; 9 in total" in small.text


def test_requester_refuses_to_report_a_gpu_twice(agent_factory: Any, tmp_path: pathlib.Path) -> None:
    spi = _requester(agent_factory, tmp_path, "GPU-1,GPU-1")
    with spi:
        answer = spi.get("/v1/dual-pods/accelerators")
        assert answer.status_code == 500
        assert "'GPU-1' was discovered twice" in answer.text


def test_requester_answers_malformed_json_with_422(agent_factory: Any, tmp_path: pathlib.Path) -> None:
    spi = _requester(agent_factory, tmp_path, "GPU-1")
    with spi:
        answer = spi.post("/v1/become-ready", content=b'{"x": NaN}', headers=JSON)
        assert answer.status_code == 422, answer.text
        assert "NaN" in answer.text


# --- the engine simulator ------------------------------------------------------------------------


@pytest.fixture
def sim(agent_factory: Any, harness: Any) -> Any:
    port = processes.free_port()
    argv = [sys.executable, "-c", _SIM, "serve", "--sim-startup-seconds", "0", "--sim-model-gib", "0"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    agent_factory(argv, env={"VLLM_SERVER_DEV_MODE": "1"}, name="sim")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        harness.wait_http(client, "/health", "the simulator to become healthy")
        yield client


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param('{"prompt": "hi", "max_tokens": Infinity}', "Infinity", id="infinite-max-tokens"),
        pytest.param('{"prompt": "hi", "temperature": NaN}', "NaN", id="nan-temperature"),
        pytest.param('{"prompt": "\\udc80"}', "surrogate", id="surrogate-in-prompt"),
        pytest.param('{"prompt": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested deeper", id="deep-nesting"),
    ],
)
def test_engine_simulator_answers_malformed_json_with_422(sim: Any, body: str, named: str) -> None:
    answer = sim.post("/v1/completions", content=body.encode(), headers=JSON)
    assert answer.status_code == 422, answer.text
    assert named in answer.text
    assert sim.post("/v1/completions", json={"prompt": "hi", "max_tokens": 2}).status_code == 200


def test_engine_simulator_caps_bodies(sim: Any) -> None:
    answer = sim.post("/v1/completions", content=b'{"prompt": "' + b"x" * (5 * 1024 * 1024) + b'"}', headers=JSON)
    assert answer.status_code == 413, answer.text
