"""The GPU tier: launcher + torch-backed engine + requester agent on a real NVIDIA GPU.

Run by ``scripts/gpu-check.sh`` (or ``pytest -m gpu tests/gpu``) on a
machine with a GPU, torch and nvidia-ml-py; skipped elsewhere
(``tests/conftest.py``).  Every process is real: a launcher whose preloaded
parent imported torch without initialising CUDA and maps GPU UUIDs through
NVML, engine instances forked from it holding real weights on the GPU, a
requester agent reporting memory through NVML, and a second process that
takes GPU memory away.  Memory is read from NVML, as an operator would.
The test process itself never initialises CUDA.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import processes, waiting

pytestmark = pytest.mark.gpu

MODEL_GIB = 4.0
MODEL_MIB = int(MODEL_GIB * 1024)
START_TIMEOUT = 180.0
BASE = "/v2/vllm/instances"


# ----- NVML, read by the test


class Gpu:
    """The first GPU as NVML sees it."""

    def __init__(self) -> None:
        import pynvml  # noqa: PLC0415 - nvidia-ml-py exists only on GPU machines

        pynvml.nvmlInit()
        self._nv = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        uuid = pynvml.nvmlDeviceGetUUID(self.handle)
        self.uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)

    def used_mib(self) -> int:
        return int(self._nv.nvmlDeviceGetMemoryInfo(self.handle).used) // (1 << 20)


@pytest.fixture(scope="module")
def gpu() -> Gpu:
    return Gpu()


# ----- processes


def _start(argv: list[str], log: pathlib.Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


def _records(log: pathlib.Path, msg: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("msg") == msg:
                out.append(record)
    return out


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


class Launcher:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: pathlib.Path, log_dir: pathlib.Path) -> None:
        self.proc = proc
        self.log = log
        self.log_dir = log_dir
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

    def instance_log(self, instance_id: str) -> pathlib.Path:
        (path,) = self.log_dir.glob(f"launcher-*-vllm-{instance_id}.log")
        return path

    def create(self, instance_id: str, uuid: str, *extra: str) -> httpx.Client:
        port = processes.free_port()
        options = f"--model {instance_id} --host 127.0.0.1 --port {port} --enable-sleep-mode"
        options += f" --device cuda --sim-model-gib {MODEL_GIB} " + " ".join(extra)
        body = {"options": options, "gpu_uuids": [uuid], "env_vars": {"VLLM_SERVER_DEV_MODE": "1"}}
        created = self.client.put(f"{BASE}/{instance_id}", json=body)
        assert created.status_code == 201, created.text
        engine = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        waiting.wait_for(
            lambda: engine.get("/health").status_code == 200,
            timeout=START_TIMEOUT,
            what=f"instance {instance_id} to load its weights on the GPU",
            ignore=(httpx.TransportError,),
        )
        return engine

    def delete(self, instance_id: str) -> None:
        assert self.client.delete(f"{BASE}/{instance_id}").status_code == 200


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    workdir = tmp_path_factory.mktemp("gpu-launcher")
    log_dir = workdir / "logs"
    log_dir.mkdir()
    port = processes.free_port()
    argv = [sys.executable, "-m", "launcher", "--engine", "sim", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-dir", str(log_dir), "--stop-grace-seconds", "10"]
    argv += ["--preload-module", "torch", "--preload-module", "launcher.tensor_engine"]
    proc = _start(argv, workdir / "launcher.log")
    agent = Launcher(proc, port, workdir / "launcher.log", log_dir)
    waiting.wait_for(
        lambda: agent.client.get("/health").status_code == 200,
        timeout=START_TIMEOUT,
        what="the launcher to preload torch and answer",
        ignore=(httpx.TransportError,),
    )
    yield agent
    agent.client.close()
    assert _stop(proc) == 0, (workdir / "launcher.log").read_text()[-3000:]


def _text(engine: httpx.Client) -> str:
    response = engine.post("/v1/completions", json={"prompt": "the GPU tier", "max_tokens": 8})
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["text"]
    return text


def _sleeping(engine: httpx.Client) -> bool:
    value: bool = engine.get("/is_sleeping").json()["is_sleeping"]
    return value


def _settled(gpu: Gpu, predicate: Any, what: str) -> int:
    """NVML's reading once ``predicate(used_mib)`` holds (the driver frees asynchronously)."""

    def reading() -> int | None:
        used = gpu.used_mib()
        return used if predicate(used) else None

    result: int = waiting.wait_for(reading, timeout=30, what=what, interval=0.2)
    return result


