"""docs/e2e.md, "Fault scenarios (group C)", launcher mode: C1-C6 through the installed chart.

The module makes its own LauncherConfig (``maxInstances: 2``), a policy of
one launcher per GPU node and the InferenceServerConfigs its faults need;
each scenario runs a Deployment of requesters, breaks something for real
(SIGKILL of a process, an engine that cannot start, an engine that ignores
SIGTERM), waits on watches with the bound stated at each step, removes its
Deployment and ends with the common checks (``invariants.check_all``).
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import helm_release
from kube import resources

from . import faults, invariants, manifests
from .system import DEPLOYMENTS, E2ESystem, P

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Bounds of each kind of step (seconds), for 2 shared CPU cores.
COLD_S = 150.0  # a requester Ready through a launcher that had to start
WARM_S = 90.0  # a new instance in a running launcher
GONE_S = 90.0  # a scaled-down requester's Pods removed
LAUNCHERS_S = 150.0  # the populator's launchers Ready on every GPU node
BACKOFF_S = 90.0  # C5: three start failures, 10 s and 20 s of back-off apart, each with a new requester
FAILOVER_S = 90.0  # a SIGKILLed leader's Lease expires (15 s), a standby takes it and resumes

LC = "c-lc"
LPP = "c-lpp"
SLOW_START_S = 20.0  # C1's engine loads this long, so the controllers can be killed between bind and ready
ISCS = {
    # name: (port, options)
    "c-fast": (8101, manifests.engine_options("model-fast")),
    "c-slow": (
        8102,
        manifests.engine_options("model-slow").replace("--sim-startup-seconds 0.2", "--sim-startup-seconds 20"),
    ),
    # The simulator refuses a negative start-up time: it exits with status 2 before serving.
    "c-bad": (8103, "--model model-bad --enable-sleep-mode --sim-startup-seconds -1"),
    # C6: an engine that ignores SIGTERM and has a worker process, and an ISC on the same port.
    "c-stubborn": (8104, manifests.engine_options("model-stubborn") + " --sim-ignore-sigterm --sim-workers 1"),
    "c-next": (8104, manifests.engine_options("model-next")),
}


@pytest.fixture(scope="module")
def fleet(e2e: E2ESystem) -> Iterator[str]:
    """The module's LC, ISCs and one Ready launcher per GPU node; yields the test node (the first node)."""
    apps = ("c1", "c2", "c3", "c4", "c5", "c6")
    with faults.launcher_fleet(e2e, LC, LPP, ISCS, apps=apps, timeout=LAUNCHERS_S):
        yield e2e.node_names[0]


def _remove(e2e: E2ESystem, name: str) -> None:
    e2e.delete(DEPLOYMENTS, name)
    e2e.wait_no_requesters(name, timeout=GONE_S)


def _replaced(e2e: E2ESystem, app: str, old_uid: str) -> dict[str, Any] | None:
    found = e2e.bound_requester(app)
    return found if found is not None and found["metadata"]["uid"] != old_uid else None


def _bound_not_ready(e2e: E2ESystem, app: str) -> dict[str, Any] | None:
    pods = e2e.requesters(app)
    if len(pods) != 1 or helm_release.pod_ready(pods[0]):
        return None
    dual = pods[0]["metadata"].get("labels", {}).get(P + "dual")
    provider = e2e.pod(dual) if dual else None
    record = (provider or {}).get("metadata", {}).get("annotations", {}).get(P + "requester", "")
    return pods[0] if record.split(" ")[0] == pods[0]["metadata"]["uid"] else None


