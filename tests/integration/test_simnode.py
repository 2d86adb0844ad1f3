"""simnode plays kubelet and NVIDIA device plugin: Pods on its nodes really run.

Each test uses its own namespace on the session's shared simnode (2 nodes x
2 GPUs) and waits on conditions, never on time.
"""

from __future__ import annotations

import collections
import pathlib
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import control_plane, waiting
from devcluster.simnode import runtime_record
from devcluster.simnode.pytest_fixtures import RunningSimnode

pytestmark = pytest.mark.cluster


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return dict(response.json())


def _pod(api: httpx.Client, namespace: str, name: str) -> dict[str, Any] | None:
    response = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    return None if response.status_code == 404 else _ok(response)


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition["type"] == kind:
            return dict(condition)
    return None


def _phase(api: httpx.Client, namespace: str, name: str) -> str | None:
    obj = _pod(api, namespace, name)
    return None if obj is None else (obj.get("status") or {}).get("phase")


def _python_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "ignored", "command": ["python", "-c", textwrap.dedent(script)]}
    container |= spec.pop("container", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "containers": [container], **spec},
    }


def _process_environ(state_dir: pathlib.Path, uid: str, container: str) -> dict[str, str]:
    record = runtime_record.load(state_dir, uid)
    assert record is not None
    process = record.containers[container].process
    assert process is not None
    raw = pathlib.Path(f"/proc/{process.pid}/environ").read_bytes()
    pairs = [item.split("=", 1) for item in raw.decode().split("\0") if "=" in item]
    return {k: v for k, v in pairs}


def _deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": "ignored",
                            "command": ["python", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
                            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


def _ready_pods(api: httpx.Client, namespace: str) -> list[dict[str, Any]]:
    items = _ok(api.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": "app=web"}))["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return [p for p in live if (_condition(p, "Ready") or {}).get("status") == "True"]


def _exactly_ready(api: httpx.Client, namespace: str, count: int) -> list[dict[str, Any]] | None:
    ready = _ready_pods(api, namespace)
    return ready if len(ready) == count else None


def _finished(api: httpx.Client, namespace: str, name: str) -> str | None:
    phase = _phase(api, namespace, name)
    return phase if phase in ("Succeeded", "Failed") else None


def test_gpu_deployment_gets_distinct_gpus_until_they_run_out(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    _ok(api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=_deployment(3)))
    pods = waiting.wait_for(
        lambda: _exactly_ready(api, ns, 3),
        timeout=90,
        what="3 ready GPU Pods",
    )
    devices = [_process_environ(simnode.state_dir, p["metadata"]["uid"], "web")["NVIDIA_VISIBLE_DEVICES"] for p in pods]
    assert all(d.startswith("GPU-") and "," not in d for d in devices), devices
    assert len(set(devices)) == 3, devices

    # Every Pod answers on its own loopback address; some node runs two Pods on the same port.
    for p in pods:
        assert httpx.get(f"http://{p['status']['podIP']}:8080/", timeout=5).status_code == 200
    per_node = collections.Counter(p["spec"]["nodeName"] for p in pods)
    assert max(per_node.values()) == 2
    assert len({p["status"]["podIP"] for p in pods}) == 3

    scale = {"spec": {"replicas": 4}}
    headers = {"Content-Type": "application/merge-patch+json"}
    _ok(api.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json=scale, headers=headers))
    pods = waiting.wait_for(
        lambda: _exactly_ready(api, ns, 4),
        timeout=60,
        what="4 ready GPU Pods",
    )
    devices = [_process_environ(simnode.state_dir, p["metadata"]["uid"], "web")["NVIDIA_VISIBLE_DEVICES"] for p in pods]
    assert len(set(devices)) == 4

    _ok(
        api.patch(
            f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json={"spec": {"replicas": 5}}, headers=headers
        )
    )

    def unschedulable() -> str | None:
        items = _ok(api.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
        for p in items:
            scheduled = _condition(p, "PodScheduled")
            if (
                scheduled
                and scheduled["status"] == "False"
                and "Insufficient nvidia.com/gpu" in scheduled.get("message", "")
            ):
                return str(p["status"].get("phase"))
        return None

    assert (
        waiting.wait_for(unschedulable, timeout=60, what="a Pending Pod with Insufficient nvidia.com/gpu") == "Pending"
    )


def test_pod_uses_its_service_account_through_in_cluster_config(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, devcluster: control_plane.ClusterState
) -> None:
    ns = fresh_namespace
    other = f"{ns}-other"
    _ok(api.post("/api/v1/namespaces", json={"metadata": {"name": other}}))
    try:
        _ok(api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "lister"}}))
        role = {
            "metadata": {"name": "list-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        }
        _ok(api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", json=role))
        binding = {
            "metadata": {"name": "lister-lists"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": ns}],
        }
        _ok(api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json=binding))
        script = f"""
            import pathlib
            from kubernetes import client, config
            config.load_incluster_config()
            core = client.CoreV1Api()
            mine = core.list_namespaced_pod("{ns}")
            print("own-namespace-pods", len(mine.items))
            try:
                core.list_namespaced_pod("{other}")
                print("other-namespace allowed")
            except client.ApiException as exc:
                print("other-namespace status", exc.status)
            print("namespace-file", pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text())
        """
        _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_python_pod("rbac", script, serviceAccountName="lister")))
        phase = waiting.wait_for(
            lambda: _finished(api, ns, "rbac"),
            timeout=60,
            what="the RBAC Pod to finish",
        )
        log = simnode.log_of(ns, "rbac")
        assert phase == "Succeeded", log
        assert "own-namespace-pods 1" in log, log
        assert "other-namespace status 403" in log, log
        assert f"namespace-file {ns}" in log, log
        # The service-account directory exists only inside the Pod's mount namespace.
        assert not pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
    finally:
        api.delete(f"/api/v1/namespaces/{other}")


def test_config_map_volume_is_readable_at_its_mount_path(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    config_map = {"metadata": {"name": "settings"}, "data": {"greeting": "hello from a ConfigMap"}}
    _ok(api.post(f"/api/v1/namespaces/{ns}/configmaps", json=config_map))
    script = 'print("read:", open("/etc/fma-simnode-test/greeting").read())'
    pod = _python_pod(
        "reader",
        script,
        volumes=[{"name": "settings", "configMap": {"name": "settings"}}],
        container={"volumeMounts": [{"name": "settings", "mountPath": "/etc/fma-simnode-test", "readOnly": True}]},
    )
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=pod))
    phase = waiting.wait_for(
        lambda: _finished(api, ns, "reader"),
        timeout=60,
        what="the reader Pod to finish",
    )
    log = simnode.log_of(ns, "reader")
    assert phase == "Succeeded", log
    assert "read: hello from a ConfigMap" in log