# ----- the tests


def test_preloaded_parent_has_torch_but_no_cuda_and_maps_uuids_through_nvml(launcher: Launcher, gpu: Gpu) -> None:
    (preloaded,) = _records(launcher.log, "engine preloaded")
    assert preloaded["torch_imported"] is True
    assert preloaded["cuda_initialized"] is False
    (starting,) = _records(launcher.log, "launcher starting")
    assert starting["gpu_source"] == "nvml"
    missing = "GPU-00000000-0000-0000-0000-000000000000"
    unknown = launcher.client.put(f"{BASE}/nope", json={"options": "--model x --device cuda", "gpu_uuids": [missing]})
    assert unknown.status_code == 400
    assert gpu.uuid in unknown.text


def test_a_parent_that_initialised_cuda_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "fma_touch_cuda.py").write_text("import torch\ntorch.ones(1, device='cuda')\n")
    argv = [sys.executable, "-m", "launcher", "--engine", "sim", "--host", "127.0.0.1"]
    argv += ["--port", str(processes.free_port()), "--log-dir", str(tmp_path), "--preload-module", "fma_touch_cuda"]
    pythonpath = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    proc = _start(argv, tmp_path / "launcher.log", env={"PYTHONPATH": pythonpath})
    try:
        assert proc.wait(120) != 0
    finally:
        _stop(proc)
    assert "a preload initialised CUDA in the preloaded parent" in (tmp_path / "launcher.log").read_text()


def test_sleep_frees_gpu_memory_and_wake_restores_the_same_weights(
    launcher: Launcher, gpu: Gpu, tmp_path: pathlib.Path
) -> None:
    spi, probes = processes.free_port(), processes.free_port()
    code = "import sys; from launcher import __main__ as m; sys.exit(m.requester_main())"
    requester_argv = [sys.executable, "-c", code]
    requester_argv += ["--host", "127.0.0.1", "--spi-port", str(spi), "--probes-port", str(probes)]
    requester = _start(requester_argv, tmp_path / "requester.log", env={"NVIDIA_VISIBLE_DEVICES": gpu.uuid})
    baseline = gpu.used_mib()
    engine = launcher.create("solo", gpu.uuid)
    try:
        (devices,) = _records(launcher.instance_log("solo"), "tensor engine devices")
        assert devices["device_uuids"] == [gpu.uuid], "CUDA_VISIBLE_DEVICES did not select the requested GPU"
        awake = _settled(gpu, lambda u: u >= baseline + MODEL_MIB, "the weights to show in NVML")
        with httpx.Client(base_url=f"http://127.0.0.1:{spi}", timeout=30) as agent:
            waiting.wait_for(
                lambda: agent.get("/v1/dual-pods/accelerators").status_code == 200,
                timeout=60,
                what="the requester agent",
                ignore=(httpx.TransportError,),
            )
            assert agent.get("/v1/dual-pods/accelerators").json() == [gpu.uuid]
            reported = agent.get("/v1/dual-pods/accelerator-memory-usage").json()[gpu.uuid]
        assert abs(reported - gpu.used_mib()) <= 64, (reported, gpu.used_mib())
        before = _text(engine)
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        assert _sleeping(engine)
        asleep = _settled(gpu, lambda u: u <= awake - MODEL_MIB + 64, "level-1 sleep to free the weights")
        assert engine.post("/v1/completions", json={"prompt": "x"}).status_code == 503
        # A second sleep is a no-op.
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        assert len(_records(launcher.instance_log("solo"), "tensor engine asleep")) == 1
        assert engine.post("/wake_up").status_code == 200
        assert not _sleeping(engine)
        _settled(gpu, lambda u: u >= asleep + MODEL_MIB - 64, "the wake to bring the weights back")
        (woke,) = _records(launcher.instance_log("solo"), "tensor engine woke")
        assert woke["checksum_verified"] is True
        assert _text(engine) == before
    finally:
        engine.close()
        launcher.delete("solo")
        _stop(requester)


