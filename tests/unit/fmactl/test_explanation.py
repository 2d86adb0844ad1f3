"""explanation.build: a requester's story from what FMA recorded."""

from __future__ import annotations

import pytest

from fmactl import errors, explanation, snapshot

from . import objects as o

I1 = "I" + "1" * 43 + "i"


def _states(report: explanation.Explanation) -> dict[str, str]:
    return {stage.stage: stage.state for stage in report.stages}


def test_a_bound_ready_requester_tells_its_whole_story_in_order() -> None:
    bound = o.requester("r1-a", gpus="GPU-a", ready=True, dual="lc-1", instance=I1)
    lc = o.launcher("lc-1", bound_to=bound, instance_id=I1, sleeping="false", instances=[o.instance(I1, "GPU-a")])
    events = [o.event(bound, "ActuatedWarm", "warm actuation in 2.50s")]
    report = explanation.build(o.snap([bound, lc], events), bound)
    assert [s.stage for s in report.stages] == [
        "admission",
        "scheduling",
        "gpus",
        "binding",
        "actuation",
        "readiness-relay",
        "current",
    ]
    assert set(_states(report).values()) == {"done"}
    assert (report.mode, report.isc, report.model, report.converted) == ("launcher", "isc1", "tiny", True)
    assert (report.node, report.scheduler, report.sleeper_aware) == ("n1", "fma-scheduler", True)
    assert (report.provider, report.provider_kind, report.instance_id) == ("lc-1", "launcher", I1)
    assert (report.path, report.actuation_seconds, report.ready) == ("warm", 2.5, True)
    assert report.waiting_for == ""
    assert report.reasons == []
    assert [e.reason for e in report.events] == ["ActuatedWarm"]


def test_an_unscheduled_requester_waits_for_scheduling_with_the_schedulers_reason() -> None:
    pending = o.requester(
        "r2-b", node=None, scheduler="default-scheduler", unschedulable="0/2 nodes are available: Insufficient gpu"
    )
    failed = o.event(pending, "FailedScheduling", "0/2 nodes are available: Insufficient gpu", kind="Warning")
    report = explanation.build(o.snap([pending], [failed]), pending)
    assert _states(report)["scheduling"] == "pending"
    assert report.sleeper_aware is False
    assert report.waiting_for == "scheduling"
    assert report.reasons == ["scheduler: 0/2 nodes are available: Insufficient gpu"]
    assert "not sleeper-aware" in report.stages[1].summary


def test_a_start_failure_is_named_in_the_controllers_own_words() -> None:
    problem = "the engine stopped before it ever answered (exit code 2): error: unrecognized arguments: --bogus"
    failed = o.requester("r3-c", gpus="GPU-b", status='{"Errors":["' + problem + '"]}', deleting=True)
    events = [
        o.event(failed, "ActuationFailed", "no IP assigned yet", kind="Warning", seconds_ago=30),
        o.event(failed, "ActuationFailed", problem, kind="Warning"),
    ]
    report = explanation.build(o.snap([failed], events), failed)
    assert report.reasons == [f"controller: {problem}"]  # the Event repeats the status: shown once
    assert _states(report)["binding"] == "pending"
    assert _states(report)["current"] == "failed"
    assert report.deleting is True
    assert report.waiting_for.startswith("deletion")


def test_other_warning_events_are_reasons_too() -> None:
    pod = o.requester("r4-d", gpus="GPU-b", dual="lc-9")
    events = [o.event(pod, "OutdatedRoutingMetadata", "routing labels changed", kind="Warning")]
    report = explanation.build(o.snap([pod], events), pod)
    assert report.reasons == ["OutdatedRoutingMetadata: routing labels changed"]
    assert report.waiting_for == "the controller to bind a server-providing Pod"
    assert "no provider records the binding" in report.stages[3].summary


def test_a_requester_not_converted_by_the_webhook_says_so() -> None:
    pod = o.requester("r5-e", converted=False, node="n1")
    report = explanation.build(o.snap([pod]), pod)
    assert report.converted is False
    assert "not converted by the webhook" in report.stages[0].summary
    assert report.waiting_for == "the controller to learn the requester's GPUs from its agent"


def test_a_direct_mode_requester() -> None:
    pod = o.requester("r6-f", isc=None, gpus="GPU-a")
    report = explanation.build(o.snap([pod]), pod)
    assert (report.mode, report.isc) == ("direct", "")


def test_a_plain_pod_is_not_fmas() -> None:
    plain = {"metadata": {"name": "web", "uid": "u"}, "spec": {}, "status": {}}
    with pytest.raises(errors.NotFmaPod, match='pod "web" is not an FMA requester'):
        explanation.build(o.snap([plain]), plain)


def test_a_launcher_is_not_a_requester_and_names_its_requester() -> None:
    bound = o.requester("r1-a", gpus="GPU-a")
    lc = o.launcher("lc-1", bound_to=bound)
    with pytest.raises(errors.NotFmaPod, match='bound to requester "r1-a"'):
        explanation.build(o.snap([bound, lc]), lc)


def test_find_pod_names_the_missing_pod_and_namespace() -> None:
    with pytest.raises(errors.PodNotFound, match='pod "nope" not found in namespace "ns"'):
        snapshot.find_pod(o.snap([o.requester("r1-a")]), "nope")
    assert snapshot.find_pod(o.snap([o.requester("r1-a")]), "r1-a")["metadata"]["uid"] == "uid-r1-a"


def test_a_ready_requesters_earlier_warnings_are_history_not_reasons() -> None:
    pod = o.requester("r7-g", gpus="GPU-a", ready=True, dual="lc-1")
    events = [o.event(pod, "ActuationFailed", "no IP assigned yet", kind="Warning", seconds_ago=90)]
    report = explanation.build(o.snap([pod], events), pod)
    assert report.reasons == []
    assert [(e.type, e.message) for e in report.events] == [("Warning", "no IP assigned yet")]