_SIGTERM_RECORDER = """
    import pathlib, signal, sys
    out = pathlib.Path(sys.argv[1])
    def on_term(signum, frame):
        (out / "sigterm").write_text("SIGTERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    (out / "started").write_text("yes")
    while True:
        signal.pause()
"""


def _sigterm_pod(name: str, out: pathlib.Path, finalizers: list[str] | None = None) -> dict[str, Any]:
    pod = _python_pod(name, _SIGTERM_RECORDER, container={"args": [str(out)]})
    pod["spec"]["restartPolicy"] = "Always"
    pod["spec"]["terminationGracePeriodSeconds"] = 20
    if finalizers:
        pod["metadata"]["finalizers"] = finalizers
    return pod


def test_deletion_sends_sigterm_and_removes_the_pod(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_sigterm_pod("victim", tmp_path)))
    waiting.wait_for((tmp_path / "started").exists, timeout=60, what="the victim to install its SIGTERM handler")
    _ok(api.delete(f"/api/v1/namespaces/{ns}/pods/victim"))
    waiting.wait_for((tmp_path / "sigterm").exists, timeout=30, what="the victim to record SIGTERM")
    assert (tmp_path / "sigterm").read_text() == "SIGTERM"
    waiting.wait_for(lambda: _pod(api, ns, "victim") is None, timeout=30, what="the victim Pod object to go")


def test_finalizer_holds_a_deleted_pod_until_removed(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, tmp_path: pathlib.Path
) -> None:
    ns = fresh_namespace
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=_sigterm_pod("held", tmp_path, ["fma.test/hold"])))
    waiting.wait_for((tmp_path / "started").exists, timeout=60, what="the held Pod's process to start")
    _ok(api.delete(f"/api/v1/namespaces/{ns}/pods/held"))
    waiting.wait_for((tmp_path / "sigterm").exists, timeout=30, what="the held Pod to record SIGTERM")

    # simnode's final delete (grace 0) has happened once deletionGracePeriodSeconds reads 0.
    def finally_deleted() -> dict[str, Any] | None:
        obj = _pod(api, ns, "held")
        return obj if obj and obj["metadata"].get("deletionGracePeriodSeconds") == 0 else None

    held = waiting.wait_for(finally_deleted, timeout=30, what="simnode's grace-0 delete of the held Pod")
    assert held["metadata"]["finalizers"] == ["fma.test/hold"]
    statuses = held["status"]["containerStatuses"]
    assert "terminated" in statuses[0]["state"], statuses
    patch = [{"op": "remove", "path": "/metadata/finalizers"}]
    headers = {"Content-Type": "application/json-patch+json"}
    _ok(api.patch(f"/api/v1/namespaces/{ns}/pods/held", json=patch, headers=headers))
    waiting.wait_for(lambda: _pod(api, ns, "held") is None, timeout=30, what="the held Pod to go")