def test_two_instances_alternate_on_one_gpu_with_one_awake(launcher: Launcher, gpu: Gpu) -> None:
    baseline = gpu.used_mib()
    a = launcher.create("alt-a", gpu.uuid)
    b: httpx.Client | None = None
    try:
        a_text = _text(a)
        assert a.post("/sleep", params={"level": 1}).status_code == 200
        b = launcher.create("alt-b", gpu.uuid)
        b_text = _text(b)
        for awake, asleep, text in ((b, a, b_text), (a, b, a_text), (b, a, b_text)):
            if _sleeping(awake):
                assert asleep.post("/sleep", params={"level": 1}).status_code == 200
                assert awake.post("/wake_up").status_code == 200
            used = _settled(gpu, lambda u: u < baseline + 2 * MODEL_MIB, "only one model on the GPU")
            assert used >= baseline + MODEL_MIB
            assert _text(awake) == text
            assert asleep.post("/v1/completions", json={"prompt": "x"}).status_code == 503
    finally:
        a.close()
        if b is not None:
            b.close()
            launcher.delete("alt-b")
        launcher.delete("alt-a")


def test_wake_without_free_gpu_memory_is_refused_and_the_instance_stays_asleep_intact(
    launcher: Launcher, gpu: Gpu, tmp_path: pathlib.Path
) -> None:
    engine = launcher.create("squeezed", gpu.uuid)
    hog: subprocess.Popen[bytes] | None = None
    try:
        before = _text(engine)
        assert engine.post("/sleep", params={"level": 1}).status_code == 200
        code = (
            "import sys, torch\n"
            "free, _ = torch.cuda.mem_get_info()\n"
            "held = torch.empty(free - (512 << 20), dtype=torch.uint8, device='cuda')\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n"
        )
        without_hog = gpu.used_mib()
        hog = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert hog.stdout is not None
        assert hog.stdout.readline().strip() == b"held"
        refused = engine.post("/wake_up")
        assert refused.status_code == 507, refused.text
        assert refused.json()["type"] == "InsufficientDeviceMemory"
        assert "is free" in refused.json()["message"]
        assert _sleeping(engine)
        assert hog.stdin is not None
        hog.stdin.close()
        hog.wait(60)
        _settled(gpu, lambda u: u <= without_hog + 64, "the other process's GPU memory to be released")
        assert engine.post("/wake_up").status_code == 200
        assert _text(engine) == before
    finally:
        if hog is not None and hog.poll() is None:
            hog.kill()
            hog.wait(30)
        engine.close()
        launcher.delete("squeezed")


def test_delete_leaves_no_process_and_no_gpu_memory(launcher: Launcher, gpu: Gpu) -> None:
    baseline = _settled(gpu, lambda _u: True, "a reading")
    engine = launcher.create("short-lived", gpu.uuid)
    engine.close()
    (started,) = _records(launcher.instance_log("short-lived"), "engine simulator starting")
    pid = int(started["pid"])
    assert _alive(pid)
    _settled(gpu, lambda u: u >= baseline + MODEL_MIB, "the instance's weights in NVML")
    launcher.delete("short-lived")
    assert not _alive(pid)
    _settled(gpu, lambda u: u <= baseline + 64, "the deleted instance's GPU memory to be released")
