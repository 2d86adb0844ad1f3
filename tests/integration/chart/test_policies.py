"""The chart's admission policies on the installed release: upstream's 16 cases and launcher self-publishing.

The policies are those of docs/protocol.md §12.

Every case patches a real Pod through the real apiserver, as the identity the
case names: "user" is the cluster admin (not exempt; admission policies apply
to everyone), the exempt and the look-alike controllers accounts act with
real ServiceAccount tokens, and launchers with tokens bound to their Pods.
Denials are checked by status, policy name and the exact message.  The
conformance Pods live in a namespace of their own and are never scheduled
(an unknown scheduler name), so no controller or node acts on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import helm_release
from kube import resources
from tests.integration.chart import identities

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

NS = "fma-vap-conformance"
P = "dual-pods.llm-d.ai/"
IMMUTABLE = "fma-immutable-fields"
BOUND = "fma-bound-serverreqpod"
SELF_PUBLISH = "fma-launcher-self-publish"
MESSAGES = {
    IMMUTABLE: "One or more annotations/labels are managed by FMA controllers and cannot be modified directly.",
    BOUND: (
        "One or more annotations/labels are managed by FMA controllers and cannot be modified once the "
        "server-requesting pod is bound to a providing pod."
    ),
}
PUBLISH_ONLY = (
    "A launcher may change only the annotations dual-pods.llm-d.ai/vllm-instance-signature and "
    "dual-pods.llm-d.ai/instances of its own Pod."
)
RBAC = resources.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
RBAC_BINDING = resources.Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
UNSCHEDULED = "fma-vap-no-such-scheduler"


def pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """A Pod no scheduler will place (so nothing runs it)."""
    spec: dict[str, Any] = {
        "schedulerName": UNSCHEDULED,
        "containers": [{"name": "inference-server", "image": "example.invalid/none", "command": ["sleep"]}],
    }
    if account:
        spec["serviceAccountName"] = account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": spec,
    }


def conformance_pods(suffix: str) -> dict[str, dict[str, Any]]:
    """The cast of the cases: launchers, requesters and an ordinary Pod, made with their metadata at CREATE."""
    lc = {f"{P}launcher-config-name": "lc1"}
    return {
        "launcher": pod(
            f"launcher-{suffix}",
            labels={**lc, f"{P}dual": f"requester-{suffix}", f"{P}sleeping": "false"},
            annotations={
                f"{P}requester": f"uid-1 requester-{suffix}",
                f"{P}isc-routing-metadata": "{}",
                f"{P}instance-id": "Iabci",
                f"{P}server-port": "8005",
            },
        ),
        "idle-launcher": pod(f"idle-launcher-{suffix}", labels={**lc, f"{P}sleeping": "true"}),
        "requester": pod(
            f"requester-{suffix}",
            labels={f"{P}dual": f"launcher-{suffix}"},
            annotations={f"{P}inference-server-config": "isc1", f"{P}accelerators": "GPU-0"},
        ),
        "unbound": pod(f"unbound-{suffix}", annotations={f"{P}inference-server-config": "isc1"}),
        "plain": pod(f"plain-{suffix}", labels={"app": "web"}),
    }


@pytest.fixture(scope="module")
def cluster(installed_chart: helm_release.InstalledChart) -> Iterator[helm_release.InstalledChart]:
    """The conformance namespace with two controller look-alike accounts allowed to patch its Pods."""
    api = installed_chart.api
    api.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for account in ("rel-fma-controllers", "fma-controllers"):
        api.create(resources.SERVICE_ACCOUNTS, {"metadata": {"name": account}}, NS)
    api.create(
        RBAC,
        {
            "metadata": {"name": "pod-editor"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch", "delete"]}],
        },
        NS,
    )
    subjects = [
        {"kind": "ServiceAccount", "name": a, "namespace": NS} for a in ("rel-fma-controllers", "fma-controllers")
    ]
    api.create(
        RBAC_BINDING,
        {
            "metadata": {"name": "pod-editor"},
            "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-editor"},
        },
        NS,
    )
    try:
        yield installed_chart
    finally:
        api.delete(resources.NAMESPACES, NS)


def create(chart: helm_release.InstalledChart, cast: dict[str, dict[str, Any]], namespace: str = NS) -> None:
    for body in cast.values():
        chart.api.create(resources.PODS, body, namespace)


def name(cast: dict[str, dict[str, Any]], role: str) -> str:
    return str(cast[role]["metadata"]["name"])


def denied(response: httpx.Response, policy: str, message: str) -> None:
    """The answer is the policy's denial, with its exact message."""
    assert response.status_code == 422, (response.status_code, response.text)
    status = response.json()
    assert status["reason"] == "Invalid", status
    assert status["message"].endswith(
        f"ValidatingAdmissionPolicy '{policy}' with binding 'bind-{policy}' denied request: {message}"
    ), status["message"]


