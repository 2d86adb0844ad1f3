"""RBAC proof on the installed chart: each ServiceAccount may do exactly the listed things, and that suffices.

For every ServiceAccount of the chart the test asks the apiserver, with a
real token of that account, what it may do (SelfSubjectRulesReview) in the
release namespace, in ``kube-system`` and in an unrelated namespace, removes
what every account may do anyway (the rules of a fresh account with no
bindings) and compares the rest with the lists kept here.  The FMA
scheduler's list is the cluster's own ``system:kube-scheduler`` and
``system:volume-scheduler`` roles plus its Lease.  Then, after the system has
done real work (a model started, launchers publishing), no chart Pod has
logged a refusal of the apiserver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster import helm_release
from kube import resources
from tests.integration.chart import identities

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

NS = helm_release.NAMESPACE
P = f"{helm_release.RELEASE}-fma"
FMA = "fma.llm-d.ai"
Rule = tuple[str, str, str, str]  # apiGroup, resource, verb, resourceName ('' = any)
CLUSTER_ROLES = resources.Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
BASELINE = "rbac-baseline"


def rules(
    *, groups: tuple[str, ...], resources_: tuple[str, ...], verbs: tuple[str, ...], names: tuple[str, ...] = ("",)
) -> set[Rule]:
    return {(g, r, v, n) for g in groups for r in resources_ for v in verbs for n in names}


# What each account may do beyond the baseline, in the release namespace (cluster-wide rules included).
EXPECTED_IN_RELEASE_NAMESPACE: dict[str, set[Rule]] = {
    "controllers": (
        rules(groups=("",), resources_=("pods",), verbs=("get", "list", "watch", "create", "patch", "delete"))
        | rules(groups=("",), resources_=("pods/status",), verbs=("patch",))
        | rules(groups=("",), resources_=("configmaps",), verbs=("list", "watch"), names=("gpu-map",))
        | rules(
            groups=(FMA,),
            resources_=("inferenceserverconfigs", "launcherconfigs", "launcherpopulationpolicies"),
            verbs=("list", "watch"),
        )
        | rules(groups=(FMA,), resources_=("inferenceserverconfigs/status",), verbs=("patch",))
        | rules(
            groups=(FMA,), resources_=("launcherconfigs/status", "launcherpopulationpolicies/status"), verbs=("update",)
        )
        | rules(groups=("",), resources_=("events",), verbs=("create", "patch"))
        | rules(groups=("coordination.k8s.io",), resources_=("leases",), verbs=("create",))
        | rules(
            groups=("coordination.k8s.io",), resources_=("leases",), verbs=("get", "update"), names=("fma-controllers",)
        )
        | rules(groups=("",), resources_=("nodes",), verbs=("list", "watch"))
    ),
    "webhook": (
        rules(groups=("apps",), resources_=("replicasets", "statefulsets", "daemonsets"), verbs=("get",))
        | rules(groups=("batch",), resources_=("jobs",), verbs=("get",))
        | rules(groups=(FMA,), resources_=("inferenceserverconfigs",), verbs=("list", "watch"))
    ),
    "extender": (
        rules(groups=("",), resources_=("pods", "nodes"), verbs=("list", "watch"))
        | rules(groups=(FMA,), resources_=("inferenceserverconfigs", "launcherconfigs"), verbs=("list", "watch"))
        | rules(groups=("",), resources_=("configmaps",), verbs=("list", "watch"), names=("gpu-map",))
    ),
    "certs": (
        rules(groups=("",), resources_=("secrets",), verbs=("get", "update"), names=(f"{P}-webhook-tls",))
        | rules(
            groups=("admissionregistration.k8s.io",),
            resources_=("mutatingwebhookconfigurations",),
            verbs=("get", "update"),
            names=(f"{P}-webhook",),
        )
    ),
    "launcher": (
        rules(groups=("",), resources_=("pods",), verbs=("patch",))
        | rules(groups=("",), resources_=("configmaps",), verbs=("get",), names=("gpu-map",))
    ),
}
CLUSTER_WIDE: dict[str, set[Rule]] = {
    "controllers": rules(groups=("",), resources_=("nodes",), verbs=("list", "watch")),
    "webhook": rules(groups=(FMA,), resources_=("inferenceserverconfigs",), verbs=("list", "watch")),
    "extender": rules(groups=("",), resources_=("pods", "nodes"), verbs=("list", "watch")),
    "certs": rules(
        groups=("admissionregistration.k8s.io",),
        resources_=("mutatingwebhookconfigurations",),
        verbs=("get", "update"),
        names=(f"{P}-webhook",),
    ),
    "launcher": set(),
}
SCHEDULER_OWN: set[Rule] = rules(
    groups=("coordination.k8s.io",), resources_=("leases",), verbs=("get", "update"), names=(f"{P}-scheduler",)
)
AUTHENTICATION_READER: set[Rule] = rules(
    groups=("",),
    resources_=("configmaps",),
    verbs=("get", "list", "watch"),
    names=("extension-apiserver-authentication",),
)


def flatten(resource_rules: list[dict[str, Any]]) -> set[Rule]:
    """(group, resource, verb, name) for every combination a rule list grants; wildcards are kept as '*'."""
    return {
        (group, resource, verb, name)
        for rule in resource_rules
        for group in rule.get("apiGroups") or [""]
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
        for name in rule.get("resourceNames") or [""]
    }


@pytest.fixture(scope="module")
def review(installed_chart: helm_release.InstalledChart) -> Iterator[Any]:
    """``review(account, namespace)``: the account's rules in ``namespace``, asked with its own token."""
    api = installed_chart.api
    api.create(resources.SERVICE_ACCOUNTS, {"metadata": {"name": BASELINE}}, NS)

    def _review(account: str, namespace: str) -> set[Rule]:
        bearer = identities.token(installed_chart.cluster, NS, account)
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        with identities.client(installed_chart.cluster, bearer) as http:
            response = http.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json=body)
        response.raise_for_status()
        status = response.json()["status"]
        assert not status.get("incomplete"), status.get("evaluationError")
        return flatten(status.get("resourceRules") or [])

    try:
        yield _review
    finally:
        api.delete(resources.SERVICE_ACCOUNTS, BASELINE, NS)


