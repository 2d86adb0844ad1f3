"""The generated CRDs work in a real apiserver.

They are applied as generated (``crds/manifests``), become Established, print
their columns in ``kubectl get``, keep every field the models know (nothing is
pruned, status included), and make the apiserver itself refuse the invalid
objects users are most likely to write, with a message naming the field.  The
documented examples are valid for the models and for the apiserver.

The CRDs are cluster-scoped and shared with other tests of the session, so they
are applied idempotently and left installed; every object lives in a namespace
of its own that is deleted afterwards.
"""

from __future__ import annotations

import datetime
import functools
import pathlib
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

import crds
from crds import decoding, inference_server_config, kinds, launcher_config, launcher_population_policy, manifests
from devcluster import binaries, control_plane, waiting

pytestmark = pytest.mark.cluster

_EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples"


class _Kubectl:
    """Runs the pinned kubectl against the session cluster, with a private discovery cache."""

    def __init__(self, cluster: control_plane.ClusterState, cache_dir: pathlib.Path) -> None:
        self._base = [
            str(binaries.locate().kubectl),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--cache-dir",
            str(cache_dir),
        ]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._base, *args], check=False, input=stdin, capture_output=True, text=True, timeout=60
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
        return result.stdout


def _established(api: k8s.ApiextensionsV1Api, name: str) -> bool:
    try:
        crd = api.read_custom_resource_definition(name)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
    return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"


@pytest.fixture(scope="module")
def kubectl(devcluster: control_plane.ClusterState, tmp_path_factory: pytest.TempPathFactory) -> _Kubectl:
    """kubectl for this module, after the generated CRDs are applied and Established."""
    tool = _Kubectl(devcluster, tmp_path_factory.mktemp("kubectl-cache"))
    tool.ok("apply", "--server-side", "--force-conflicts", "-f", str(manifests.package_dir()))
    return tool


@pytest.fixture(scope="module")
def extensions(kube_api_client: k8s.ApiClient, kubectl: _Kubectl) -> k8s.ApiextensionsV1Api:
    """The apiextensions API, once every FMA CRD is Established."""
    api = k8s.ApiextensionsV1Api(kube_api_client)
    for kind in kinds.ALL:
        waiting.wait_for(functools.partial(_established, api, kind.crd_name), timeout=60, what=f"{kind.crd_name}")
    return api


@pytest.fixture
def namespace(kube_api_client: k8s.ApiClient, extensions: k8s.ApiextensionsV1Api) -> Iterator[str]:
    """A fresh namespace for this test's objects, deleted afterwards (without waiting)."""
    name = f"crds-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_api_client)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _example(name: str) -> dict[str, Any]:
    document = yaml.safe_load((_EXAMPLES / name).read_text())
    assert isinstance(document, dict)
    return document


def _get(api: k8s.CustomObjectsApi, kind: kinds.ResourceKind, namespace: str, name: str) -> dict[str, Any]:
    raw = api.get_namespaced_custom_object(kinds.GROUP, kinds.VERSION, namespace, kind.plural, name)
    assert isinstance(raw, dict)
    return raw


def test_generated_crds_become_established(extensions: k8s.ApiextensionsV1Api) -> None:
    for kind in kinds.ALL:
        crd = extensions.read_custom_resource_definition(kind.crd_name)
        assert crd.spec.names.short_names == [kind.short_name]
        assert crd.spec.names.categories == [kinds.CATEGORY]
        assert crd.spec.scope == "Namespaced"
        subresources = crd.spec.versions[0].subresources
        assert subresources is not None
        assert subresources.status == {}
        assert _established(extensions, kind.crd_name)