def allowed(response: httpx.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.text)


# The denied cases 1-6, 11 and 12: (case, role, patch, policy).
DENIED = [
    pytest.param(
        "idle-launcher",
        {"metadata": {"annotations": {f"{P}requester": "xyz patched-requester"}}},
        IMMUTABLE,
        id="1-set-requester-on-a-launcher",
    ),
    pytest.param(
        "launcher",
        {"metadata": {"labels": {f"{P}dual": "someone-else"}}},
        IMMUTABLE,
        id="2-change-dual-on-a-bound-launcher",
    ),
    pytest.param(
        "launcher", {"metadata": {"labels": {f"{P}dual": None}}}, IMMUTABLE, id="3-remove-dual-from-a-bound-launcher"
    ),
    pytest.param(
        "requester",
        {"metadata": {"annotations": {f"{P}inference-server-config": "isc2"}}},
        BOUND,
        id="4-change-isc-on-a-bound-requester",
    ),
    pytest.param(
        "requester",
        {"metadata": {"annotations": {f"{P}inference-server-config": None}}},
        BOUND,
        id="5-remove-isc-from-a-bound-requester",
    ),
    pytest.param(
        "launcher",
        {"metadata": {"annotations": {f"{P}isc-routing-metadata": '{"labels":{"a":"b"}}'}}},
        IMMUTABLE,
        id="6-change-isc-routing-metadata-on-a-launcher",
    ),
    pytest.param(
        "plain",
        {"metadata": {"annotations": {f"{P}status": '{"Errors":null}'}}},
        IMMUTABLE,
        id="11-add-status-to-any-pod",
    ),
    pytest.param(
        "launcher",
        {"metadata": {"labels": {f"{P}launcher-config-name": "lc2"}}},
        IMMUTABLE,
        id="12-change-launcher-config-name",
    ),
]


@pytest.fixture(scope="module")
def cast(cluster: helm_release.InstalledChart) -> dict[str, dict[str, Any]]:
    """The Pods of the user cases (each denied case leaves them unchanged)."""
    pods = conformance_pods("user")
    create(cluster, pods)
    return pods


@pytest.mark.parametrize(("role", "patch", "policy"), DENIED)
def test_user_is_denied(
    cluster: helm_release.InstalledChart, cast: dict[str, dict[str, Any]], role: str, patch: dict[str, Any], policy: str
) -> None:
    with cluster.cluster.http_client() as admin:
        denied(identities.patch_pod(admin, NS, name(cast, role), patch), policy, MESSAGES[policy])
    current = cluster.api.get(resources.PODS, name(cast, role), NS)
    for field in ("labels", "annotations"):
        assert (current["metadata"].get(field) or {}) == cast[role]["metadata"][field], field


