"""Small pure rules of simnode: probes, restarts, quantities, unsupported features, mounts, options."""

from __future__ import annotations

import decimal
import pathlib
from typing import Any

import pytest

from devcluster import simnode
from devcluster.simnode import compatibility, container_process, options, pod, probe, quantity, restart_rule


def test_probe_thresholds_and_schedule() -> None:
    spec = pod.Probe.model_validate(
        {
            "httpGet": {"port": 80},
            "initialDelaySeconds": 5,
            "periodSeconds": 2,
            "failureThreshold": 2,
            "successThreshold": 2,
        }
    )
    tracker = probe.Tracker(spec, started=100.0, initial=False)
    assert not tracker.due(104.9)
    assert tracker.due(105.0)
    assert tracker.record(True, 105.0) is False
    assert tracker.next_due == 107.0
    assert tracker.record(True, 107.0) is True
    assert tracker.record(False, 109.0) is True
    assert tracker.record(False, 111.0) is False


def test_probe_named_ports() -> None:
    assert probe.resolve_port("http", {"http": 8080}) == 8080
    assert probe.resolve_port("9000", {}) == 9000
    assert probe.resolve_port("nope", {}) is None


@pytest.mark.parametrize(
    ("policy", "code", "init", "expected"),
    [
        ("Always", 0, False, True),
        ("OnFailure", 0, False, False),
        ("OnFailure", 1, False, True),
        ("Never", 1, False, False),
        ("Always", 0, True, False),
        ("Always", 2, True, True),
        ("Never", 2, True, False),
    ],
)
def test_should_restart(policy: str, code: int, init: bool, expected: bool) -> None:
    assert restart_rule.should_restart(policy, code, init=init) is expected


def test_backoff_doubles_to_five_minutes() -> None:
    assert [restart_rule.backoff_seconds(n) for n in range(7)] == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0]
    assert restart_rule.backoff_seconds(5, ran_seconds=599.0) == 160.0
    assert restart_rule.backoff_seconds(5, ran_seconds=600.0) == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", "1"), ("500m", "0.5"), ("2Gi", str(2 * 2**30)), ("1k", "1000"), ("1e3", "1000"), ("1.5", "1.5")],
)
def test_quantities(text: str, value: str) -> None:
    assert quantity.parse(text) == decimal.Decimal(value)


def test_bad_quantity() -> None:
    with pytest.raises(ValueError, match="invalid quantity '12x'"):
        quantity.parse("12x")


def _pod(spec: dict[str, Any]) -> pod.Pod:
    base = {"containers": [{"name": "c", "command": ["true"]}]}
    return pod.Pod.model_validate({"metadata": {"name": "p", "uid": "u"}, "spec": base | spec})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param({"hostNetwork": True}, "hostNetwork", id="host-network"),
        pytest.param({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "type hostPath", id="host-path"),
        pytest.param(
            {"hostAliases": [{"ip": "127.0.0.9", "hostnames": ["db"]}]},
            "hostAliases is not supported",
            id="host-aliases",
        ),
        pytest.param({"containers": [{"name": "c"}]}, "has no command", id="no-command"),
        pytest.param(
            {"containers": [{"name": "c", "command": ["x"], "livenessProbe": {"exec": {"command": ["x"]}}}]},
            "liveness probe uses exec",
            id="exec-probe",
        ),
        pytest.param(
            {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [
                    {"name": "c", "command": ["x"], "volumeMounts": [{"name": "v", "mountPath": "/a", "subPath": "s"}]}
                ],
            },
            "subPath",
            id="sub-path",
        ),
        pytest.param(
            {"initContainers": [{"name": "side", "command": ["x"], "restartPolicy": "Always"}]}, "sidecar", id="sidecar"
        ),
    ],
)
def test_unsupported_features_are_named(spec: dict[str, Any], fragment: str) -> None:
    problems = compatibility.problems(_pod(spec))
    assert any(fragment in p for p in problems), problems


def test_supported_pod_has_no_problems() -> None:
    spec = {
        "volumes": [
            {"name": "e", "emptyDir": {}},
            {"name": "cm", "configMap": {"name": "x"}},
            {"name": "s", "secret": {"secretName": "x"}},
            {"name": "d", "downwardAPI": {"items": []}},
            {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        ],
    }
    assert compatibility.problems(_pod(spec)) == []


def test_launch_argv_mounts_in_a_private_namespace() -> None:
    assert container_process.launch_argv(["python", "-V"], []) == ["python", "-V"]
    argv = container_process.launch_argv(
        ["python", "-V"],
        [container_process.Mount("/v/b", "/a/b"), container_process.Mount("/v/a", "/a", read_only=True)],
    )
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[7]
    assert script.index("mount --bind /v/a /a") < script.index("mount --bind /v/b /a/b")
    assert "mount -o remount,bind,ro /a" in script
    assert argv[-2:] == ["python", "-V"]


def test_launch_argv_mounts_a_target_that_hides_volume_sources_last() -> None:
    # The chart's Pods mount an emptyDir at /tmp while their volumes live under /tmp/.../volumes.
    mounts = [
        container_process.Mount("/tmp/pods/u/volumes/tmp", "/tmp"),
        container_process.Mount("/tmp/pods/u/volumes/token", "/etc/token"),
        container_process.Mount("/tmp/cluster/hosts", "/etc/hosts", is_file=True),
    ]
    script = container_process.launch_argv(["python", "-V"], mounts)[7]
    assert script.index("mount --bind /tmp/pods/u/volumes/tmp /tmp") > script.index("/etc/token")
    assert script.index("mount --bind /tmp/pods/u/volumes/tmp /tmp") > script.index("/etc/hosts")


def test_options_round_trip_through_the_command_line() -> None:
    opts = simnode.SimnodeOptions(
        nodes=3,
        gpus_per_node=4,
        gpu_allocation="random",
        status_only_nodes=7,
        gpu_map_namespace=None,
        state_dir=pathlib.Path("/tmp/x"),
        leave_pods_running=True,
    )
    kubeconfig, parsed = options.parse(options.to_argv("/k", opts))
    assert kubeconfig == "/k"
    assert parsed == opts


def test_exported_members() -> None:
    assert sorted(simnode.__all__) == sorted(
        ["SimnodeOptions", "container_log", "node_names", "spawn", "state_dir_of", "stop", "wait_ready"]
    )
    for name in simnode.__all__:
        assert hasattr(simnode, name)
