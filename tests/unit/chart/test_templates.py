"""``helm template`` with several value sets: the objects the chart makes and their key fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from crds import keys, names
from tests.unit.chart.conftest import (
    NAMESPACE,
    RELEASE,
    SCHEDULER_CLIENT_DEFAULTS,
    VALUE_SETS,
    HelmFailed,
    Rendered,
    packaged_scheduler_config,
    rendered_scheduler_config,
)
from webhook import configuration

Render = Callable[..., Rendered]
P = f"{RELEASE}-fma"
KUBE_TAG = "v1.35.4"
EXEMPTION = r"^system:serviceaccount:[^:]+:[^:]*-fma-controllers$"
DEPLOYMENTS = {
    f"{P}-controllers": "controllers",
    f"{P}-webhook": "webhook",
    f"{P}-extender": "extender",
    f"{P}-scheduler": "scheduler",
}
IMMUTABLE_MESSAGE = "One or more annotations/labels are managed by FMA controllers and cannot be modified directly."
BOUND_MESSAGE = (
    "One or more annotations/labels are managed by FMA controllers and cannot be modified once the "
    "server-requesting pod is bound to a providing pod."
)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one container of a Deployment's Pod template."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def args_of(obj: dict[str, Any]) -> dict[str, str]:
    """``--flag=value`` arguments of a Deployment's container, as a dict."""
    found: dict[str, str] = {}
    for arg in container(obj).get("args") or []:
        flag, _, value = arg.partition("=")
        found[flag] = value
    return found