# The allowed cases 7-10 and 15: (role, patch).
ALLOWED = [
    pytest.param("requester", {"metadata": {"labels": {"team": "a"}}}, id="7-unrelated-label-on-a-bound-requester"),
    pytest.param(
        "unbound",
        {"metadata": {"annotations": {f"{P}inference-server-config": "isc2"}}},
        id="8-change-isc-on-an-unbound-requester",
    ),
    pytest.param("unbound", {"metadata": {"labels": {"team": "a"}}}, id="9-unrelated-label-on-an-unbound-requester"),
    pytest.param("plain", {"metadata": {"labels": {"app": "web2"}}}, id="10-relabel-an-ordinary-pod"),
    pytest.param("launcher", {"metadata": {"labels": {f"{P}sleeping": "true"}}}, id="15-edit-sleeping"),
    pytest.param("requester", {"metadata": {"annotations": {f"{P}accelerators": "GPU-1"}}}, id="15-edit-accelerators"),
    pytest.param("unbound", {"metadata": {"annotations": {f"{P}server-patch": "{}"}}}, id="15-edit-server-patch"),
    pytest.param("plain", {"metadata": {"finalizers": ["example.com/hold"]}}, id="15-add-a-finalizer"),
    pytest.param("plain", {"metadata": {"finalizers": None}}, id="15-remove-the-finalizer"),
]


@pytest.mark.parametrize(("role", "patch"), ALLOWED)
def test_user_is_allowed(
    cluster: helm_release.InstalledChart, cast: dict[str, dict[str, Any]], role: str, patch: dict[str, Any]
) -> None:
    with cluster.cluster.http_client() as admin:
        allowed(identities.patch_pod(admin, NS, name(cast, role), patch))


def test_16_delete_of_a_bound_launcher_is_not_matched(cluster: helm_release.InstalledChart) -> None:
    pods = conformance_pods("delete")
    create(cluster, {"launcher": pods["launcher"]})
    with cluster.cluster.http_client() as admin:
        response = admin.delete(f"/api/v1/namespaces/{NS}/pods/{name(pods, 'launcher')}")
    assert response.status_code == 200, response.text


def test_13_the_controllers_account_may_do_cases_1_to_6(cluster: helm_release.InstalledChart) -> None:
    pods = conformance_pods("exempt")
    create(cluster, pods)
    bearer = identities.token(cluster.cluster, NS, "rel-fma-controllers")
    with identities.client(cluster.cluster, bearer) as controllers:
        assert identities.whoami(controllers)["username"] == f"system:serviceaccount:{NS}:rel-fma-controllers"
        for param in DENIED[:6]:
            role, patch, _ = param.values
            allowed(identities.patch_pod(controllers, NS, name(pods, role), patch))
    launcher = cluster.api.get(resources.PODS, name(pods, "launcher"), NS)
    assert f"{P}dual" not in launcher["metadata"]["labels"]
    assert launcher["metadata"]["annotations"][f"{P}isc-routing-metadata"] == '{"labels":{"a":"b"}}'
    requester = cluster.api.get(resources.PODS, name(pods, "requester"), NS)
    assert f"{P}inference-server-config" not in requester["metadata"]["annotations"]


def test_14_a_controllers_name_without_the_dash_is_not_exempt(cluster: helm_release.InstalledChart) -> None:
    pods = conformance_pods("lookalike")
    create(cluster, {"idle-launcher": pods["idle-launcher"]})
    bearer = identities.token(cluster.cluster, NS, "fma-controllers")
    with identities.client(cluster.cluster, bearer) as lookalike:
        patch = {"metadata": {"annotations": {f"{P}requester": "xyz patched-requester"}}}
        denied(identities.patch_pod(lookalike, NS, name(pods, "idle-launcher"), patch), IMMUTABLE, MESSAGES[IMMUTABLE])


# --- fma-launcher-self-publish -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def launchers(cluster: helm_release.InstalledChart) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Two unscheduled Pods running as the chart's launcher account in the release namespace."""
    account = f"{helm_release.RELEASE}-fma-launcher"
    api, ns = cluster.api, helm_release.NAMESPACE
    made = [api.create(resources.PODS, pod(f"vap-launcher-{x}", account=account), ns) for x in ("a", "b")]
    try:
        yield made[0], made[1]
    finally:
        for body in made:
            api.delete(resources.PODS, body["metadata"]["name"], ns)


