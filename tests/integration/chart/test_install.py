"""``helm install`` of the FMA chart into the development cluster gives a working system.

The release is the session's shared one (``installed_chart``): every
Deployment is Available, every chart Pod runs as its own ServiceAccount
(checked on the running processes, not only on the Pod spec), an ordinary
vLLM-style Deployment annotated for FMA becomes a bound, Ready requester
through the webhook, the FMA scheduler and its extender, and ``helm test``
passes.
"""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import pytest

from devcluster import helm_release, samples, waiting
from devcluster.simnode import runtime_record
from kube import resources
from tests.integration.chart import chart_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

ISC_KEY = "dual-pods.llm-d.ai/inference-server-config"
CONVERTED_KEY = "dual-pods.llm-d.ai/converted"
DUAL_LABEL = "dual-pods.llm-d.ai/dual"
REQUESTER_KEY = "dual-pods.llm-d.ai/requester"


def _process_environ(state_dir: pathlib.Path, uid: str, container: str) -> tuple[dict[str, str], list[str]]:
    """The running container process's environment and command line, read from /proc."""
    record = runtime_record.load(state_dir, uid)
    assert record is not None, f"simnode has no record of Pod {uid}"
    process = record.containers[container].process
    assert process is not None, f"container {container} of Pod {uid} is not running"
    raw = pathlib.Path(f"/proc/{process.pid}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    argv = pathlib.Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
    return env, argv


def _token_claims(state_dir: pathlib.Path, pod: dict[str, Any]) -> dict[str, Any]:
    """The claims of the service-account token simnode projected into the Pod (JWT payload, not verified)."""
    meta = pod["metadata"]
    mounts = [
        m
        for c in pod["spec"]["containers"]
        for m in c.get("volumeMounts") or []
        if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    ]
    assert mounts, f"Pod {meta['name']} has no service-account token mounted"
    token = (runtime_record.pod_dir(state_dir, meta["uid"]) / "volumes" / mounts[0]["name"] / "token").read_text()
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_every_deployment_is_available(installed_chart: helm_release.InstalledChart) -> None:
    found = {d["metadata"]["name"]: d for d in installed_chart.deployments()}
    assert sorted(found) == sorted(f"{helm_release.RELEASE}-fma-{c}" for c in helm_release.COMPONENTS)
    for name, deployment in found.items():
        assert helm_release.deployment_settled(deployment), (name, deployment.get("status"))
    assert found[f"{helm_release.RELEASE}-fma-controllers"]["spec"]["replicas"] == 2
    assert found[f"{helm_release.RELEASE}-fma-webhook"]["spec"]["replicas"] == 2


def test_each_chart_pod_runs_as_its_own_service_account(installed_chart: helm_release.InstalledChart) -> None:
    pods = [p for p in installed_chart.pods() if p["metadata"]["labels"].get("app.kubernetes.io/component") != "test"]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods}
    assert components >= set(helm_release.COMPONENTS), components
    cluster = installed_chart.cluster
    admin_files = {str(cluster.kubeconfig), str(cluster.admin_cert), str(cluster.admin_key)}
    for pod in pods:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp") or not helm_release.pod_ready(pod):
            continue
        component = meta["labels"]["app.kubernetes.io/component"]
        account = f"{helm_release.RELEASE}-fma-{component}"
        assert pod["spec"]["serviceAccountName"] == account, meta["name"]
        claims = _token_claims(installed_chart.simnode_state_dir, pod)
        assert claims["sub"] == f"system:serviceaccount:{helm_release.NAMESPACE}:{account}"
        assert claims["kubernetes.io"]["pod"]["name"] == meta["name"]
        for container in pod["spec"]["containers"]:
            env, argv = _process_environ(installed_chart.simnode_state_dir, meta["uid"], container["name"])
            # In-cluster configuration through the kubernetes Service, never the admin's credentials.
            assert env["KUBERNETES_SERVICE_HOST"] == cluster.kubernetes_service_ip, meta["name"]
            assert env["KUBERNETES_SERVICE_PORT"] == "443"
            assert "KUBECONFIG" not in env, meta["name"]
            assert not admin_files & {*argv, *(a.split("=", 1)[-1] for a in argv)}, (meta["name"], argv)
            assert not any(a.startswith("--kubeconfig") for a in argv), (meta["name"], argv)


def _extender_calls(installed_chart: helm_release.InstalledChart) -> float:
    """How many filter calls the extender Pods have answered (their /metrics, by Pod IP)."""
    total = 0.0
    for text in chart_cluster.metrics_texts(installed_chart, "extender"):
        for line in text.splitlines():
            if line.startswith('fma_extender_request_duration_seconds_count{verb="filter"}'):
                total += float(line.split()[-1])
    return total


def bound_requester(installed_chart: helm_release.InstalledChart, app: str) -> tuple[dict[str, Any], str] | None:
    """The Deployment ``app``'s Ready requester and the launcher bound to it, once both are so."""
    pods = [p for p in installed_chart.pods(f"app={app}") if not p["metadata"].get("deletionTimestamp")]
    if len(pods) != 1 or not helm_release.pod_ready(pods[0]):
        return None
    requester = pods[0]
    provider = requester["metadata"]["labels"].get(DUAL_LABEL)
    if not provider:
        return None
    launcher = installed_chart.api.get_or_none(resources.PODS, provider, helm_release.NAMESPACE)
    record = ((launcher or {}).get("metadata", {}).get("annotations") or {}).get(REQUESTER_KEY, "")
    if record.split(" ")[0] != requester["metadata"]["uid"]:
        return None
    return requester, provider


def test_an_annotated_deployment_becomes_a_bound_ready_requester(
    installed_chart: helm_release.InstalledChart, sim_model: str
) -> None:
    api, ns = installed_chart.api, helm_release.NAMESPACE
    calls_before = _extender_calls(installed_chart)
    api.create(
        helm_release.DEPLOYMENTS, samples.deployment("first-model", samples.vllm_template(sim_model, "first-model")), ns
    )
    try:
        found = waiting.wait_for(
            lambda: bound_requester(installed_chart, "first-model"),
            timeout=180,
            what="the Deployment's Pod a Ready requester with a bound launcher",
        )
        assert found is not None
        requester, launcher = found
        notes = requester["metadata"]["annotations"]
        assert notes[CONVERTED_KEY] == "v1", notes
        assert requester["spec"]["schedulerName"] == "fma-scheduler"
        assert requester["spec"]["nodeName"] in installed_chart.node_names
        launcher_pod = api.get(resources.PODS, launcher, ns)
        assert launcher_pod["spec"]["nodeName"] == requester["spec"]["nodeName"]
        assert launcher_pod["metadata"]["labels"][DUAL_LABEL] == requester["metadata"]["name"]
        # The FMA scheduler consulted the extender (through its Service) to place it.
        assert _extender_calls(installed_chart) > calls_before
    finally:
        api.delete(helm_release.DEPLOYMENTS, "first-model", ns)
        waiting.wait_for(
            lambda: not installed_chart.pods("app=first-model"),
            timeout=120,
            what="the requester gone (finalizer released)",
        )


def test_helm_test_passes(installed_chart: helm_release.InstalledChart) -> None:
    result = installed_chart.helm(
        "test", helm_release.RELEASE, "--namespace", helm_release.NAMESPACE, "--timeout", "5m", timeout=330, check=False
    )
    log = installed_chart.log_of(f"{helm_release.RELEASE}-fma-test")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\ntest Pod log:\n{log}"
    assert "Succeeded" in result.stdout, result.stdout