@pytest.mark.parametrize("component", sorted(EXPECTED_IN_RELEASE_NAMESPACE))
def test_each_account_may_do_exactly_its_list(review: Any, component: str) -> None:
    account = f"{P}-{component}"
    for namespace, expected in (
        (NS, EXPECTED_IN_RELEASE_NAMESPACE[component]),
        ("kube-system", CLUSTER_WIDE[component]),
        ("default", CLUSTER_WIDE[component]),
    ):
        granted = review(account, namespace) - review(BASELINE, namespace)
        assert granted == expected, (
            f"{account} in {namespace}: extra {sorted(granted - expected)}, missing {sorted(expected - granted)}"
        )
        assert not any("*" in rule for rule in granted), sorted(granted)


def test_the_scheduler_has_the_kube_scheduler_roles_and_its_lease(
    installed_chart: helm_release.InstalledChart, review: Any
) -> None:
    system: set[Rule] = set()
    for role in ("system:kube-scheduler", "system:volume-scheduler"):
        system |= flatten(installed_chart.api.get(CLUSTER_ROLES, role)["rules"])
    account = f"{P}-scheduler"
    assert review(account, NS) - review(BASELINE, NS) == system | SCHEDULER_OWN
    assert review(account, "kube-system") - review(BASELINE, "kube-system") == system | AUTHENTICATION_READER
    assert review(account, "default") - review(BASELINE, "default") == system


# Not after ":" -- klog headers name source lines such as schedule_one.go:403.
REFUSED = re.compile(r"(?<!:)\b(403|forbidden)\b", re.IGNORECASE)


def test_the_system_works_with_exactly_those_rules(
    installed_chart: helm_release.InstalledChart, sim_model: str
) -> None:
    """After real work (the populator's launchers up and publishing), no chart Pod or launcher logged a refusal."""
    del sim_model  # its launchers, created by the controllers, have published their inventory
    checked = logged = 0
    pods = installed_chart.pods() + installed_chart.pods("app.kubernetes.io/component=launcher")
    for pod in pods:
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") in ("test", "uninstall"):
            continue
        for container in pod["spec"]["containers"]:
            log = installed_chart.log_of(pod["metadata"]["name"], container["name"])
            refused = [line for line in log.splitlines() if REFUSED.search(line)]
            assert not refused, (pod["metadata"]["name"], refused[:5])
            checked += 1
            logged += bool(log.strip())
    assert checked >= 8  # 2 controllers, 2 webhooks, extender, scheduler and at least two launchers
    assert logged >= 6, f"only {logged} of {checked} containers have written a log; the check would prove nothing"
    launchers = installed_chart.pods("app.kubernetes.io/component=launcher")
    published = [p for p in launchers if "dual-pods.llm-d.ai/instances" in (p["metadata"].get("annotations") or {})]
    assert published, "no launcher published its inventory with the launcher account's rights"
