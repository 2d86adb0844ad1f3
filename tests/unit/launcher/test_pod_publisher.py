"""The Pod publisher: when it patches (pure schedule, fake clock) and how its task drives a fake apiserver."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
from collections.abc import Callable

import certifi
import pytest

from launcher import errors, inventory, pod_publisher, schemas
from launcher import settings as settings_mod

A = {"k": "a"}
B = {"k": "b"}


def test_nothing_wanted_is_idle() -> None:
    assert pod_publisher.Schedule().decide(0.0) == pod_publisher.Idle()


def test_first_change_is_patched_at_once() -> None:
    schedule = pod_publisher.Schedule(min_interval=0.2)
    schedule.want(A)
    assert schedule.decide(100.0) == pod_publisher.Patch(A)


def test_changes_within_the_interval_are_coalesced_into_the_latest() -> None:
    schedule = pod_publisher.Schedule(min_interval=0.2)
    schedule.want(A)
    schedule.succeeded(A, started_at=10.0)
    schedule.want(B)
    schedule.want({"k": "c"})
    assert schedule.decide(10.05) == pod_publisher.WaitUntil(10.2)
    assert schedule.decide(10.19) == pod_publisher.WaitUntil(10.2)
    assert schedule.decide(10.2) == pod_publisher.Patch({"k": "c"})


def test_unchanged_content_is_not_patched_again() -> None:
    schedule = pod_publisher.Schedule(min_interval=0.2)
    schedule.want(A)
    schedule.succeeded(A, started_at=0.0)
    schedule.want(dict(A))
    assert schedule.settled
    assert schedule.decide(5.0) == pod_publisher.Idle()
    schedule.want(B)
    schedule.want(A)  # changed and changed back before the next patch: nothing to write
    assert schedule.decide(0.1) == pod_publisher.Idle()


def test_failures_back_off_exponentially_up_to_the_cap_and_reset_on_success() -> None:
    schedule = pod_publisher.Schedule(min_interval=0.2, max_backoff=1.0)
    schedule.want(A)
    now = 0.0
    waits = []
    for _ in range(5):
        assert schedule.decide(now) == pod_publisher.Patch(A)
        schedule.failed(started_at=now)
        action = schedule.decide(now)
        assert isinstance(action, pod_publisher.WaitUntil)
        waits.append(round(action.at - now, 6))
        now = action.at
    assert waits == [0.4, 0.8, 1.0, 1.0, 1.0]
    assert schedule.failures == 5
    for _ in range(2000):  # hours of failures do not overflow the back-off
        schedule.failed(started_at=now)
    assert schedule.decide(now) == pod_publisher.WaitUntil(now + 1.0)
    schedule.succeeded(A, started_at=now)
    assert schedule.failures == 0
    schedule.want(B)
    assert schedule.decide(now + 0.1) == pod_publisher.WaitUntil(now + 0.2)


class _FakeApiServer:
    """Records patches; fails the first ``fail_first`` of them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.patches: list[tuple[str, dict[str, str]]] = []
        self.fail_first = fail_first
        self.attempts = 0
        self.changed = asyncio.Event()

    async def patch_annotations(self, path: str, annotations: dict[str, str]) -> None:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            raise errors.ApiServerError("apiserver unavailable", status=503)
        self.patches.append((path, annotations))
        self.changed.set()


def _snapshot(revision: int, *ids: str) -> inventory.Snapshot:
    states = [schemas.InstanceState(status="running", instance_id=i, revision=revision, options="") for i in ids]
    return inventory.Snapshot(revision=revision, instances=states)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)  # noqa: sleep-ok - the poll step of a wait on a condition

    await asyncio.wait_for(poll(), timeout)


def test_a_burst_of_events_becomes_one_patch_of_the_latest_state() -> None:
    async def scenario() -> _FakeApiServer:
        api = _FakeApiServer()
        publisher = pod_publisher.PodPublisher(api, "/pods/p", pod_publisher.Schedule(min_interval=0.05))
        publisher.inventory_changed(_snapshot(0))
        publisher.start()
        await _until(lambda: len(api.patches) == 1)
        for revision in range(1, 6):  # one burst, all before the task runs again
            publisher.inventory_changed(_snapshot(revision, *[f"i{n}" for n in range(revision)]))
        await _until(lambda: len(api.patches) == 2)
        publisher.inventory_changed(_snapshot(5, *[f"i{n}" for n in range(5)]))  # same content again
        await publisher.close(flush_timeout=1.0)
        return api

    api = asyncio.run(scenario())
    assert len(api.patches) == 2
    assert api.patches[0] == ("/pods/p", inventory.pod_annotations(_snapshot(0)))
    assert api.patches[1][1] == inventory.pod_annotations(_snapshot(5, "i0", "i1", "i2", "i3", "i4"))


