"""``helm install`` with ``gpuClaims: dra`` on a cluster whose GPUs are DRA devices gives working requesters.

A cluster of its own (not the session's shared release: the chart's webhook
and scheduler act cluster-wide), whose simnode offers its GPUs only as DRA
devices (ResourceSlices of ``gpu.nvidia.com``, no ``nvidia.com/gpu``).  The
chart is installed exactly as an operator would, with ``gpuClaims=dra`` and
its own DeviceClass (``dra.deviceClass.create``; another name than the one
simnode publishes).  An ordinary annotated vLLM-style Deployment then
becomes a Ready requester bound to a launcher, through the claim the
webhook planned and the chart's controllers created with the RBAC the chart
granted: the claim is owned by the requester, asks for the chart's
DeviceClass and is allocated GPUs of the requester's node.  The
controllers' and the webhook's accounts may then do exactly what the
default install grants them plus what DRA needs (the claim keeper's four
verbs on ResourceClaims; the sleeper cache's reads), asked of the apiserver
with their own tokens as in test_rbac.py, and neither logged a refusal.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from controllers import claim_keeper
from crds import gpu_claims
from devcluster import helm_release, samples, waiting
from kube import resources
from tests.integration.chart import chart_cluster, identities
from tests.integration.chart import test_rbac as rbac
from tests.integration.chart.test_install import bound_requester

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

DEVICE_CLASS = "fma-chart-gpu"
NS = helm_release.NAMESPACE
FMA = "fma.llm-d.ai"
DRA_EXTRAS: dict[str, set[rbac.Rule]] = {
    "controllers": rbac.rules(
        groups=("resource.k8s.io",), resources_=("resourceclaims",), verbs=("get", "list", "watch", "create")
    ),
    "webhook": rbac.rules(groups=("",), resources_=("pods", "nodes", "configmaps"), verbs=("list", "watch"))
    | rbac.rules(groups=(FMA,), resources_=("launcherconfigs",), verbs=("list", "watch")),
}
DEVICE_CLASSES = resources.Resource("resource.k8s.io", "v1", "deviceclasses", "DeviceClass", namespaced=False)


def _granted(chart: helm_release.InstalledChart, account: str) -> set[rbac.Rule]:
    """The account's rules in the release namespace, asked with its own token (SelfSubjectRulesReview)."""
    bearer = identities.token(chart.cluster, NS, account)
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": NS}}
    with identities.client(chart.cluster, bearer) as http:
        response = http.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json=body)
    response.raise_for_status()
    status = response.json()["status"]
    assert not status.get("incomplete"), status.get("evaluationError")
    return rbac.flatten(status.get("resourceRules") or [])


def _print_state(chart: helm_release.InstalledChart) -> None:
    """What a failed wait needs: the Pods' status and annotations, the claims, the controllers' log tail."""
    for pod in chart.pods("app.kubernetes.io/component!=none"):
        meta = pod["metadata"]
        print(meta["name"], meta.get("annotations"), pod.get("status", {}).get("conditions"))
    for claim in chart.api.list_all(claim_keeper.RESOURCE_CLAIMS, helm_release.NAMESPACE)[0]:
        print("claim", claim["metadata"]["name"], claim.get("status"))
    for pod in chart.pods("app.kubernetes.io/component in (controllers, webhook)"):
        print(pod["metadata"]["name"], chart.log_of(pod["metadata"]["name"])[-3000:])


@pytest.fixture(scope="module")
def dra_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helm_release.InstalledChart]:
    """A dev cluster with 2 DRA-only nodes of 2 GPUs and the chart installed with ``gpuClaims=dra``."""
    with chart_cluster.installed(
        pathlib.Path(tmp_path_factory.mktemp("chart-dra")),
        node_prefix="chartdra",
        set_values=("gpuClaims=dra", "dra.deviceClass.create=true", f"dra.deviceClass.name={DEVICE_CLASS}"),
        gpu_mode="dra",
    ) as (chart, _):
        yield chart


def test_a_requester_gets_its_claim_and_is_bound(dra_chart: helm_release.InstalledChart) -> None:
    api, ns = dra_chart.api, helm_release.NAMESPACE
    # The chart's DeviceClass is there, labelled as the release's.
    made = api.get(DEVICE_CLASSES, DEVICE_CLASS)
    assert made["metadata"]["labels"]["app.kubernetes.io/instance"] == helm_release.RELEASE
    assert made["spec"] == gpu_claims.device_class_body(DEVICE_CLASS)["spec"]

    api.create(
        resources.LAUNCHER_CONFIGS,
        samples.launcher_config("sim", service_account=f"{helm_release.RELEASE}-fma-launcher"),
        ns,
    )
    isc = samples.inference_server_config("tiny", launcher_config_name="sim", options=samples.engine_sim_options())
    api.create(resources.INFERENCE_SERVER_CONFIGS, isc, ns)
    api.create(
        helm_release.DEPLOYMENTS, samples.deployment("dra-model", samples.vllm_template("tiny", "dra-model")), ns
    )
    try:
        found = waiting.wait_for(
            lambda: bound_requester(dra_chart, "dra-model"),
            timeout=180,
            what="the Deployment's Pod a Ready requester with a bound launcher",
        )
    except waiting.WaitTimeout:
        _print_state(dra_chart)
        raise
    assert found is not None
    requester, launcher = found
    meta = requester["metadata"]
    # The webhook planned a claim instead of nvidia.com/gpu ...
    plan = gpu_claims.plan_of(requester)
    assert plan is not None, meta.get("annotations")
    assert (plan.count, plan.device_class, plan.driver) == (1, DEVICE_CLASS, gpu_claims.DRIVER_DEFAULT)
    for box in requester["spec"]["containers"]:
        assert "nvidia.com/gpu" not in (box.get("resources") or {}).get("limits", {}), box
    # ... and the chart's controllers created it, owned by the requester, allocated on its node.
    name = gpu_claims.claim_name_of(requester)
    assert name is not None
    claim = api.get(claim_keeper.RESOURCE_CLAIMS, name, ns)
    assert [o["uid"] for o in claim["metadata"]["ownerReferences"]] == [meta["uid"]]
    devices = gpu_claims.allocated_devices(claim)
    assert len(devices) == 1, claim.get("status")
    node = requester["spec"]["nodeName"]
    assert devices[0].pool == node, (devices, node)
    assert api.get(resources.PODS, launcher, ns)["spec"]["nodeName"] == node

    # Exactly the default install's rights plus DRA's, with nothing refused on the way.
    api.create(resources.SERVICE_ACCOUNTS, {"metadata": {"name": rbac.BASELINE}}, ns)
    baseline = _granted(dra_chart, rbac.BASELINE)
    for component, extra in DRA_EXTRAS.items():
        granted = _granted(dra_chart, f"{rbac.P}-{component}") - baseline
        expected = rbac.EXPECTED_IN_RELEASE_NAMESPACE[component] | extra
        assert granted == expected, (component, sorted(granted - expected), sorted(expected - granted))
        logs = {
            p["metadata"]["name"]: dra_chart.log_of(p["metadata"]["name"])
            for p in dra_chart.pods(f"app.kubernetes.io/component={component}")
        }
        assert any(log.strip() for log in logs.values()), f"no {component} Pod logged: the check would prove nothing"
        for pod_name, log in logs.items():
            refused = [line for line in log.splitlines() if rbac.REFUSED.search(line)]
            assert not refused, (pod_name, refused[:5])