def test_kubectl_get_prints_the_columns(kubectl: _Kubectl, namespace: str) -> None:
    for example in ("launcherconfig.yaml", "inferenceserverconfig.yaml", "launcherpopulationpolicy.yaml"):
        kubectl.ok("apply", "-n", namespace, "-f", str(_EXAMPLES / example))

    output = kubectl.ok("get", "isc,lcfg,lpp", "-n", namespace)

    rows = [line.split() for line in output.splitlines() if line.strip()]
    assert ["NAME", "LAUNCHERCONFIG", "PORT", "AGE"] in rows
    assert ["NAME", "MAXINSTANCES", "AGE"] in rows
    assert ["NAME", "LAUNCHERCONFIGS", "AGE"] in rows
    isc_row = next(row for row in rows if row[0].endswith("/qwen3-small"))
    assert isc_row[1:3] == ["vllm-launcher", "8005"]
    lcfg_row = next(row for row in rows if row[0].endswith("/vllm-launcher"))
    assert lcfg_row[1] == "4"
    lpp_row = next(row for row in rows if row[0].endswith("/gpu-nodes"))
    assert lpp_row[1] == "vllm-launcher"
    wide = kubectl.ok("get", "isc", "-n", namespace, "-o", "wide")
    assert wide.splitlines()[0].split() == ["NAME", "LAUNCHERCONFIG", "PORT", "ACCEPTED", "AGE"]
    category = kubectl.ok("get", "fma", "-n", namespace, "-o", "name")
    assert sorted(category.split()) == sorted(
        [
            f"inferenceserverconfig.{kinds.GROUP}/qwen3-small",
            f"launcherconfig.{kinds.GROUP}/vllm-launcher",
            f"launcherpopulationpolicy.{kinds.GROUP}/gpu-nodes",
        ]
    )


_BAD_LPP = """
apiVersion: fma.llm-d.ai/v1alpha1
kind: LauncherPopulationPolicy
metadata: {name: twice}
spec:
  enhancedNodeSelector: {labelSelector: {}}
  countForLauncher:
  - {launcherConfigName: same, launcherCount: 1}
  - {launcherConfigName: same, launcherCount: 2}
"""

_ISC_WITH_PORT = """
apiVersion: fma.llm-d.ai/v1alpha1
kind: InferenceServerConfig
metadata: {name: port-%(port)d}
spec:
  launcherConfigName: lc
  modelServerConfig: {port: %(port)d}
"""

_LPP_WITH_RANGE = """
apiVersion: fma.llm-d.ai/v1alpha1
kind: LauncherPopulationPolicy
metadata: {name: range-%(name)s}
spec:
  enhancedNodeSelector:
    labelSelector: {}
    allocatableResources: {memory: {min: %(min)s, max: %(max)s}}
  countForLauncher: []
"""

_BAD_LC = """
apiVersion: fma.llm-d.ai/v1alpha1
kind: LauncherConfig
metadata: {name: zero}
spec:
  maxInstances: 0
  podTemplate:
    spec:
      containers: [{name: inference-server, image: x}]
"""


@pytest.mark.parametrize(
    ("manifest", "field", "complaint"),
    [
        pytest.param(_BAD_LPP, "spec.countForLauncher[1]", "Duplicate value", id="lpp-duplicate-launcherConfigName"),
        pytest.param(
            _ISC_WITH_PORT % {"port": 0}, "spec.modelServerConfig.port", "greater than or equal to 1", id="isc-port-0"
        ),
        pytest.param(
            _ISC_WITH_PORT % {"port": 70000},
            "spec.modelServerConfig.port",
            "less than or equal to 65535",
            id="isc-port-70000",
        ),
        pytest.param(_BAD_LC, "spec.maxInstances", "greater than or equal to 1", id="lc-maxInstances-0"),
        pytest.param(
            _LPP_WITH_RANGE % {"name": "a", "min": "2Gi", "max": "1G"},
            "spec.enhancedNodeSelector.allocatableResources",
            "min must not be greater than max",
            id="lpp-range-min-above-max",
        ),
    ],
)
def test_apiserver_rejects_invalid_objects_naming_the_field(
    kubectl: _Kubectl, namespace: str, manifest: str, field: str, complaint: str
) -> None:
    result = kubectl.run("create", "-n", namespace, "-f", "-", stdin=manifest)

    assert result.returncode != 0, f"the apiserver accepted {manifest}"
    assert field in result.stderr
    assert complaint in result.stderr
    # the model refuses the same object, naming the same field
    with pytest.raises(crds.InvalidObject) as refused:
        decoding.decode_any(yaml.safe_load(manifest))
    assert any(path.startswith(field.split("[", maxsplit=1)[0]) for path, _ in refused.value.problems)


def test_apiserver_accepts_the_boundary_values(kubectl: _Kubectl, namespace: str) -> None:
    for port in (1, 65535):
        kubectl.ok("create", "-n", namespace, "-f", "-", stdin=_ISC_WITH_PORT % {"port": port})
    kubectl.ok("create", "-n", namespace, "-f", "-", stdin=_BAD_LC.replace("maxInstances: 0", "maxInstances: 1"))
    for name, low, high in (("int-str", "1", "'2Gi'"), ("equal", "'1Gi'", "1073741824"), ("milli", "'500m'", "'0.5'")):
        kubectl.ok(
            "create", "-n", namespace, "-f", "-", stdin=_LPP_WITH_RANGE % {"name": name, "min": low, "max": high}
        )