def test_failed_patches_are_retried_until_they_succeed() -> None:
    async def scenario() -> tuple[_FakeApiServer, int]:
        api = _FakeApiServer(fail_first=3)
        schedule = pod_publisher.Schedule(min_interval=0.01, max_backoff=0.05)
        publisher = pod_publisher.PodPublisher(api, "/pods/p", schedule)
        publisher.start()
        publisher.inventory_changed(_snapshot(1, "i0"))
        await _until(lambda: len(api.patches) == 1)
        await publisher.close()
        return api, publisher.patches

    api, patches = asyncio.run(scenario())
    assert api.attempts == 4
    assert patches == 1
    assert api.patches[0][1] == inventory.pod_annotations(_snapshot(1, "i0"))


def test_close_flushes_the_last_change_and_closes_the_client() -> None:
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    async def scenario() -> _FakeApiServer:
        api = _FakeApiServer()
        publisher = pod_publisher.PodPublisher(api, "/pods/p", pod_publisher.Schedule(min_interval=0.05), on_close)
        publisher.start()
        publisher.inventory_changed(_snapshot(1, "i0"))
        await _until(lambda: len(api.patches) == 1)
        publisher.inventory_changed(_snapshot(2))  # inside the interval: pending when close() starts
        await publisher.close(flush_timeout=2.0)
        return api

    api = asyncio.run(scenario())
    assert [p[1] for p in api.patches] == [
        inventory.pod_annotations(_snapshot(1, "i0")),
        inventory.pod_annotations(_snapshot(2)),
    ]
    assert closed == [True]


def test_inventory_changed_never_waits_for_the_apiserver() -> None:
    class _Hanging:
        async def patch_annotations(self, path: str, annotations: dict[str, str]) -> None:
            await asyncio.Event().wait()

    async def scenario() -> None:
        publisher = pod_publisher.PodPublisher(_Hanging(), "/pods/p")
        publisher.start()
        publisher.inventory_changed(_snapshot(1))
        await asyncio.sleep(0)  # noqa: sleep-ok - yield once to the event loop
        publisher.inventory_changed(_snapshot(2))  # returns although a patch hangs
        await publisher.close(flush_timeout=0.05)

    asyncio.run(asyncio.wait_for(scenario(), 5))


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        pytest.param({"pod_name": "p", "namespace": "ns"}, True, id="in-a-pod"),
        pytest.param({"namespace": "ns", "hostname": "p"}, True, id="no-pod-name-hostname-instead"),
        pytest.param({"pod_name": "p"}, False, id="no-namespace-anywhere"),
        pytest.param({"pod_name": "p", "namespace_file": "ns"}, True, id="no-namespace-env-namespace-file-instead"),
        pytest.param({"pod_name": "p", "namespace": "ns", "kubernetes_service_host": None}, False, id="no-apiserver"),
    ],
)
def test_enabled_only_in_a_pod(tmp_path: pathlib.Path, env: dict[str, object], enabled: bool) -> None:
    (tmp_path / "token").write_text("t")
    shutil.copy(certifi.where(), tmp_path / "ca.crt")  # any valid CA bundle
    env = dict(env)
    namespace_file = env.pop("namespace_file", None)
    if namespace_file is not None:
        (tmp_path / "namespace").write_text(str(namespace_file))
    values: dict[str, object] = {"kubernetes_service_host": "10.0.0.1", "service_account_dir": tmp_path, **env}
    settings = settings_mod.LauncherSettings(**values)  # type: ignore[arg-type]  # keys checked by the model

    async def build() -> bool:
        publisher = pod_publisher.from_settings(settings)
        if publisher is not None:
            await publisher.close()
        return publisher is not None

    assert asyncio.run(build()) is enabled


def test_an_unusable_ca_disables_publishing_instead_of_failing_the_launcher(tmp_path: pathlib.Path) -> None:
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca.crt").write_text("not a certificate")
    settings = settings_mod.LauncherSettings(
        kubernetes_service_host="10.0.0.1", service_account_dir=tmp_path, pod_name="p", namespace="ns"
    )
    assert pod_publisher.from_settings(settings) is None


def test_the_connection_is_warmed_up_before_the_first_patch() -> None:
    order: list[str] = []

    class _Recording(_FakeApiServer):
        async def patch_annotations(self, path: str, annotations: dict[str, str]) -> None:
            order.append("patch")
            await super().patch_annotations(path, annotations)

    async def warm_up() -> None:
        order.append("warm-up")

    async def scenario() -> None:
        api = _Recording()
        publisher = pod_publisher.PodPublisher(api, "/pods/p", warm_up=warm_up)
        publisher.start()  # at start-up, before anything is to be published
        await _until(lambda: order == ["warm-up"])
        publisher.inventory_changed(_snapshot(0))  # the first publication, once the server listens
        await _until(lambda: len(api.patches) == 1)
        await publisher.close()

    asyncio.run(scenario())
    assert order == ["warm-up", "patch"]
