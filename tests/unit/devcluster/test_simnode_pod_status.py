"""Pod status (phase, conditions, container statuses) follows the kubelet's rules."""

from __future__ import annotations

import pytest

from devcluster.simnode import fleet, pod, pod_status, status_only

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"
RUNNING = pod_status.Running(T0)
OK = pod_status.Terminated(exit_code=0, reason="Completed", started_at=T0, finished_at=T1)
FAILED = pod_status.Terminated(exit_code=1, reason="Error", started_at=T0, finished_at=T1)
WAITING = pod_status.Waiting("ContainerCreating")
BACKOFF = pod_status.Waiting("CrashLoopBackOff")


def _c(
    state: pod_status.State, *, ready: bool = False, last: pod_status.Terminated | None = None
) -> pod_status.ContainerView:
    return pod_status.ContainerView(name="c", image="i", state=state, ready=ready, last_terminated=last)


def _view(
    containers: list[pod_status.ContainerView],
    policy: str = "Always",
    init: list[pod_status.ContainerView] | None = None,
    terminating: bool = False,
) -> pod_status.PodView:
    return pod_status.PodView(
        init_containers=tuple(init or []),
        containers=tuple(containers),
        restart_policy=policy,
        host_ip="127.1.0.1",
        pod_ip="127.1.0.2",
        terminating=terminating,
    )


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        pytest.param(_view([_c(WAITING)]), "Pending", id="creating"),
        pytest.param(_view([_c(RUNNING)], init=[_c(RUNNING)]), "Pending", id="initializing"),
        pytest.param(_view([_c(WAITING)], policy="Never", init=[_c(FAILED)]), "Failed", id="init-failed-never"),
        pytest.param(
            _view([_c(WAITING)], policy="Always", init=[_c(BACKOFF, last=FAILED)]), "Pending", id="init-retry"
        ),
        pytest.param(_view([_c(RUNNING)], init=[_c(OK)]), "Running", id="running"),
        pytest.param(_view([_c(BACKOFF, last=FAILED)]), "Running", id="crash-loop-stays-running"),
        pytest.param(_view([_c(OK)], policy="Never"), "Succeeded", id="completed"),
        pytest.param(_view([_c(FAILED)], policy="Never"), "Failed", id="failed-never"),
        pytest.param(_view([_c(OK), _c(FAILED)], policy="OnFailure"), "Running", id="onfailure-will-restart"),
        pytest.param(_view([_c(OK)], policy="Always", terminating=True), "Succeeded", id="deleted-clean"),
        pytest.param(_view([_c(FAILED)], policy="Always", terminating=True), "Failed", id="deleted-failed"),
    ],
)
def test_phase(view: pod_status.PodView, expected: str) -> None:
    assert pod_status.phase(view) == expected


def _conditions(status: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined,index]


def test_conditions_follow_readiness_and_keep_transition_times() -> None:
    unready = pod_status.compute(_view([_c(RUNNING)]), [], [], T0)
    conditions = _conditions(unready)
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"] == "containers with unready status: [c]"
    assert conditions["Initialized"]["status"] == "True"
    previous = [pod.PodCondition.model_validate(c) for c in unready["conditions"]]  # type: ignore[attr-defined]
    ready = pod_status.compute(_view([_c(RUNNING, ready=True)]), previous, [], T1)
    conditions = _conditions(ready)
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": T1,
        "reason": None,
        "message": None,
    }
    assert conditions["Initialized"]["lastTransitionTime"] == T0
    assert ready["podIP"] == "127.1.0.2"
    assert ready["podIPs"] == [{"ip": "127.1.0.2"}]


def test_readiness_gates_hold_ready() -> None:
    gate = pod.PodCondition(type="example.com/gate", status="False")
    status = pod_status.compute(_view([_c(RUNNING, ready=True)]), [gate], ["example.com/gate"], T0)
    conditions = _conditions(status)
    assert conditions["ContainersReady"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_unsupported_features_become_a_condition() -> None:
    view = pod_status.PodView(
        init_containers=(),
        containers=(_c(pod_status.Waiting("CreateContainerConfigError")),),
        restart_policy="Always",
        host_ip="127.1.0.1",
        unsupported=("hostNetwork is not supported",),
    )
    condition = _conditions(pod_status.compute(view, [], [], T0))["SimnodeSupported"]
    assert condition["status"] == "False"
    assert condition["reason"] == "UnsupportedPodFeature"
    assert condition["message"] == "hostNetwork is not supported"


def test_container_status_shape() -> None:
    view = pod_status.ContainerView(
        name="c", image="i", state=RUNNING, ready=True, started=True, restart_count=2, last_terminated=FAILED
    )
    assert pod_status.container_status(view) == {
        "name": "c",
        "image": "i",
        "imageID": "",
        "ready": True,
        "started": True,
        "restartCount": 2,
        "state": {"running": {"startedAt": T0}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": T0, "finishedAt": T1}},
    }


def test_status_only_pods_are_running_and_ready() -> None:
    node = fleet.plan(prefix="n", nodes=0, status_only_nodes=1, gpus_per_node=0, gpu_product="X", gpu_memory_mib=1)[0]
    the_pod = pod.Pod.model_validate(
        {
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]},
        }
    )
    status = pod_status.compute(status_only.view_of(the_pod, node, "127.200.0.2", T0), [], [], T0)
    assert status["phase"] == "Running"
    assert _conditions(status)["Ready"]["status"] == "True"
    assert status["hostIP"] == node.host_ip
    assert status["podIP"] == "127.200.0.2"


def _observed(status: dict[str, object]) -> pod.PodStatus:
    return pod.PodStatus.model_validate(status)


def test_disagrees_ignores_times_and_foreign_conditions() -> None:
    sent = pod_status.compute(_view([_c(RUNNING, ready=True)]), [], [], T0)
    same_later = pod_status.compute(_view([_c(RUNNING, ready=True)]), [], [], T1)
    foreign = {**same_later, "conditions": [*same_later["conditions"], {"type": "DisruptionTarget", "status": "True"}]}
    assert not pod_status.disagrees(sent, _observed(same_later))
    assert not pod_status.disagrees(sent, _observed(foreign))


def test_disagrees_when_the_node_lifecycle_controller_marked_the_pod_not_ready() -> None:
    sent = pod_status.compute(_view([_c(RUNNING, ready=True)]), [], [], T0)
    marked = {
        **sent,
        "conditions": [
            {**c, "status": "False", "reason": "NodeNotReady"} if c["type"] == "Ready" else c
            for c in sent["conditions"]
        ],
    }
    assert pod_status.disagrees(sent, _observed(marked))


def test_disagrees_on_phase_and_container_readiness() -> None:
    sent = pod_status.compute(_view([_c(RUNNING, ready=True)]), [], [], T0)
    assert pod_status.disagrees(sent, _observed({**sent, "phase": "Pending"}))
    unready = [{**c, "ready": False} for c in sent["containerStatuses"]]
    assert pod_status.disagrees(sent, _observed({**sent, "containerStatuses": unready}))
    assert pod_status.disagrees(sent, _observed({}))
