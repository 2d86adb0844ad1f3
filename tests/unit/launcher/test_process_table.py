"""The process table's bookkeeping with a fake spawner: revisions, environment, failures and early exits."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess

import pytest

from launcher import errors, event_log, gpu_table, inventory, launcher_metrics, process_table, schemas


def _dead_pid() -> int:
    """A PID (and process group) that existed and is gone: safe to 'signal' in these tests."""
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    return proc.pid


class _FakeSpawner:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str], str]] = []
        self.table: process_table.ProcessTable | None = None
        self.exit_before_reply: int | None = None
        self.fail = False

    async def spawn(self, argv: list[str], env: dict[str, str], log_path: str) -> int:
        self.calls.append((argv, env, log_path))
        await asyncio.sleep(0)
        if self.fail:
            raise errors.SpawnFailed("fork failed: out of memory")
        pid = _dead_pid()
        pathlib.Path(log_path).write_text("log\n")
        if self.exit_before_reply is not None and self.table is not None:
            self.table.on_exit(pid, self.exit_before_reply)  # the zygote's exit line arrives first
        return pid


class _Engine:
    name = "fake"

    def preload(self) -> None:
        pass

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        return {"ENGINE_GPUS": ",".join(gpu_uuids)}

    def run(self, argv: list[str]) -> int:
        return 0


class _Recorder:
    def __init__(self) -> None:
        self.snapshots: list[inventory.Snapshot] = []

    def inventory_changed(self, snapshot: inventory.Snapshot) -> None:
        self.snapshots.append(snapshot)


@pytest.fixture
def parts(tmp_path: pathlib.Path) -> tuple[process_table.ProcessTable, _FakeSpawner, _Recorder]:
    spawner = _FakeSpawner()
    recorder = _Recorder()
    table = process_table.ProcessTable(
        spawn=spawner,  # type: ignore[arg-type]  # the fake has the one method the table uses
        engine=_Engine(),
        gpus=gpu_table.GpuTable(mapping={"GPU-a": 2, "GPU-b": 0}, source="test"),
        events=event_log.EventLog(10),
        observer=recorder,
        metrics=launcher_metrics.LauncherMetrics(),
        log_dir=tmp_path,
        stop_grace_seconds=0.1,
        base_env={"BASE": "1", "CUDA_VISIBLE_DEVICES": "9"},
    )
    spawner.table = table
    return table, spawner, recorder


def test_create_builds_argv_and_environment(parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder]) -> None:
    table, spawner, recorder = parts
    config = schemas.VllmConfig(options=" --model m  --port 8005", gpu_uuids=["GPU-b", "GPU-a"], env_vars={"X": "y"})
    state = asyncio.run(table.create("i1", config))
    argv, env, log_path = spawner.calls[0]
    assert argv == ["--model", "m", "--port", "8005"]
    assert env["BASE"] == "1"
    assert env["X"] == "y"
    assert env["ENGINE_GPUS"] == "GPU-b,GPU-a"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert log_path.endswith("-vllm-i1.log")
    assert state.env_vars == {"X": "y", "CUDA_VISIBLE_DEVICES": "0,2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert (state.status, state.revision) == ("running", 1)
    assert [s.revision for s in recorder.snapshots] == [1]
    assert inventory.pod_annotations(recorder.snapshots[0])["dual-pods.llm-d.ai/instances"].count('"id":"i1"') == 1


def test_a_launcher_bound_to_one_address_passes_it_to_instances(tmp_path: pathlib.Path) -> None:
    spawner = _FakeSpawner()
    table = process_table.ProcessTable(
        spawn=spawner,  # type: ignore[arg-type]  # the fake has the one method the table uses
        engine=_Engine(),
        gpus=gpu_table.GpuTable(mapping={}, source="test"),
        events=event_log.EventLog(10),
        observer=_Recorder(),
        metrics=launcher_metrics.LauncherMetrics(),
        log_dir=tmp_path,
        stop_grace_seconds=0.1,
        base_env={},
        launcher_host="127.0.50.1",
    )
    state = asyncio.run(table.create("i1", schemas.VllmConfig(options="--model m --port 8005")))
    assert spawner.calls[0][0] == ["--model", "m", "--port", "8005", "--host", "127.0.50.1"]
    assert state.options == "--model m --port 8005"  # the caller's options are echoed unchanged
    asyncio.run(table.create("i2", schemas.VllmConfig(options="--host 127.0.0.7 --port 8005")))
    assert spawner.calls[1][0] == ["--host", "127.0.0.7", "--port", "8005"]


def test_failed_spawn_leaves_nothing(parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder]) -> None:
    table, spawner, recorder = parts
    spawner.fail = True
    with pytest.raises(errors.SpawnFailed):
        asyncio.run(table.create("i1", schemas.VllmConfig(options="")))
    assert table.states() == []
    assert table.events.revision == 0
    assert recorder.snapshots == []
    spawner.fail = False
    assert asyncio.run(table.create("i1", schemas.VllmConfig(options=""))).revision == 1


def test_unknown_gpu_spawns_nothing(parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder]) -> None:
    table, spawner, _ = parts
    with pytest.raises(errors.UnknownGpu):
        asyncio.run(table.create("i1", schemas.VllmConfig(options="", gpu_uuids=["GPU-zz"])))
    assert spawner.calls == []


def test_duplicate_while_the_first_create_is_pending(
    parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder],
) -> None:
    table, _, _ = parts

    async def both() -> list[object]:
        config = schemas.VllmConfig(options="")
        return list(
            await asyncio.gather(table.create("same", config), table.create("same", config), return_exceptions=True)
        )

    first, second = asyncio.run(both())
    assert isinstance(first, schemas.InstanceState)
    assert isinstance(second, errors.InstanceExists)
    assert [s.instance_id for s in table.states()] == ["same"]


def test_exit_reported_before_registration_is_not_lost(
    parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder],
) -> None:
    table, spawner, _ = parts
    spawner.exit_before_reply = 3
    asyncio.run(table.create("early", schemas.VllmConfig(options="")))
    state = table.get("early")
    assert (state.status, state.exit_code, state.revision) == ("stopped", 3, 2)
    assert [e.type for e in table.events.replay_since(0)] == ["CREATED", "STOPPED"]


def test_delete_of_an_exited_instance(
    parts: tuple[process_table.ProcessTable, _FakeSpawner, _Recorder], tmp_path: pathlib.Path
) -> None:
    table, spawner, recorder = parts
    spawner.exit_before_reply = -9

    async def scenario() -> tuple[schemas.InstanceState, schemas.InstanceState]:
        await table.create("gone", schemas.VllmConfig(options=""))
        first, second = await asyncio.gather(table.delete("gone"), table.delete("gone"))
        return first, second

    first, second = asyncio.run(scenario())
    assert first == second  # concurrent deletes share one deletion
    assert (first.status, first.revision, first.exit_code) == ("stopped", 3, -9)
    assert list(tmp_path.glob("*.log")) == []
    with pytest.raises(errors.InstanceNotFound):
        table.get("gone")
    assert [e.type for e in table.events.replay_since(0)] == ["CREATED", "STOPPED", "DELETED"]
    assert recorder.snapshots[-1].instances == []