def _event_time(event: dict[str, Any]) -> datetime.datetime:
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"]["creationTimestamp"]
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def test_c1_controllers_killed_between_bind_and_ready(e2e: E2ESystem, fleet: str) -> None:
    """SIGKILL the leading controllers Pod after the bind, while the engine loads: the new leader finishes."""
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c1", "c-slow", node=fleet))
    requester = e2e.wait(
        lambda: _bound_not_ready(e2e, "c1"), timeout=WARM_S, what="c1's requester bound, its engine still loading"
    )
    leader = e2e.leader()
    leader_pod = e2e.pod(leader)
    assert leader_pod is not None, f"the Lease holder {leader!r} is no controllers Pod"
    restarts = faults.restart_count(leader_pod)
    assert _bound_not_ready(e2e, "c1") is not None, "still between bind and ready at the kill"
    killed_at = time.monotonic()
    faults.kill_container(leader, "fma-controllers", group=True)
    e2e.wait(
        lambda: faults.restart_count(e2e.pod(leader)) > restarts,
        timeout=FAILOVER_S,
        what=f"the killed controllers container of {leader} restarted",
    )

    finished: dict[str, Any] = e2e.wait(
        lambda: e2e.bound_requester("c1"),
        timeout=FAILOVER_S + SLOW_START_S + WARM_S,
        what="c1's requester Ready and bound after the leader was killed",
    )
    assert finished["metadata"]["uid"] == requester["metadata"]["uid"], "the same requester, not a replacement"
    assert e2e.actuation_reason(finished) in ("ActuatedWarm", "ActuatedCold")
    assert time.monotonic() - killed_at < FAILOVER_S + SLOW_START_S + WARM_S
    _remove(e2e, "c1")
    invariants.check_all(e2e)


def test_c2_leader_failover_under_churn(e2e: E2ESystem, fleet: str) -> None:
    """Two controllers replicas; the leader is deleted and SIGKILLed while a set scales up and down.

    One writer at a time shows as: every requester actuated once (one ``Actuated*`` Event each), no
    requester bound twice, no GPU used twice (the common checks), and the set converges.
    """
    assert len(e2e.controller_pods()) == 2, "the chart's default: 2 controllers replicas"
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c2", "c-fast", replicas=2))
    failovers = 0
    for step, replicas in enumerate((3, 1, 3, 2)):
        e2e.scale("c2", replicas)
        leader = e2e.leader()
        restarts = faults.restart_count(e2e.pod(leader))
        if step % 2 == 0:
            e2e.delete(resources.PODS, leader, grace_period_seconds=5)  # the leader releases its Lease
        else:
            faults.kill_container(leader, "fma-controllers", group=True)  # its Lease must expire
        failovers += 1

        def new_leader(old: str = leader, before: int = restarts) -> bool:
            holder = e2e.leader()
            pod = e2e.pod(holder) if holder else None
            if pod is None or not helm_release.pod_ready(pod):
                return False
            return holder != old or faults.restart_count(pod) > before

        e2e.wait(new_leader, timeout=FAILOVER_S, what=f"a controllers process other than the one of {leader} leading")

    def converged() -> bool:
        pods = e2e.requesters("c2")
        return len(pods) == 2 and all(faults.bound(e2e, p) for p in pods)

    e2e.wait(converged, timeout=COLD_S + FAILOVER_S, what="c2's 2 requesters Ready and bound")
    for pod in e2e.watch.all_pods({"app": "c2"}):
        actuated = [r for r in e2e.watch.reasons_of(pod) if r.startswith("Actuated") and r != "ActuationFailed"]
        assert len(actuated) <= 1, f"requester {pod['metadata']['name']} was actuated {len(actuated)} times"
    assert failovers == 4
    _remove(e2e, "c2")
    invariants.check_all(e2e)


def test_c3_launcher_process_killed(e2e: E2ESystem, fleet: str) -> None:
    """SIGKILL a bound launcher's process: its container restarts, the requester is replaced, nothing leaks."""
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c3", "c-fast", node=fleet))
    first, launcher = e2e.wait_bound("c3", timeout=COLD_S)
    name = launcher["metadata"]["name"]
    restarts = faults.restart_count(launcher)
    launcher_pid = faults.container_pid(name, "fma-launcher")
    engines = faults.instance_sessions(launcher_pid)
    assert faults.listener_session(launcher["status"]["podIP"], ISCS["c-fast"][0]) in engines
    os.kill(launcher_pid, signal.SIGKILL)
    e2e.wait(
        lambda: faults.restart_count(e2e.pod(name)) > restarts,
        timeout=GONE_S,
        what=f"launcher {name}'s container restarted",
    )
    second = e2e.wait(
        lambda: _replaced(e2e, "c3", first["metadata"]["uid"]),
        timeout=COLD_S + GONE_S,
        what="a new c3 requester Ready and bound",
    )
    assert e2e.actuation_reason(second) in ("ActuatedWarm", "ActuatedCold")
    e2e.wait(
        lambda: not any(os.path.exists(f"/proc/{sid}") for sid in engines),
        timeout=30,
        what=f"the old engine processes {sorted(engines)} gone with their launcher",
    )
    _remove(e2e, "c3")
    invariants.check_all(e2e)


