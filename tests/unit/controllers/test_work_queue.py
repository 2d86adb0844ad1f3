"""The grouped work queue: dedup, per-group serialization, back-off, delays."""

from __future__ import annotations

import threading

import pytest

from controllers import errors, work_queue, workers
from devcluster import waiting


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> work_queue.GroupedQueue[str, str]:
    return work_queue.GroupedQueue(clock=clock, backoff=work_queue.BackoffPolicy(base=1.0, cap=20.0))


def test_adds_are_deduplicated(queue: work_queue.GroupedQueue[str, str]) -> None:
    queue.add("n1", "a")
    queue.add("n1", "a")
    assert queue.pending() == 1
    assert queue.get(timeout=0) == ("n1", "a")
    assert queue.get(timeout=0) is None


def test_one_item_per_group_at_a_time_oldest_first(queue: work_queue.GroupedQueue[str, str]) -> None:
    queue.add("n1", "a")
    queue.add("n1", "b")
    queue.add("n2", "c")
    first = queue.get(timeout=0)
    second = queue.get(timeout=0)
    assert (first, second) == (("n1", "a"), ("n2", "c"))
    assert queue.get(timeout=0) is None, "n1 is busy, so b must wait"
    queue.done("n1", "a")
    assert queue.get(timeout=0) == ("n1", "b")


def test_an_item_added_while_processing_is_handed_out_again_after_done(
    queue: work_queue.GroupedQueue[str, str],
) -> None:
    queue.add("n1", "a")
    assert queue.get(timeout=0) == ("n1", "a")
    queue.add("n1", "a")
    assert queue.get(timeout=0) is None
    queue.done("n1", "a")
    assert queue.get(timeout=0) == ("n1", "a")


def test_backoff_doubles_up_to_the_cap_and_forget_resets(
    queue: work_queue.GroupedQueue[str, str], clock: FakeClock
) -> None:
    delays = [queue.add_rate_limited("n1", "a") for _ in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    queue.forget("n1", "a")
    assert queue.failures("n1", "a") == 0
    assert queue.add_rate_limited("n1", "a") == 1.0


def test_delayed_items_become_ready_at_their_time(queue: work_queue.GroupedQueue[str, str], clock: FakeClock) -> None:
    queue.add_after("n1", "a", 5.0)
    assert queue.get(timeout=0) is None
    clock.now += 4.9
    assert queue.get(timeout=0) is None
    clock.now += 0.2
    assert queue.get(timeout=0) == ("n1", "a")


def test_add_pulls_an_item_in_backoff_forward(queue: work_queue.GroupedQueue[str, str], clock: FakeClock) -> None:
    queue.add_rate_limited("n1", "a")
    queue.add_rate_limited("n1", "a")  # now waiting 2 s
    queue.add("n1", "a")
    assert queue.get(timeout=0) == ("n1", "a")
    queue.done("n1", "a")
    clock.now += 30
    assert queue.get(timeout=0) is None, "the superseded schedule must not fire again"


def test_earlier_schedule_wins(queue: work_queue.GroupedQueue[str, str], clock: FakeClock) -> None:
    queue.add_after("n1", "a", 10.0)
    queue.add_after("n1", "a", 2.0)
    queue.add_after("n1", "a", 8.0)
    clock.now += 2.5
    assert queue.get(timeout=0) == ("n1", "a")
    queue.done("n1", "a")
    clock.now += 10
    assert queue.get(timeout=0) is None


def test_shutdown_releases_waiting_getters() -> None:
    queue: work_queue.GroupedQueue[str, str] = work_queue.GroupedQueue()
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(queue.get()))
    thread.start()
    queue.shut_down()
    thread.join(5)
    assert results == [None]


def test_workers_apply_outcomes() -> None:
    queue: work_queue.GroupedQueue[str, str] = work_queue.GroupedQueue(
        backoff=work_queue.BackoffPolicy(base=0.01, cap=0.05)
    )
    calls: list[str] = []
    lock = threading.Lock()

    def reconcile(group: str, item: str) -> float | None:
        with lock:
            calls.append(item)
            count = calls.count(item)
        if item == "flaky" and count < 3:
            raise RuntimeError("transient")
        if item == "terminal":
            raise errors.UserError("bad spec")
        if item == "again" and count == 1:
            return 0.01
        return None

    pool = workers.Workers(queue, reconcile, name="test", count=2)
    pool.start()
    try:
        for item in ("flaky", "terminal", "again", "plain"):
            queue.add(item, item)
        waiting.wait_for(
            lambda: (
                calls.count("flaky") == 3 and calls.count("again") == 2 and "plain" in calls and "terminal" in calls
            ),
            timeout=10,
            what="retries and requeues",
        )
        assert calls.count("terminal") == 1
        assert calls.count("plain") == 1
        assert queue.failures("flaky", "flaky") == 0, "success forgets the back-off"
    finally:
        pool.stop()
