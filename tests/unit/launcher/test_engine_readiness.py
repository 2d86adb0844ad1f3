"""The launcher learns when an engine is ready and publishes it once (``engine_readiness``).

The health check runs against ``httpx.MockTransport`` (the HTTP seam); the
process table uses the same fake spawner idea as ``test_process_table``.
"""

from __future__ import annotations

import asyncio
import pathlib
import subprocess

import httpx
import pytest

from crds import launcher_inventory
from launcher import engine_readiness, event_log, gpu_table, inventory, launcher_metrics, process_table


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["--model", "m"], ("127.0.0.1", 8000), id="defaults"),
        pytest.param(["--port", "8005"], ("127.0.0.1", 8005), id="port"),
        pytest.param(["--port=8006", "--host", "127.0.5.9"], ("127.0.5.9", 8006), id="port-equals-and-host"),
        pytest.param(["--host=0.0.0.0", "--port", "9"], ("127.0.0.1", 9), id="wildcard-host-is-loopback"),
        pytest.param(["--port", "http"], None, id="unreadable-port"),
        pytest.param(["--port", "70000"], None, id="port-out-of-range"),
    ],
)
def test_target(argv: list[str], expected: tuple[str, int] | None) -> None:
    assert engine_readiness.target(argv) == expected


def _client(answers: list[int], seen: list[str], asked: asyncio.Event | None = None) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if asked is not None:
            asked.set()
        return httpx.Response(answers.pop(0) if len(answers) > 1 else answers[0])

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_wait_returns_once_the_engine_answers() -> None:
    seen: list[str] = []

    async def scenario() -> bool:
        async with _client([503, 503, 200], seen) as client:
            return await engine_readiness.HealthCheck(client).wait("127.0.0.7", 8005, asyncio.Event())

    assert asyncio.run(scenario()) is True
    assert seen == ["http://127.0.0.7:8005/health"] * 3


def test_wait_ends_when_the_instance_is_gone() -> None:
    async def scenario() -> bool:
        gone = asyncio.Event()
        asked = asyncio.Event()
        async with _client([503], [], asked) as client:
            waiting = asyncio.create_task(engine_readiness.HealthCheck(client).wait("127.0.0.7", 8005, gone))
            await asyncio.wait_for(asked.wait(), 1.0)  # the check is running
            gone.set()
            return await asyncio.wait_for(waiting, 1.0)

    assert asyncio.run(scenario()) is False


# --- through the process table -----------------------------------------------------------------------


class _Spawner:
    def __init__(self) -> None:
        self.pids: list[int] = []

    async def spawn(self, argv: list[str], env: dict[str, str], log_path: str) -> int:
        proc = subprocess.Popen(["true"], start_new_session=True)  # a PID that existed and is gone
        proc.wait()
        pathlib.Path(log_path).write_text("log\n")
        self.pids.append(proc.pid)
        return proc.pid


class _Engine:
    name = "fake"

    def preload(self) -> None:
        pass

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        return {}

    def run(self, argv: list[str]) -> int:
        return 0


class _Recorder:
    def __init__(self) -> None:
        self.snapshots: list[inventory.Snapshot] = []
        self.changed = asyncio.Event()

    def inventory_changed(self, snapshot: inventory.Snapshot) -> None:
        self.snapshots.append(snapshot)
        self.changed.set()


def _table(
    tmp_path: pathlib.Path, client: httpx.AsyncClient, recorder: _Recorder, spawner: _Spawner
) -> process_table.ProcessTable:
    return process_table.ProcessTable(
        spawn=spawner,  # type: ignore[arg-type]  # the fake has the one method the table uses
        engine=_Engine(),
        gpus=gpu_table.GpuTable(mapping={}, source="test"),
        events=event_log.EventLog(10),
        observer=recorder,
        metrics=launcher_metrics.LauncherMetrics(),
        log_dir=tmp_path,
        stop_grace_seconds=0.1,
        base_env={},
        health=engine_readiness.HealthCheck(client),
    )


def test_readiness_is_published_once_without_a_revision(tmp_path: pathlib.Path) -> None:
    from launcher import schemas  # noqa: PLC0415  # only this test builds a config

    async def scenario() -> tuple[list[inventory.Snapshot], bool | None]:
        recorder = _Recorder()
        async with _client([503, 200], []) as client:
            spawner = _Spawner()
            table = _table(tmp_path, client, recorder, spawner)
            await table.create("I1i", schemas.VllmConfig(options="--port 8005"))
            created_revision = table.events.revision
            for _ in range(50):
                if any(s.instances and s.instances[0].ready for s in recorder.snapshots):
                    break
                recorder.changed.clear()
                await asyncio.wait_for(recorder.changed.wait(), 2.0)
            assert table.events.revision == created_revision, "readiness is not a watch event"
            ready = table.get("I1i").ready
            table.on_exit(spawner.pids[0], 0)  # the fake engine's exit, so closing does not wait for it
            await table.close()
            return recorder.snapshots, ready

    snapshots, ready = asyncio.run(scenario())
    assert ready is True
    published = [
        launcher_inventory.LauncherInventory.model_validate_json(inventory.inventory_json(s)) for s in snapshots
    ]
    flags = [p.instances[0].ready for p in published if p.instances]
    assert flags[:2] == [None, True], "created first (not ready), then ready once"


def test_deleting_an_instance_that_never_answered_stops_its_check(tmp_path: pathlib.Path) -> None:
    from launcher import schemas  # noqa: PLC0415

    async def scenario() -> int:
        recorder = _Recorder()
        asked = asyncio.Event()
        async with _client([503], [], asked) as client:
            spawner = _Spawner()
            table = _table(tmp_path, client, recorder, spawner)
            await table.create("I1i", schemas.VllmConfig(options="--port 8005"))
            await asyncio.wait_for(asked.wait(), 1.0)  # its readiness check is running
            asyncio.get_running_loop().call_later(0.02, table.on_exit, spawner.pids[0], 0)  # exits on SIGTERM
            await table.delete("I1i")
            return len([t for t in asyncio.all_tasks() if t.get_name().startswith("ready-")])

    assert asyncio.run(scenario()) == 0