def launcher_client(cluster: helm_release.InstalledChart, bound_to: dict[str, Any] | None) -> httpx.Client:
    account = f"{helm_release.RELEASE}-fma-launcher"
    bearer = identities.token(cluster.cluster, helm_release.NAMESPACE, account, bound_to)
    return identities.client(cluster.cluster, bearer)


def publish(instances: str = "[]") -> dict[str, Any]:
    inventory = json.dumps({"v": 1, "revision": 1, "instances": json.loads(instances)})
    return {"metadata": {"annotations": {f"{P}vllm-instance-signature": "ab" * 32, f"{P}instances": inventory}}}


def test_a_launcher_publishes_on_its_own_pod(
    cluster: helm_release.InstalledChart, launchers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    own, _ = launchers
    with launcher_client(cluster, own) as launcher:
        assert identities.whoami(launcher)["extra"]["authentication.kubernetes.io/pod-name"] == [
            own["metadata"]["name"]
        ]
        allowed(identities.patch_pod(launcher, helm_release.NAMESPACE, own["metadata"]["name"], publish()))
        removal = {"metadata": {"annotations": {f"{P}instances": None}}}
        allowed(identities.patch_pod(launcher, helm_release.NAMESPACE, own["metadata"]["name"], removal))
    notes = cluster.api.get(resources.PODS, own["metadata"]["name"], helm_release.NAMESPACE)["metadata"]["annotations"]
    assert notes[f"{P}vllm-instance-signature"] == "ab" * 32
    assert f"{P}instances" not in notes


def test_a_launcher_may_not_publish_on_another_launcher(
    cluster: helm_release.InstalledChart, launchers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    own, other = launchers
    with launcher_client(cluster, own) as launcher:
        response = identities.patch_pod(launcher, helm_release.NAMESPACE, other["metadata"]["name"], publish())
    message = (
        f'A launcher may modify only its own Pod: this token is bound to Pod "{own["metadata"]["name"]}", '
        f'not "{other["metadata"]["name"]}".'
    )
    denied(response, SELF_PUBLISH, message)


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({"metadata": {"annotations": {"example.com/other": "x"}}}, id="another-annotation"),
        pytest.param({"metadata": {"annotations": {f"{P}requester": "uid x"}}}, id="a-controller-annotation"),
        pytest.param({"metadata": {"labels": {"app": "x"}}}, id="a-label"),
        pytest.param({"metadata": {"finalizers": ["example.com/hold"]}}, id="a-finalizer"),
        pytest.param({"spec": {"activeDeadlineSeconds": 3600}}, id="the-spec"),
    ],
)
def test_a_launcher_may_not_change_anything_else_on_its_pod(
    cluster: helm_release.InstalledChart, launchers: tuple[dict[str, Any], dict[str, Any]], patch: dict[str, Any]
) -> None:
    own, _ = launchers
    with launcher_client(cluster, own) as launcher:
        response = identities.patch_pod(launcher, helm_release.NAMESPACE, own["metadata"]["name"], patch)
    if f"{P}requester" in json.dumps(patch):
        # Both policies object; the apiserver reports the first it evaluated.
        assert response.status_code == 422, response.text
        assert PUBLISH_ONLY in response.text or MESSAGES[IMMUTABLE] in response.text
        return
    denied(response, SELF_PUBLISH, PUBLISH_ONLY)


def test_a_launcher_token_not_bound_to_a_pod_may_not_publish(
    cluster: helm_release.InstalledChart, launchers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    own, _ = launchers
    with launcher_client(cluster, None) as launcher:
        response = identities.patch_pod(launcher, helm_release.NAMESPACE, own["metadata"]["name"], publish())
    denied(response, SELF_PUBLISH, "A launcher may modify only its own Pod: this token is not bound to a Pod.")
