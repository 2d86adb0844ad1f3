"""The launcher's revisioned event log: replay, 410 and slow watchers (docs/protocol.md, "Launcher API")."""

from __future__ import annotations

import asyncio

import pytest

from launcher import errors, event_log, schemas


def _record(log: event_log.EventLog, kind: schemas.WatchEventType, instance_id: str) -> schemas.WatchEvent:
    revision = log.next_revision()
    state = schemas.InstanceState(status="running", instance_id=instance_id, revision=revision, options="")
    event = schemas.WatchEvent(type=kind, object=state)
    log.append(event)
    return event


def test_revisions_count_from_one_and_replay_after_since() -> None:
    log = event_log.EventLog(capacity=10)
    assert log.revision == 0
    events = [_record(log, "CREATED", f"i{n}") for n in range(3)]
    assert log.revision == 3
    assert log.replay_since(0) == events
    assert log.replay_since(2) == events[2:]
    assert log.replay_since(3) == []


def test_too_old_and_future_cursors_are_gone() -> None:
    log = event_log.EventLog(capacity=2)
    for n in range(5):
        _record(log, "CREATED", f"i{n}")
    assert log.oldest_available == 3
    with pytest.raises(
        errors.RevisionGone, match=r"^Requested revision 2 is no longer available. Oldest available: 3.$"
    ):
        log.replay_since(2)
    with pytest.raises(errors.RevisionGone, match="newer than the current revision 5"):
        log.replay_since(6)
    assert [e.object.instance_id for e in log.replay_since(3)] == ["i3", "i4"]


def test_append_rejects_a_stale_revision() -> None:
    log = event_log.EventLog()
    log.next_revision()
    state = schemas.InstanceState(status="running", instance_id="x", revision=7, options="")
    with pytest.raises(ValueError, match="not the current"):
        log.append(schemas.WatchEvent(type="CREATED", object=state))


def test_subscribers_get_live_events_and_a_slow_one_is_cut_off() -> None:
    async def scenario() -> tuple[list[str], bool, list[str]]:
        log = event_log.EventLog(capacity=3)
        fast = log.subscribe()
        slow = log.subscribe()
        received: list[str] = []

        async def consume() -> None:
            async for event in fast:
                received.append(event.object.instance_id)

        task = asyncio.create_task(consume())
        for n in range(5):
            _record(log, "CREATED", f"i{n}")
            await asyncio.sleep(0)  # let the fast consumer run, as the event loop would between requests
        log.close()
        await asyncio.wait_for(task, 5)
        leftover = [event.object.instance_id async for event in slow]
        return received, slow.closed, leftover

    received, slow_closed, leftover = asyncio.run(scenario())
    assert received == ["i0", "i1", "i2", "i3", "i4"]
    assert slow_closed
    assert leftover == []  # it overflowed at the fourth event, and its stream simply ends


def test_watch_line_is_compact_and_omits_nulls() -> None:
    state = schemas.InstanceState(status="stopped", instance_id="x", revision=4, options="--a", exit_code=-9)
    line = schemas.WatchEvent(type="STOPPED", object=state).line()
    expected = (
        '{"type":"STOPPED","object":{"status":"stopped","instance_id":"x","revision":4,"options":"--a","exit_code":-9}}'
    )
    assert line == expected.encode() + b"\n"
