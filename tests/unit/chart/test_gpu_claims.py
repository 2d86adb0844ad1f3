"""The chart's ``gpuClaims`` and ``dra`` values (docs/install.md, "DRA clusters"): the webhook's claim flags
and sleeper cache, the controllers' claim keeper with exactly the verbs it uses on ResourceClaims, the optional
DeviceClass (the same object ``crds.gpu_claims`` describes), all parsed by the real CLIs; bad values are refused
with the field named."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from controllers import settings as controllers_settings
from crds import gpu_claims
from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, HelmFailed, Rendered, run_helm
from tests.unit.chart.test_commands import container_args
from webhook import __main__ as webhook_main
from webhook import settings as webhook_settings

P = f"{RELEASE}-fma"
Render = Callable[..., Rendered]
Grant = tuple[str, str, str]  # apiGroup, resource, verb
CLAIMS = "resource.k8s.io"
KEEPER_VERBS = {"get", "list", "watch", "create"}
DRA = {"gpuClaims": "dra"}


def _webhook(rendered: Rendered) -> webhook_settings.Settings:
    args = container_args(rendered, "Deployment", f"{P}-webhook")
    given = {k: v for k, v in vars(webhook_main._serve_parser().parse_args(args)).items() if v is not None}
    return webhook_settings.Settings(**given)


def _controllers(rendered: Rendered) -> controllers_settings.Settings:
    return controllers_settings.parse_args(container_args(rendered, "Deployment", f"{P}-controllers"))


def _grants(rendered: Rendered, kind: str, name: str) -> set[Grant]:
    rules = rendered.get(kind, name)["rules"]
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _claim_grants(rendered: Rendered) -> set[str]:
    every = set()
    for kind in ("Role", "ClusterRole"):
        for obj in rendered.of(kind):
            every |= {v for g, r, v in _grants(rendered, kind, obj["metadata"]["name"]) if g == CLAIMS}
    return every


def _sleeper_cache_rbac(rendered: Rendered) -> bool:
    cluster = _grants(rendered, "ClusterRole", f"{P}-webhook")
    role = _grants(rendered, "Role", f"{P}-webhook")
    wanted = {("", r, v) for r in ("pods", "nodes") for v in ("list", "watch")}
    wanted |= {("fma.llm-d.ai", "launcherconfigs", v) for v in ("list", "watch")}
    return wanted <= cluster and {("", "configmaps", "list"), ("", "configmaps", "watch")} <= role


def test_the_default_is_the_device_plugin_with_no_claim_rights(render: Render) -> None:
    rendered = render()
    webhook = _webhook(rendered)
    assert (webhook.gpu_claims, webhook.dra_device_class, webhook.dra_driver) == (
        "device-plugin",
        gpu_claims.DEVICE_CLASS_DEFAULT,
        gpu_claims.DRIVER_DEFAULT,
    )
    assert not webhook.dra
    assert not webhook.hints
    assert not _sleeper_cache_rbac(rendered)
    assert not _controllers(rendered).enable_gpu_claims
    assert _claim_grants(rendered) == set()
    assert not rendered.of("DeviceClass")


def test_dra_turns_on_the_webhook_claims_and_the_claim_keeper(render: Render) -> None:
    rendered = render({**DRA, "dra": {"driver": "gpu.example.com", "deviceClass": {"name": "big-gpus"}}})
    webhook = _webhook(rendered)
    assert webhook.dra
    assert (webhook.dra_device_class, webhook.dra_driver) == ("big-gpus", "gpu.example.com")
    # The sleeper cache reads the release namespace, as for hints, and its RBAC is granted.
    assert webhook.placement_namespace == NAMESPACE
    assert webhook.sleeper_limit == 1
    assert _sleeper_cache_rbac(rendered)
    assert _controllers(rendered).enable_gpu_claims
    # Exactly the verbs of controllers/claim_keeper.py, in the release namespace only (no delete: the
    # garbage collector removes a claim through its ownerReference).
    role = _grants(rendered, "Role", f"{P}-controllers")
    assert {v for g, r, v in role if g == CLAIMS} == KEEPER_VERBS
    assert {r for g, r, _ in role if g == CLAIMS} == {"resourceclaims"}
    assert _claim_grants(rendered) == KEEPER_VERBS
    for obj in rendered.of("ClusterRole"):
        assert all(g != CLAIMS for g, _, _ in _grants(rendered, "ClusterRole", obj["metadata"]["name"]))
    # The DeviceClass is the cluster's (or the driver's) unless asked for.
    assert not rendered.of("DeviceClass")


def test_the_claim_keeper_alone_for_annotated_pods(render: Render) -> None:
    rendered = render({"controllers": {"enableGpuClaims": True}})
    assert _controllers(rendered).enable_gpu_claims
    assert _claim_grants(rendered) == KEEPER_VERBS
    webhook = _webhook(rendered)
    assert webhook.gpu_claims == "device-plugin"
    assert not _sleeper_cache_rbac(rendered)


@pytest.mark.parametrize("placement", ["hints", "hints+extender"])
def test_dra_with_hints_keeps_one_set_of_sleeper_flags(render: Render, placement: str) -> None:
    rendered = render({**DRA, "placement": placement})
    args = container_args(rendered, "Deployment", f"{P}-webhook")
    assert sum(a.startswith("--placement-namespace=") for a in args) == 1
    webhook = _webhook(rendered)
    assert webhook.dra
    assert webhook.hints


@pytest.mark.parametrize(
    "dra", [{}, {"driver": "gpu.example.com", "deviceClass": {"name": "big-gpus"}}], ids=["defaults", "custom"]
)
def test_the_device_class_is_the_one_the_code_describes(render: Render, dra: dict[str, Any]) -> None:
    values = {**DRA, "dra": {**dra, "deviceClass": {**dra.get("deviceClass", {}), "create": True}}}
    rendered = render(values)
    [made] = rendered.of("DeviceClass")
    assert "namespace" not in made["metadata"]
    expected = gpu_claims.device_class_body(
        dra.get("deviceClass", {}).get("name", gpu_claims.DEVICE_CLASS_DEFAULT),
        dra.get("driver", gpu_claims.DRIVER_DEFAULT),
    )
    assert {k: made[k] for k in ("apiVersion", "kind", "spec")} == {
        k: expected[k] for k in ("apiVersion", "kind", "spec")
    }
    assert made["metadata"]["name"] == expected["metadata"]["name"]
    assert made["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_the_device_class_needs_resource_v1(helm: Any) -> None:
    values = {"dra": {"deviceClass": {"create": True}}}
    with pytest.raises(HelmFailed, match=r"dra\.deviceClass\.create needs Kubernetes 1\.34"):
        run_helm(
            helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.33.0", values=values
        )


def test_dra_without_lookups_is_refused(render: Render) -> None:
    with pytest.raises(HelmFailed, match=r"gpuClaims dra needs webhook\.lookups"):
        render({**DRA, "webhook": {"lookups": False}})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"gpuClaims": "DRA"}, "/gpuClaims'"),
        ({"gpuClaims": "nvidia.com/gpu"}, "/gpuClaims'"),
        ({"gpuClaims": True}, "/gpuClaims'"),
        ({"dra": {"driver": "GPU.nvidia.com"}}, "/dra/driver'"),
        ({"dra": {"driver": ""}}, "/dra/driver'"),
        ({"dra": {"driver": "a" * 64}}, "/dra/driver'"),
        ({"dra": {"deviceClass": {"name": "fma_gpu"}}}, "/dra/deviceClass/name'"),
        ({"dra": {"deviceClass": {"create": "yes"}}}, "/dra/deviceClass/create'"),
        ({"dra": {"deviceclass": {"name": "x"}}}, "/dra': additional properties 'deviceclass'"),
        ({"controllers": {"enableGpuClaims": "true"}}, "/controllers/enableGpuClaims'"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(render: Render, values: dict[str, Any], field: str) -> None:
    with pytest.raises(HelmFailed, match=re.escape(f"at '{field}")):
        render(values)