def without_chart_labels(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` minus the labels the chart adds to everything (to compare with package templates)."""
    copy = dict(obj)
    copy["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "labels"}
    return copy


# --- defaults: what is there -------------------------------------------------------------------------


def test_defaults_make_every_component(render: Render) -> None:
    kinds = render().kinds()
    assert kinds["Deployment"] == sorted(DEPLOYMENTS)
    components = ("controllers", "webhook", "extender", "scheduler", "certs", "launcher", "test", "uninstall")
    assert kinds["ServiceAccount"] == sorted(f"{P}-{c}" for c in components)
    assert kinds["Service"] == [f"{P}-extender", f"{P}-webhook"]
    assert kinds["MutatingWebhookConfiguration"] == [f"{P}-webhook"]
    assert kinds["ValidatingAdmissionPolicy"] == [
        "fma-bound-serverreqpod",
        "fma-immutable-fields",
        "fma-launcher-self-publish",
    ]
    assert kinds["ValidatingAdmissionPolicyBinding"] == [
        "bind-fma-bound-serverreqpod",
        "bind-fma-immutable-fields",
        "bind-fma-launcher-self-publish",
    ]
    assert kinds["PodDisruptionBudget"] == [f"{P}-webhook"]
    assert kinds["NetworkPolicy"] == [f"{P}-providers"]
    assert kinds["Secret"] == [f"{P}-launcher-token", f"{P}-webhook-tls"]
    assert kinds["Job"] == [f"{P}-certs-init-1", f"{P}-uninstall"]
    assert kinds["CronJob"] == [f"{P}-certs-rotate"]
    assert "PodMonitor" not in kinds


def test_every_object_carries_the_release_labels(render: Render) -> None:
    for obj in render().objects:
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/instance") == RELEASE, obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", obj["metadata"]["name"]


def test_namespaced_objects_live_in_the_release_namespace(render: Render) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for obj in render().objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, obj["metadata"]["name"]
        elif obj["metadata"]["name"] == f"{P}-scheduler-authentication-reader":
            assert namespace == "kube-system"
        else:
            assert namespace == NAMESPACE, (obj["kind"], obj["metadata"]["name"])


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_each_deployment_runs_as_its_own_service_account(render: Render, value_set: str) -> None:
    rendered = render(VALUE_SETS[value_set])
    for deployment in rendered.of("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == deployment["metadata"]["name"]
        assert rendered.has("ServiceAccount", deployment["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for key, value in deployment["spec"]["selector"]["matchLabels"].items():
            assert labels[key] == value


def test_controllers_service_account_matches_the_policies_exemption(render: Render) -> None:
    name = f"{P}-controllers"
    render().get("ServiceAccount", name)
    assert re.match(EXEMPTION, f"system:serviceaccount:{NAMESPACE}:{name}")


def test_replicas_and_leader_election(render: Render) -> None:
    rendered = render()
    controllers = rendered.get("Deployment", f"{P}-controllers")
    assert controllers["spec"]["replicas"] == 2
    flags = args_of(controllers)
    assert flags["--leader-elect"] == "true"
    assert flags["--namespace"] == "$(POD_NAMESPACE)"
    assert flags["--identity"] == "$(POD_NAME)"
    assert rendered.get("Deployment", f"{P}-webhook")["spec"]["replicas"] == 2
    pdb = rendered.get("PodDisruptionBudget", f"{P}-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == rendered.get("Deployment", f"{P}-webhook")["spec"]["selector"]["matchLabels"]
    )


def test_probes_and_ports(render: Render) -> None:
    rendered = render()
    webhook = container(rendered.get("Deployment", f"{P}-webhook"))
    assert webhook["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    controllers = rendered.get("Deployment", f"{P}-controllers")
    box = container(controllers)
    assert box["ports"] == [{"name": "metrics", "containerPort": 8002}]
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert controllers["spec"]["template"]["metadata"]["labels"]["scrape"] == "true"
    extender = container(rendered.get("Deployment", f"{P}-extender"))
    assert extender["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_process_listens_on_its_pod_ip(render: Render) -> None:
    flags = {name: args_of(render().get("Deployment", name)) for name in DEPLOYMENTS}
    assert flags[f"{P}-controllers"]["--metrics-host"] == "$(POD_IP)"
    assert flags[f"{P}-webhook"]["--host"] == "$(POD_IP)"
    assert flags[f"{P}-extender"]["--host"] == "$(POD_IP)"
    assert flags[f"{P}-scheduler"]["--bind-address"] == "$(POD_IP)"
    for name in DEPLOYMENTS:
        env = {
            e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            for e in container(render().get("Deployment", name))["env"]
        }
        assert env["POD_IP"] == "status.podIP"


def test_pods_run_unprivileged(render: Render) -> None:
    for deployment in render().of("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        box = container(deployment)
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
        assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# --- RBAC ----------------------------------------------------------------------------------------------


def rules_of(rendered: Rendered, kind: str, name: str) -> list[tuple[str, str, str, str]]:
    """(apiGroup, resource, verb, resourceName or '') of one Role or ClusterRole, flattened."""
    flat = []
    for rule in rendered.get(kind, name)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for resource_name in rule.get("resourceNames") or [""]:
                        flat.append((group, resource, verb, resource_name))
    return sorted(flat)


def test_no_rule_uses_a_wildcard(render: Render) -> None:
    for value_set in VALUE_SETS.values():
        rendered = render(value_set)
        for role in rendered.of("Role") + rendered.of("ClusterRole"):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in (rule.get(field) or []), (role["metadata"]["name"], rule)


def test_controllers_rules(render: Render) -> None:
    rendered = render()
    name = f"{P}-controllers"
    fma = "fma.llm-d.ai"
    assert rules_of(rendered, "Role", name) == sorted(
        [
            *(("", "pods", v, "") for v in ("get", "list", "watch", "create", "patch", "delete")),
            ("", "pods/status", "patch", ""),
            ("", "configmaps", "list", "gpu-map"),
            ("", "configmaps", "watch", "gpu-map"),
            *(
                (fma, r, v, "")
                for r in ("inferenceserverconfigs", "launcherconfigs", "launcherpopulationpolicies")
                for v in ("list", "watch")
            ),
            (fma, "inferenceserverconfigs/status", "patch", ""),
            (fma, "launcherconfigs/status", "update", ""),
            (fma, "launcherpopulationpolicies/status", "update", ""),
            ("", "events", "create", ""),
            ("", "events", "patch", ""),
            ("coordination.k8s.io", "leases", "create", ""),
            ("coordination.k8s.io", "leases", "get", names.CONTROLLERS_LEASE),
            ("coordination.k8s.io", "leases", "update", names.CONTROLLERS_LEASE),
        ]
    )
    assert rules_of(rendered, "ClusterRole", f"{name}-node-view") == [
        ("", "nodes", "list", ""),
        ("", "nodes", "watch", ""),
    ]


def test_cluster_roles_are_few_and_narrow(render: Render) -> None:
    rendered = render()
    assert sorted(r["metadata"]["name"] for r in rendered.of("ClusterRole")) == [
        f"{P}-certs",
        f"{P}-controllers-node-view",
        f"{P}-extender",
        f"{P}-webhook",
    ]
    assert rules_of(rendered, "ClusterRole", f"{P}-certs") == [
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get", f"{P}-webhook"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update", f"{P}-webhook"),
    ]
    assert rules_of(rendered, "ClusterRole", f"{P}-webhook") == [
        ("fma.llm-d.ai", "inferenceserverconfigs", "list", ""),
        ("fma.llm-d.ai", "inferenceserverconfigs", "watch", ""),
    ]
    for _, _, verb, _ in rules_of(rendered, "ClusterRole", f"{P}-extender"):
        assert verb in ("list", "watch")


def test_launcher_and_certs_rules(render: Render) -> None:
    rendered = render()
    assert rules_of(rendered, "Role", f"{P}-launcher") == [
        ("", "configmaps", "get", "gpu-map"),
        ("", "pods", "patch", ""),
    ]
    assert rules_of(rendered, "Role", f"{P}-certs") == [
        ("", "secrets", "get", f"{P}-webhook-tls"),
        ("", "secrets", "update", f"{P}-webhook-tls"),
    ]


def test_scheduler_gets_the_kube_scheduler_roles_and_its_own_lease(render: Render) -> None:
    rendered = render()
    subject = {"kind": "ServiceAccount", "name": f"{P}-scheduler", "namespace": NAMESPACE}
    bound = {b["roleRef"]["name"] for b in rendered.of("ClusterRoleBinding") if subject in b["subjects"]}
    assert bound == {"system:kube-scheduler", "system:volume-scheduler"}
    reader = rendered.get("RoleBinding", f"{P}-scheduler-authentication-reader")
    assert reader["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    assert rules_of(rendered, "Role", f"{P}-scheduler") == [
        ("coordination.k8s.io", "leases", "get", f"{P}-scheduler"),
        ("coordination.k8s.io", "leases", "update", f"{P}-scheduler"),
    ]


def test_every_binding_names_an_existing_service_account_and_role(render: Render) -> None:
    rendered = render()
    builtin = {"system:kube-scheduler", "system:volume-scheduler", "extension-apiserver-authentication-reader"}
    for binding in rendered.of("RoleBinding") + rendered.of("ClusterRoleBinding"):
        ref = binding["roleRef"]
        assert ref["name"] in builtin or rendered.has(ref["kind"], ref["name"]), binding["metadata"]["name"]
        for subject in binding["subjects"]:
            assert rendered.has("ServiceAccount", subject["name"])
            assert subject["namespace"] == NAMESPACE


# --- webhook configuration and certificates ------------------------------------------------------------


def test_webhook_configuration_follows_the_package_template(render: Render) -> None:
    chart = render().get("MutatingWebhookConfiguration", f"{P}-webhook")["webhooks"]
    package = configuration.template()["webhooks"]
    assert len(chart) == len(package) == 1
    for field in (
        "name",
        "admissionReviewVersions",
        "sideEffects",
        "failurePolicy",
        "timeoutSeconds",
        "reinvocationPolicy",
        "matchPolicy",
        "rules",
        "matchConditions",
    ):
        assert chart[0][field] == package[0][field], field
    assert chart[0]["clientConfig"]["service"] == {
        "namespace": NAMESPACE,
        "name": f"{P}-webhook",
        "port": 443,
        "path": "/mutate",
    }
    assert chart[0]["namespaceSelector"] == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NAMESPACE]}]
    }


def test_webhook_failure_policy_is_a_value(render: Render) -> None:
    hook = render({"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 3}}).get(
        "MutatingWebhookConfiguration", f"{P}-webhook"
    )["webhooks"][0]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 3)


def test_self_signed_certs(render: Render) -> None:
    rendered = render()
    secret = rendered.get("Secret", f"{P}-webhook-tls")
    assert "data" not in secret  # fma-certs fills it; the chart never overwrites it
    for kind, name, verb in ((("Job", f"{P}-certs-init-1", "init")), ("CronJob", f"{P}-certs-rotate", "rotate")):
        obj = rendered.get(kind, name)
        spec = (
            obj["spec"]["template"]["spec"] if kind == "Job" else obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        )
        assert spec["serviceAccountName"] == f"{P}-certs"
        box = spec["containers"][0]
        assert box["command"] == ["fma-certs"]
        assert box["args"][0] == verb
        assert f"--secret={NAMESPACE}/{P}-webhook-tls" in box["args"]
        assert f"--dns-name={P}-webhook.{NAMESPACE}.svc" in box["args"]
        assert f"--inject=MutatingWebhookConfiguration/{P}-webhook" in box["args"]
    volume = rendered.get("Deployment", f"{P}-webhook")["spec"]["template"]["spec"]["volumes"]
    tls = next(v for v in volume if v["name"] == "tls")
    assert tls["secret"]["secretName"] == f"{P}-webhook-tls"
    assert [i["key"] for i in tls["secret"]["items"]] == ["tls.crt", "tls.key"]  # the CA key is not mounted
    hook = rendered.get("MutatingWebhookConfiguration", f"{P}-webhook")
    assert "annotations" not in hook["metadata"]


def test_cert_manager_mode(render: Render) -> None:
    rendered = render(VALUE_SETS["cert-manager"])
    kinds = rendered.kinds()
    assert kinds["Certificate"] == [f"{P}-webhook", f"{P}-webhook-ca"]
    assert kinds["Issuer"] == [f"{P}-webhook-ca", f"{P}-webhook-selfsigned"]
    assert kinds["Job"] == [f"{P}-uninstall"]
    assert "CronJob" not in kinds
    assert not rendered.has("Secret", f"{P}-webhook-tls")
    assert not rendered.has("ServiceAccount", f"{P}-certs")
    assert not rendered.has("ClusterRole", f"{P}-certs")
    certificate = rendered.get("Certificate", f"{P}-webhook")
    assert certificate["spec"]["secretName"] == f"{P}-webhook-tls"
    assert f"{P}-webhook.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    hook = rendered.get("MutatingWebhookConfiguration", f"{P}-webhook")
    assert hook["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/{P}-webhook"}


def test_cert_manager_with_an_existing_issuer(render: Render) -> None:
    rendered = render(
        {"certs": {"mode": "cert-manager", "certManager": {"issuerRef": {"name": "corp", "kind": "ClusterIssuer"}}}}
    )
    assert rendered.kinds()["Certificate"] == [f"{P}-webhook"]
    assert "Issuer" not in rendered.kinds()
    assert rendered.get("Certificate", f"{P}-webhook")["spec"]["issuerRef"] == {"name": "corp", "kind": "ClusterIssuer"}


# --- launcher auth -------------------------------------------------------------------------------------


def test_launcher_auth_is_wired_into_the_controllers(render: Render) -> None:
    rendered = render()
    secret = rendered.get("Secret", f"{P}-launcher-token")
    assert set(secret["data"]) == {"token"}
    assert len(secret["data"]["token"]) >= 64  # base64 of 48 random characters
    controllers = rendered.get("Deployment", f"{P}-controllers")
    flags = args_of(controllers)
    assert flags["--launcher-token-secret"] == f"{P}-launcher-token"
    path = flags["--launcher-token-file"]
    mount = next(m for m in container(controllers)["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in controllers["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == f"{P}-launcher-token"


def test_auth_off(render: Render) -> None:
    rendered = render(VALUE_SETS["auth-off"])
    assert not rendered.has("Secret", f"{P}-launcher-token")
    flags = args_of(rendered.get("Deployment", f"{P}-controllers"))
    assert "--launcher-token-secret" not in flags
    assert "--launcher-token-file" not in flags


# --- admission policies --------------------------------------------------------------------------------


def test_policies(render: Render) -> None:
    rendered = render()
    for name in ("fma-immutable-fields", "fma-bound-serverreqpod", "fma-launcher-self-publish"):
        policy = rendered.get("ValidatingAdmissionPolicy", name)
        assert policy["spec"]["failurePolicy"] == "Fail"
        rules = policy["spec"]["matchConstraints"]["resourceRules"]
        assert [(r["apiGroups"], r["apiVersions"], r["operations"]) for r in rules] == [([""], ["v1"], ["UPDATE"])]
        binding = rendered.get("ValidatingAdmissionPolicyBinding", f"bind-{name}")
        assert binding["spec"]["policyName"] == name
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert "namespaceSelector" not in policy["spec"]["matchConstraints"]
    for name in ("fma-immutable-fields", "fma-bound-serverreqpod"):
        spec = rendered.get("ValidatingAdmissionPolicy", name)["spec"]
        assert spec["matchConstraints"]["resourceRules"][0]["resources"] == ["pods"]
        assert EXEMPTION in spec["matchConditions"][0]["expression"]
    messages = {
        name: [
            v.get("message", "").strip() for v in rendered.get("ValidatingAdmissionPolicy", name)["spec"]["validations"]
        ]
        for name in ("fma-immutable-fields", "fma-bound-serverreqpod")
    }
    assert messages == {"fma-immutable-fields": [IMMUTABLE_MESSAGE], "fma-bound-serverreqpod": [BOUND_MESSAGE]}
    immutable = rendered.get("ValidatingAdmissionPolicy", "fma-immutable-fields")["spec"]["validations"][0][
        "expression"
    ]
    for key in (
        keys.REQUESTER_ANNOTATION,
        keys.STATUS_ANNOTATION,
        keys.INSTANCE_ID_ANNOTATION,
        keys.SERVER_PORT_ANNOTATION,
        keys.VLLM_CONFIG_ANNOTATION,
        keys.ISC_ROUTING_METADATA_ANNOTATION,
        keys.DUAL_LABEL,
        keys.LAUNCHER_CONFIG_NAME_LABEL,
    ):
        assert f"'{key}'" in immutable, key
    self_publish = rendered.get("ValidatingAdmissionPolicy", "fma-launcher-self-publish")["spec"]
    assert self_publish["matchConditions"][0]["expression"] == (
        f"request.userInfo.username == 'system:serviceaccount:{NAMESPACE}:{P}-launcher'"
    )
    text = str(self_publish)
    assert "authentication.kubernetes.io/pod-name" in text
    assert keys.INSTANCES_ANNOTATION in text
    assert keys.VLLM_INSTANCE_SIGNATURE_ANNOTATION in text


def test_policies_off(render: Render) -> None:
    kinds = render(VALUE_SETS["policies-off"]).kinds()
    assert "ValidatingAdmissionPolicy" not in kinds
    assert "ValidatingAdmissionPolicyBinding" not in kinds


# --- scheduler -----------------------------------------------------------------------------------------


def test_scheduler_config_is_the_packaged_one_with_the_service_url(render: Render) -> None:
    rendered = render()
    chart = rendered_scheduler_config(rendered)
    assert chart == packaged_scheduler_config()
    deployment = rendered.get("Deployment", f"{P}-scheduler")
    box = container(deployment)
    assert box["image"] == f"registry.k8s.io/kube-scheduler:{KUBE_TAG}"
    assert box["command"] == ["kube-scheduler"]
    assert args_of(deployment)["--config"] == "/etc/fma-scheduler/config.yaml"
    assert chart["profiles"] == [{"schedulerName": names.SCHEDULER_NAME_DEFAULT}]
    assert args_of(rendered.get("Deployment", f"{P}-webhook"))["--scheduler-name"] == names.SCHEDULER_NAME_DEFAULT


def test_scheduler_values(render: Render) -> None:
    rendered = render(
        {
            "scheduler": {"image": {"tag": "v1.34.2"}, "name": "gpu-scheduler"},
            "extender": {"ignorable": False, "httpTimeoutSeconds": 2},
        }
    )
    chart = rendered_scheduler_config(rendered)
    assert chart["extenders"][0]["ignorable"] is False
    assert chart["extenders"][0]["httpTimeout"] == "2s"
    assert chart["profiles"] == [{"schedulerName": "gpu-scheduler"}]
    assert container(rendered.get("Deployment", f"{P}-scheduler"))["image"].endswith(":v1.34.2")
    assert args_of(rendered.get("Deployment", f"{P}-webhook"))["--scheduler-name"] == "gpu-scheduler"
    annotations = rendered.get("Deployment", f"{P}-scheduler")["spec"]["template"]["metadata"]["annotations"]
    default = render().get("Deployment", f"{P}-scheduler")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] != default["checksum/config"]


def test_scheduler_client_connection(render: Render) -> None:
    """kube-scheduler's defaults unless set; the schema refuses a rate it could not use, naming the field."""
    assert rendered_scheduler_config(render())["clientConnection"] == SCHEDULER_CLIENT_DEFAULTS
    fast = render({"scheduler": {"clientConnection": {"qps": 400, "burst": 800}}})
    assert rendered_scheduler_config(fast) == packaged_scheduler_config(client={"qps": 400, "burst": 800})
    for bad in ({"qps": 0}, {"burst": 0}, {"qps": "fast"}, {"rate": 5}):
        with pytest.raises(HelmFailed, match="clientConnection"):
            render({"scheduler": {"clientConnection": bad}})


def test_scheduler_off(render: Render) -> None:
    rendered = render({"scheduler": {"enabled": False}})
    assert not rendered.has("Deployment", f"{P}-scheduler")
    assert not any(b["roleRef"]["name"] == "system:kube-scheduler" for b in rendered.of("ClusterRoleBinding"))
    assert args_of(rendered.get("Deployment", f"{P}-webhook"))["--scheduler-name"] == ""


# --- network policy and metrics ------------------------------------------------------------------------


def test_network_policy(render: Render) -> None:
    policy = render().get("NetworkPolicy", f"{P}-providers")["spec"]
    assert policy["podSelector"] == {"matchExpressions": [{"key": keys.SLEEPING_LABEL, "operator": "Exists"}]}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "fma-controllers",
                            "app.kubernetes.io/instance": RELEASE,
                        }
                    }
                }
            ]
        }
    ]
    gateway = render({"networkPolicy": {"gateway": {"podSelector": {"matchLabels": {"app": "gw"}}}}}).get(
        "NetworkPolicy", f"{P}-providers"
    )["spec"]["ingress"][1]
    assert gateway["from"] == [{"podSelector": {"matchLabels": {"app": "gw"}}}]
    assert {"protocol": "TCP", "port": 8001} not in gateway["ports"]
    assert all(not (p["port"] <= 8001 <= p.get("endPort", p["port"])) for p in gateway["ports"])
    assert not render({"networkPolicy": {"enabled": False}}).has("NetworkPolicy", f"{P}-providers")


def test_pod_monitor(render: Render) -> None:
    monitor = render({"metrics": {"podMonitor": {"enabled": True}}}).get("PodMonitor", P)
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": RELEASE, "scrape": "true"}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


# --- helm test -----------------------------------------------------------------------------------------


def test_helm_test_hook(render: Render) -> None:
    rendered = render()
    pod = rendered.get("Pod", f"{P}-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = rendered.get("ConfigMap", f"{P}-test")["data"]["helm_test.py"]
    assert "def main()" in script
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["FMA_TEST_LAUNCHER_SA"] == f"{P}-launcher"
    assert env["FMA_TEST_SCHEDULER"] == names.SCHEDULER_NAME_DEFAULT
    for obj in rendered.objects:
        if obj["metadata"]["name"] == f"{P}-test":
            assert obj["metadata"]["annotations"]["helm.sh/hook"] == "test"


# --- uninstall -----------------------------------------------------------------------------------------


def test_uninstall_hook_releases_finalizers(render: Render) -> None:
    rendered = render()
    job = rendered.get("Job", f"{P}-uninstall")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    script = rendered.get("ConfigMap", f"{P}-uninstall")["data"]["release_finalizers.py"]
    assert f'"{keys.REQUESTER_FINALIZER}", "{keys.PROVIDER_FINALIZER}"' in script
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FMA_CONTROLLERS"] == f"{P}-controllers"
    selector = dict(pair.split("=") for pair in env["FMA_CONTROLLERS_SELECTOR"].split(","))
    labels = rendered.get("Deployment", f"{P}-controllers")["spec"]["selector"]["matchLabels"]
    assert selector == labels
    assert rules_of(rendered, "Role", f"{P}-uninstall") == [
        ("", "pods", "get", ""),
        ("", "pods", "list", ""),
        ("", "pods", "patch", ""),
        ("apps", "deployments", "patch", f"{P}-controllers"),
    ]
    for obj in rendered.objects:
        if obj["metadata"]["name"] == f"{P}-uninstall":
            assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
            assert "hook-succeeded" in obj["metadata"]["annotations"]["helm.sh/hook-delete-policy"]


def test_replicas_spread_over_nodes_and_priority_class(render: Render) -> None:
    rendered = render()
    for component in ("controllers", "webhook"):
        spec = rendered.get("Deployment", f"{P}-{component}")["spec"]["template"]["spec"]
        term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": f"fma-{component}",
            "app.kubernetes.io/instance": RELEASE,
        }
        assert "priorityClassName" not in spec
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    custom = render({"priorityClassName": "system-cluster-critical", "webhook": {"affinity": own}})
    assert custom.get("Deployment", f"{P}-webhook")["spec"]["template"]["spec"]["affinity"] == own
    for spec in [d["spec"]["template"]["spec"] for d in custom.of("Deployment")]:
        assert spec["priorityClassName"] == "system-cluster-critical"
