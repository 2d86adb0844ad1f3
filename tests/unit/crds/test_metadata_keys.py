"""The Pod metadata keys are spelt exactly as the contract says, and documented."""

from __future__ import annotations

import ast
import pathlib

import pytest

from crds import keys, kinds, names

_ANNOTATIONS = {
    "SERVER_PATCH_ANNOTATION": "dual-pods.llm-d.ai/server-patch",
    "INFERENCE_SERVER_CONFIG_ANNOTATION": "dual-pods.llm-d.ai/inference-server-config",
    "ADMIN_PORT_ANNOTATION": "dual-pods.llm-d.ai/admin-port",
    "STATUS_ANNOTATION": "dual-pods.llm-d.ai/status",
    "ACCELERATORS_ANNOTATION": "dual-pods.llm-d.ai/accelerators",
    "REQUESTER_ANNOTATION": "dual-pods.llm-d.ai/requester",
    "NOMINAL_ANNOTATION": "dual-pods.llm-d.ai/nominal",
    "INSTANCE_ID_ANNOTATION": "dual-pods.llm-d.ai/instance-id",
    "SERVER_PORT_ANNOTATION": "dual-pods.llm-d.ai/server-port",
    "VLLM_CONFIG_ANNOTATION": "dual-pods.llm-d.ai/vllm-config",
    "ISC_ROUTING_METADATA_ANNOTATION": "dual-pods.llm-d.ai/isc-routing-metadata",
    "LAUNCHER_CONFIG_HASH_ANNOTATION": "dual-pods.llm-d.ai/launcher-config-hash",
    "LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION": "dual-pods.llm-d.ai/launcher-populator-template-hash",
    "VLLM_INSTANCE_SIGNATURE_ANNOTATION": "dual-pods.llm-d.ai/vllm-instance-signature",
    "LAUNCHER_BASED_ANNOTATION": "dual-pods.llm-d.ai/launcher-based",
    "ACTUATION_ANNOTATION": "dual-pods.llm-d.ai/actuation",
    "PROVIDER_LABELS_ANNOTATION": "dual-pods.llm-d.ai/provider-labels",
    "CONVERTED_ANNOTATION": "dual-pods.llm-d.ai/converted",
    "INSTANCES_ANNOTATION": "dual-pods.llm-d.ai/instances",
    "CONFIG_KEY_ANNOTATION": "dual-pods.llm-d.ai/config-key",
    "DUAL_LABEL": "dual-pods.llm-d.ai/dual",
    "INSTANCE_LABEL": "dual-pods.llm-d.ai/instance",
    "SLEEPING_LABEL": "dual-pods.llm-d.ai/sleeping",
    "LAUNCHER_CONFIG_NAME_LABEL": "dual-pods.llm-d.ai/launcher-config-name",
    "NODE_NAME_LABEL": "dual-pods.llm-d.ai/node-name",
    "LAUNCHER_STUCK_LABEL": "dual-pods.llm-d.ai/launcher-stuck",
    "COMPONENT_LABEL": "app.kubernetes.io/component",
    "PROVIDER_FINALIZER": "dual-pods.llm-d.ai/provider",
    "REQUESTER_FINALIZER": "dual-pods.llm-d.ai/requester",
}


@pytest.mark.parametrize(("name", "expected"), [pytest.param(n, v, id=n) for n, v in _ANNOTATIONS.items()])
def test_key_has_the_contracted_spelling(name: str, expected: str) -> None:
    assert getattr(keys, name) == expected


def test_fixed_names_have_the_contracted_spelling() -> None:
    assert names.INFERENCE_SERVER_CONTAINER == "inference-server"
    assert names.NOTIFIER_CONTAINER == "state-change-reflector"
    assert names.DPC_FIELD_MANAGER == "dual-pods-controller"
    assert names.POPULATOR_FIELD_MANAGER == "launcher-populator"
    assert (names.GPU_MAP_CONFIGMAP, names.GPU_ALLOCS_CONFIGMAP) == ("gpu-map", "gpu-allocs")
    assert (names.INSTANCE_ISC_NAME, names.INSTANCE_INFERENCE_PORT) == ("isc-name", "inference-port")
    assert names.LAUNCHER_PORT == 8001
    assert names.ADMIN_PORT_DEFAULT == 8081
    assert kinds.API_VERSION == f"{kinds.GROUP}/{kinds.VERSION}" == "fma.llm-d.ai/v1alpha1"


def test_groups_of_keys_match_the_admission_policies() -> None:
    assert set(keys.BOUND_LAUNCHER_ANNOTATIONS) == {
        keys.INSTANCE_ID_ANNOTATION,
        keys.SERVER_PORT_ANNOTATION,
        keys.VLLM_CONFIG_ANNOTATION,
        keys.ISC_ROUTING_METADATA_ANNOTATION,
    }
    assert set(keys.IMMUTABLE_ANNOTATIONS) == {keys.REQUESTER_ANNOTATION, keys.STATUS_ANNOTATION} | set(
        keys.BOUND_LAUNCHER_ANNOTATIONS
    )
    assert set(keys.IMMUTABLE_LABELS) == {keys.DUAL_LABEL, keys.LAUNCHER_CONFIG_NAME_LABEL}


@pytest.mark.parametrize("module", [keys, names, kinds], ids=lambda m: m.__name__)
def test_every_constant_has_a_docstring(module: object) -> None:
    tree = ast.parse(pathlib.Path(module.__file__).read_text())  # type: ignore[attr-defined]
    body = tree.body
    for index, node in enumerate(body):
        target = None
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target = node.target.id
        if target is None or not target.isupper() or target.startswith("_"):
            continue
        following = body[index + 1] if index + 1 < len(body) else None
        documented = (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        )
        assert documented, f"{target} has no docstring"