def test_c4_engine_killed_while_awake(e2e: E2ESystem, fleet: str) -> None:
    """SIGKILL the awake engine's process group: the requester is replaced and binds to the same launcher."""
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c4", "c-fast", node=fleet))
    first, launcher = e2e.wait_bound("c4", timeout=COLD_S)
    ip, port = launcher["status"]["podIP"], ISCS["c-fast"][0]
    assert not e2e.engine_sleeping(ip, port)
    engine = faults.listener_session(ip, port)
    assert engine is not None, f"no process listens on {ip}:{port}"
    os.killpg(engine, signal.SIGKILL)
    second = e2e.wait(
        lambda: _replaced(e2e, "c4", first["metadata"]["uid"]),
        timeout=WARM_S + GONE_S,
        what="a new c4 requester Ready and bound",
    )
    # As A13 the replacement binds on the node; the launcher is the first with room there (this node may
    # have a second launcher by now, made cold by an earlier scenario).
    assert second["spec"]["nodeName"] == fleet
    e2e.wait(
        lambda: e2e.api.get_or_none(resources.PODS, first["metadata"]["name"], e2e.namespace) is None,
        timeout=GONE_S,
        what="the killed engine's requester gone",
    )
    _remove(e2e, "c4")
    invariants.check_all(e2e)


def test_c5_engine_fails_to_start(e2e: E2ESystem, fleet: str) -> None:
    """Bad options: status, Event and ISC status say so; retried with back-off; fixed, it binds; no
    finalizer is left behind."""
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c5", "c-bad", node=fleet))

    def failures() -> list[tuple[datetime.datetime, str, str]]:
        # From every Event of the namespace: a failed requester is deleted, its Events stay.
        found = []
        for event in e2e.watch.events.items():
            subject = event.get("involvedObject") or {}
            if (
                event.get("reason") == "ActuationFailed"
                and str(subject.get("name", "")).startswith("c5-")
                and "stopped before" in str(event.get("message"))
            ):
                found.append((_event_time(event), str(subject.get("uid")), str(event.get("message"))))
        return sorted(found)

    seen: list[tuple[datetime.datetime, str, str]] = e2e.wait(
        lambda: failures()[:3] if len(failures()) >= 3 else None,
        timeout=WARM_S + BACKOFF_S,
        what="three ActuationFailed Events on successive c5 requesters",
    )
    message = seen[0][2]
    assert "the engine stopped before it ever answered" in message, message
    assert "exit code 2" in message, message
    assert "invalid engine options" in message, f"the engine's own complaint is in the message: {message}"
    assert len({uid for _, uid, _ in seen}) == 3, "each failed requester is replaced, not retried in place"
    # The starts wait out the back-off: 10 s after the first failure, 20 s after the second (Event times
    # have 1 s resolution).  A replacement requester alone takes well under 19 s to reach its start.
    gaps = [(later[0] - earlier[0]).total_seconds() for earlier, later in itertools.pairwise(seen)]
    assert gaps[0] >= 9, f"failures {gaps} s apart: no back-off"
    assert gaps[1] >= 19, f"failures {gaps} s apart: the back-off does not grow"

    def reported_on_isc() -> dict[str, Any] | None:
        obj = e2e.watch.iscs.get_by_name("c-bad", e2e.namespace)
        errors = ((obj or {}).get("status") or {}).get("errors") or []
        return obj if any("engine start failed" in err for err in errors) else None

    isc: dict[str, Any] = e2e.wait(
        reported_on_isc,
        timeout=30,
        what="c-bad's status reporting the start failure",
    )
    assert any(fleet in err for err in isc["status"]["errors"]), isc["status"]

    def status_errors() -> list[str]:
        # The failed requester reports the error in its status annotation, then is deleted (and replaced).
        for pod in e2e.watch.all_pods({"app": "c5"}):
            written = (pod["metadata"].get("annotations") or {}).get(P + "status")
            errors = (json.loads(written) or {}).get("Errors") if written else None
            if errors:
                return list(errors)
        return []

    reported = e2e.wait(status_errors, timeout=90, what="a c5 requester's status annotation reporting the error")
    assert any("stopped before it ever answered" in err for err in reported), reported

    # Never stuck: fixed options are taken at once (a new configuration has no back-off).
    e2e.patch_isc_options("c-bad", manifests.engine_options("model-bad"))
    fixed, launcher = e2e.wait_bound("c5", timeout=WARM_S + GONE_S)
    assert fixed["metadata"]["labels"][P + "dual"] == launcher["metadata"]["name"]
    e2e.wait(
        lambda: (
            (obj := e2e.watch.iscs.get_by_name("c-bad", e2e.namespace)) and not (obj.get("status") or {}).get("errors")
        ),
        timeout=30,
        what="c-bad's status without errors once its engine answers",
    )
    _remove(e2e, "c5")
    # No orphaned finalizer (upstream #444): every launcher that is not bound holds no provider finalizer.
    for pod in e2e.launchers():
        if not pod["metadata"].get("labels", {}).get(P + "dual"):
            fins = pod["metadata"].get("finalizers") or []
            assert not [f for f in fins if f.startswith(P)], f"unbound launcher {pod['metadata']['name']} keeps {fins}"
    invariants.check_all(e2e)