def test_failing_liveness_probe_restarts_the_container(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sick"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "web",
                    "image": "ignored",
                    "command": [sys.executable.rsplit("/", 1)[-1], "-m", "http.server", "--bind", "$(IP)", "8080"],
                    "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    # http.server answers 404 for a missing file: the probe fails once the server is up.
                    "livenessProbe": {
                        "httpGet": {"path": "/no-such-file", "port": 8080},
                        "periodSeconds": 1,
                        "failureThreshold": 2,
                    },
                }
            ],
        },
    }
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=pod))

    def restarted() -> dict[str, Any] | None:
        obj = _pod(api, ns, "sick")
        statuses = ((obj or {}).get("status") or {}).get("containerStatuses") or []
        return statuses[0] if statuses and statuses[0]["restartCount"] >= 1 else None

    status = waiting.wait_for(restarted, timeout=60, what="the liveness probe to restart the container")
    assert "terminated" in status["lastState"], status
    events = _ok(api.get(f"/api/v1/namespaces/{ns}/events"))["items"]
    assert any(e["reason"] == "Killing" and "liveness" in e["message"] for e in events), events


def test_unsupported_features_are_reported_on_the_pod(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    pod = _python_pod(
        "unsupported",
        "print('never runs')",
        hostNetwork=True,
        nodeName=simnode.node_names[0],
        volumes=[{"name": "host", "hostPath": {"path": "/tmp"}}],
    )
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=pod))

    def reported() -> dict[str, Any] | None:
        condition = _condition(_pod(api, ns, "unsupported"), "SimnodeSupported")
        return condition if condition and condition["status"] == "False" else None

    condition = waiting.wait_for(reported, timeout=30, what="the SimnodeSupported=False condition")
    assert "hostNetwork" in condition["message"], condition
    assert "hostPath" in condition["message"], condition
    events = waiting.wait_for(
        lambda: [
            e
            for e in _ok(api.get(f"/api/v1/namespaces/{ns}/events"))["items"]
            if e["reason"] == "UnsupportedPodFeature"
        ],
        timeout=30,
        what="the UnsupportedPodFeature event",
    )
    assert events[0]["type"] == "Warning"
    assert _phase(api, ns, "unsupported") == "Pending"


def test_nodes_leases_and_gpu_map_describe_the_gpus(api: httpx.Client, simnode: RunningSimnode) -> None:
    gpu_map = _ok(api.get("/api/v1/namespaces/default/configmaps/gpu-map"))["data"]
    seen: set[str] = set()
    for name in simnode.node_names:
        node = _ok(api.get(f"/api/v1/nodes/{name}"))
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.count"] == "2"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
        lease = _ok(api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"))
        assert lease["spec"]["holderIdentity"] == name
        mapping = httpx.Response(200, content=gpu_map[name]).json()
        assert sorted(mapping.values()) == [0, 1]
        assert all(u.startswith("GPU-") for u in mapping)
        seen.update(mapping)
    assert len(seen) == 2 * len(simnode.node_names)


def test_init_containers_run_in_order_and_env_comes_from_the_api(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    ns = fresh_namespace
    _ok(api.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "cm"}, "data": {"mode": "fast"}}))
    _ok(api.post(f"/api/v1/namespaces/{ns}/secrets", json={"metadata": {"name": "s"}, "stringData": {"token": "t0k"}}))

    def step(name: str) -> dict[str, Any]:
        script = f"open('/run/fma-simnode-work/order', 'a').write('{name}\\n')"
        return {
            "name": name,
            "image": "ignored",
            "command": ["python", "-c", script],
            "volumeMounts": [{"name": "work", "mountPath": "/run/fma-simnode-work"}],
        }

    main_script = """
        import os
        print("order", open("/run/fma-simnode-work/order").read().split())
        for key in ("MODE", "TOKEN", "CM_mode", "GREETING", "NVIDIA_VISIBLE_DEVICES", "KUBERNETES_SERVICE_HOST"):
            print(key, os.environ.get(key))
        print("path0", os.environ["PATH"].split(":")[0])
    """
    pod = _python_pod(
        "ordered",
        main_script,
        initContainers=[step("first"), step("second")],
        volumes=[{"name": "work", "emptyDir": {}}],
        container={
            "volumeMounts": [{"name": "work", "mountPath": "/run/fma-simnode-work"}],
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "mode"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                {"name": "GREETING", "value": "mode=$(MODE) literal=$$(MODE)"},
            ],
        },
    )
    _ok(api.post(f"/api/v1/namespaces/{ns}/pods", json=pod))
    phase = waiting.wait_for(lambda: _finished(api, ns, "ordered"), timeout=60, what="the ordered Pod to finish")
    log = simnode.log_of(ns, "ordered")
    assert phase == "Succeeded", log
    lines = set(log.splitlines())
    assert "order ['first', 'second']" in lines, log
    assert "MODE fast" in lines
    assert "TOKEN t0k" in lines
    assert "CM_mode fast" in lines
    assert "GREETING mode=fast literal=$(MODE)" in lines
    assert "NVIDIA_VISIBLE_DEVICES None" in lines
    assert f"KUBERNETES_SERVICE_HOST {simnode.cluster.kubernetes_service_ip}" in lines
    assert f"path0 {pathlib.Path(sys.prefix) / 'bin'}" in lines, log
    obj = _pod(api, ns, "ordered")
    assert obj is not None
    assert [s["state"]["terminated"]["reason"] for s in obj["status"]["initContainerStatuses"]] == ["Completed"] * 2
