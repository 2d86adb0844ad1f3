"""The launcher with ``--engine vllm`` running real vLLM (CPU build) on a tiny generated Llama.

One launcher for the module (its preloaded parent imports vLLM once, which
takes a while on two cores), run by the vLLM virtualenv's interpreter
(``tests/fixtures/vllm_env.py``).  The tests drive it over HTTP exactly as
the dual-pods controller does: PUT an instance, wait for the engine's
``/health``, ask for a completion, sleep and wake through the dev-mode
endpoints, DELETE.  Processes are checked by PID in ``/proc``: every process
below the preloaded parent belongs to an instance, and after a DELETE none
of the deleted instance's may be left.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = [pytest.mark.component, pytest.mark.vllm]

BASE = "/v2/vllm/instances"
START_TIMEOUT = 420.0  # a cold vLLM start on two busy cores, with margin


def _fixture_module(name: str) -> types.ModuleType:
    path = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fma_fixtures_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vllm_env = _fixture_module("vllm_env")
tiny_model = _fixture_module("tiny_model")


# ----- processes, read from /proc


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(p.name) for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _group(pgid: int) -> set[int]:
    return {pid for pid in _all_pids() if (stat := _stat(pid)) is not None and stat[2] == pgid}


# ----- the launcher


class VllmLauncher:
    """A running ``fma-launcher --engine vllm`` and helpers around it."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, workdir: pathlib.Path, model: pathlib.Path) -> None:
        self.proc = proc
        self.workdir = workdir
        self.model = model
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def zygote(self) -> int:
        """The preloaded parent: the launcher's only child process."""
        kids = [pid for pid in _all_pids() if (stat := _stat(pid)) is not None and stat[1] == self.proc.pid]
        assert len(kids) == 1, f"expected one preloaded parent below the launcher, found {kids}"
        return kids[0]

    def instance_pid(self) -> int:
        """The main process of the one running instance: the preloaded parent's child that leads its group."""
        leaders = [pid for pid in _descendants(self.zygote()) if (stat := _stat(pid)) is not None and stat[2] == pid]
        assert len(leaders) == 1, f"expected one instance process-group leader, found {leaders}"
        return leaders[0]

    def options(self, port: int, *extra: str) -> str:
        base = f"--model {self.model} --host 127.0.0.1 --port {port} --max-model-len 256 --enforce-eager"
        base += " --enable-sleep-mode"
        return " ".join([base, *extra])

    def put(self, instance_id: str, options: str) -> dict[str, Any]:
        response = self.client.put(f"{BASE}/{instance_id}", json={"options": options, "gpu_uuids": ["GPU-0"]})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def log(self, instance_id: str) -> str:
        return self.client.get(f"{BASE}/{instance_id}/log").content.decode(errors="replace")

    def stopped(self, instance_id: str) -> dict[str, Any] | None:
        state: dict[str, Any] = self.client.get(f"{BASE}/{instance_id}").json()
        return state if state["status"] == "stopped" else None

    def launcher_log(self) -> str:
        return (self.workdir / "launcher.log").read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def vllm_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmLauncher]:
    interpreter = vllm_env.require()
    model = tiny_model.ensure(interpreter)
    workdir = tmp_path_factory.mktemp("vllm-launcher")
    port = processes.free_port()
    argv = [str(interpreter), "-m", "launcher", "--engine", "vllm", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-dir", str(workdir), "--mock-gpus", "--mock-gpu-count", "1", "--no-nvml"]
    argv += ["--stop-grace-seconds", "15"]
    # No usage reports, no hub, and vLLM's own host address on loopback (it would pick the machine's).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    env["VLLM_HOST_IP"] = "127.0.0.1"
    with (workdir / "launcher.log").open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    launcher = VllmLauncher(proc, port, workdir, model)
    try:

        def healthy() -> bool:
            assert proc.poll() is None, f"the launcher exited:\n{launcher.launcher_log()}"
            return launcher.client.get("/health").status_code == 200

        waiting.wait_for(
            healthy, timeout=240, what="the vLLM launcher to preload and answer", ignore=(httpx.HTTPError,)
        )
        yield launcher
    finally:
        launcher.client.close()
        below = _descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        waiting.wait_for(
            lambda: not any(_alive(p) for p in below), timeout=30, what="nothing of the launcher to survive it"
        )
        assert proc.returncode == 0, launcher.launcher_log()


# ----- tests


@pytest.mark.timeout(900)
def test_instance_serves_sleeps_wakes_and_delete_reaps_every_process(vllm_launcher: VllmLauncher) -> None:
    port = processes.free_port()
    state = vllm_launcher.put("tiny-1", vllm_launcher.options(port))
    assert state["status"] == "running"
    engine = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:

        def healthy() -> bool:
            assert vllm_launcher.stopped("tiny-1") is None, vllm_launcher.log("tiny-1")[-6000:]
            return engine.get("/health").status_code == 200

        waiting.wait_for(healthy, timeout=START_TIMEOUT, what="vLLM to answer /health", ignore=(httpx.HTTPError,))
        log = vllm_launcher.log("tiny-1")
        assert "dropping '--enable-sleep-mode'" in log  # the CPU platform refuses the flag; the launcher drops it

        completion = engine.post(
            "/v1/completions",
            json={"model": str(vllm_launcher.model), "prompt": "The launcher forks", "max_tokens": 8, "temperature": 0},
        )
        assert completion.status_code == 200, completion.text
        body = completion.json()
        assert body["choices"][0]["text"], body
        assert body["usage"]["completion_tokens"] > 0

        assert engine.get("/is_sleeping").json() == {"is_sleeping": False}
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        assert engine.get("/is_sleeping").json() == {"is_sleeping": True}
        assert engine.post("/wake_up").status_code == 200
        assert engine.get("/is_sleeping").json() == {"is_sleeping": False}
        again = engine.post(
            "/v1/completions",
            json={"model": str(vllm_launcher.model), "prompt": "The launcher forks", "max_tokens": 8, "temperature": 0},
        )
        assert again.status_code == 200, again.text
        assert again.json()["choices"][0]["text"] == body["choices"][0]["text"]  # greedy, same weights after wake

        main = vllm_launcher.instance_pid()
        pids = _descendants(vllm_launcher.zygote()) | _group(main)
        assert main in pids
        assert len([p for p in pids if _alive(p)]) >= 2, f"expected vLLM's engine-core process too, saw {pids}"
    finally:
        engine.close()

    deleted = vllm_launcher.client.delete(f"{BASE}/tiny-1")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "stopped"
    survivors = [p for p in pids if _alive(p)]
    assert survivors == [], f"processes of the deleted instance survived: {survivors}"
    assert _descendants(vllm_launcher.zygote()) == set()
    assert vllm_launcher.client.get(f"{BASE}/tiny-1").status_code == 404


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("instance_id", "extra", "model", "reason"),
    [
        pytest.param(
            "bad-flag", ("--no-such-flag",), None, "unrecognized arguments: --no-such-flag", id="unknown-flag"
        ),
        pytest.param("bad-model", (), "/nonexistent/tiny-model", "does not exist", id="missing-model-path"),
    ],
)
def test_options_vllm_rejects_end_stopped_with_the_reason_in_the_log(
    vllm_launcher: VllmLauncher, instance_id: str, extra: tuple[str, ...], model: str | None, reason: str
) -> None:
    port = processes.free_port()
    options = vllm_launcher.options(port, *extra)
    if model is not None:
        options = options.replace(str(vllm_launcher.model), model)
    vllm_launcher.put(instance_id, options)
    state = waiting.wait_for(
        lambda: vllm_launcher.stopped(instance_id), timeout=120, what=f"{instance_id} to stop on its own"
    )
    assert state["exit_code"] != 0
    assert reason in vllm_launcher.log(instance_id)
    assert vllm_launcher.client.get("/health").status_code == 200  # the launcher itself is unaffected
    assert vllm_launcher.client.delete(f"{BASE}/{instance_id}").status_code == 200
    assert _descendants(vllm_launcher.zygote()) == set()