def _full_objects() -> list[crds.CustomResource]:
    """One object of each kind with every optional field set, to prove the schema prunes nothing."""
    isc = inference_server_config.InferenceServerConfig.model_validate(
        {
            "metadata": {"name": "full"},
            "spec": {
                "launcherConfigName": "full",
                "modelServerConfig": {
                    "port": 8000,
                    "options": "--model m --enable-sleep-mode",
                    "env_vars": {"A": "1", "B": ""},
                    "labels": {"example.com/pool": "p"},
                    "annotations": {"example.com/note": "some text"},
                },
            },
        }
    )
    lc = launcher_config.LauncherConfig.model_validate(
        {
            "metadata": {"name": "full"},
            "spec": {
                "maxInstances": 3,
                "podTemplate": {
                    "metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "inference-server",
                                "image": "img",
                                "env": [{"name": "X", "value": "y"}],
                                "ports": [{"containerPort": 8001, "name": "launcher", "protocol": "TCP"}],
                            }
                        ],
                        "tolerations": [{"key": "k", "operator": "Exists"}],
                    },
                },
            },
        }
    )
    lpp = launcher_population_policy.LauncherPopulationPolicy.model_validate(
        {
            "metadata": {"name": "full"},
            "spec": {
                "enhancedNodeSelector": {
                    "labelSelector": {
                        "matchLabels": {"a": "b"},
                        "matchExpressions": [{"key": "zone", "operator": "In", "values": ["x", "y"]}],
                    },
                    "allocatableResources": {"nvidia.com/gpu": {"min": 1, "max": "8"}, "memory": {"min": "64Gi"}},
                },
                "countForLauncher": [
                    {"launcherConfigName": "full", "launcherCount": 2},
                    {"launcherConfigName": "other", "launcherCount": 0},
                ],
            },
        }
    )
    return [isc, lc, lpp]


def _kind_of(obj: crds.CustomResource) -> kinds.ResourceKind:
    return next(kind for kind in kinds.ALL if kind.kind == obj.kind)


def test_every_field_survives_the_apiserver(kube_api_client: k8s.ApiClient, namespace: str) -> None:
    api = k8s.CustomObjectsApi(kube_api_client)
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    for obj in _full_objects():
        kind = _kind_of(obj)
        api.create_namespaced_custom_object(kinds.GROUP, kinds.VERSION, namespace, kind.plural, obj.to_raw())
        stored = decoding.decode_any(_get(api, kind, namespace, "full"))
        assert stored.spec == obj.spec

        status = {
            "observedGeneration": stored.metadata.generation,
            "errors": ["something is off"],
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "False",
                    "observedGeneration": stored.metadata.generation,
                    "lastTransitionTime": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "reason": "InvalidSpec",
                    "message": "why",
                }
            ],
        }
        api.patch_namespaced_custom_object_status(
            kinds.GROUP, kinds.VERSION, namespace, kind.plural, "full", {"status": status}
        )
        with_status = decoding.decode_any(_get(api, kind, namespace, "full"))
        assert with_status.status is not None
        assert with_status.status.to_raw() == status
        assert with_status.status.condition("Accepted") is not None


def test_documented_examples_are_valid_and_apply(
    kubectl: _Kubectl, kube_api_client: k8s.ApiClient, namespace: str
) -> None:
    api = k8s.CustomObjectsApi(kube_api_client)
    for name in ("launcherconfig.yaml", "inferenceserverconfig.yaml", "launcherpopulationpolicy.yaml"):
        example = decoding.decode_any(_example(name))
        kubectl.ok("apply", "-n", namespace, "-f", str(_EXAMPLES / name))
        stored = decoding.decode_any(_get(api, _kind_of(example), namespace, example.metadata.name or ""))
        assert stored.spec == example.spec

    deployment = _example("requesters-deployment.yaml")
    # Applied with no replicas: the point is that the apiserver accepts it; requester Pods would need the
    # whole FMA stack, and this cluster is shared with other tests.
    deployment["spec"]["replicas"] = 0
    kubectl.ok("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(deployment))
    applied = k8s.AppsV1Api(kube_api_client).read_namespaced_deployment("qwen3-small", namespace)
    assert applied.spec.template.metadata is not None
    annotations = applied.spec.template.metadata.annotations or {}
    assert annotations[crds.keys.INFERENCE_SERVER_CONFIG_ANNOTATION] == "qwen3-small"