def test_c6_new_instance_waits_for_the_previous_process_group(e2e: E2ESystem, fleet: str) -> None:
    """A sleeping engine that ignores SIGTERM (and has a worker) is reclaimed for a new ISC on the same
    port and GPUs: the new engine's processes appear only after every process of the old one is gone."""
    node = e2e.node_names[1]
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment("c6", "c-stubborn", node=node, gpus=4))
    first, launcher = e2e.wait_bound("c6", timeout=COLD_S)
    name = launcher["metadata"]["name"]
    gpus = first["metadata"]["annotations"][P + "accelerators"]
    ip, port = launcher["status"]["podIP"], ISCS["c-stubborn"][0]
    old = faults.listener_session(ip, port)
    assert old is not None, f"no process listens on {ip}:{port}"
    e2e.scale("c6", 0)
    e2e.wait_no_requesters("c6", timeout=GONE_S)
    assert e2e.engine_sleeping(ip, port), "the old occupant sleeps"

    with faults.ProcessWatch(faults.container_pid(name, "fma-launcher")) as watch:
        e2e.set_template_annotation("c6", P + "inference-server-config", "c-next")
        e2e.scale("c6", 1)
        second, provider = e2e.wait_bound("c6", timeout=WARM_S + 30)
    assert provider["metadata"]["name"] == name, "the same launcher, its sleeper reclaimed"
    assert second["metadata"]["annotations"][P + "accelerators"] == gpus, "the same GPUs"
    new = faults.listener_session(ip, port)
    assert new is not None
    assert new != old
    assert not os.path.exists(f"/proc/{old}"), "the old engine is still there"
    assert old in watch.last_seen, "the watch never saw the old engine"
    assert new in watch.first_seen, "the watch never saw the new engine"
    bad = [o for o in watch.overlaps if old in o and new in o]
    assert not bad, f"the old and the new engine's processes were alive at once ({len(bad)} samples)"
    assert watch.first_seen[new] > watch.last_seen[old]
    # The fault was real: the old engine ignored the launcher's SIGTERM and was killed after the grace.
    assert "instance ignored SIGTERM; killing its group" in e2e.chart.log_of(name)
    counts = collections.Counter(i["instance_id"] for i in e2e.launcher_instances(e2e.pod(name) or {}))
    assert all(v == 1 for v in counts.values())
    _remove(e2e, "c6")
    invariants.check_all(e2e)
