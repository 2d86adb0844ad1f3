"""The objects the e2e scenarios create, written the way a user writes them (pure builders).

Requesters are Deployments whose Pods look like ordinary vLLM Pods: a
container named ``inference-server`` that asks for ``nvidia.com/gpu`` and one
FMA annotation.  The webhook turns them into requesters and ``fma-scheduler``
places them; nothing here pre-converts a Pod.

Every container process the scenarios start carries ``FMA_E2E_RUN=<token>``
in its environment (launchers pass it on to their engine instances), so the
orphan check of ``invariants`` can find this session's engine processes among
everything else running on the machine.
"""

from __future__ import annotations

from typing import Any

from devcluster import samples

__all__ = [
    "API",
    "ENGINE_PORT_DIRECT",
    "RUN_ENV",
    "direct_deployment",
    "engine_options",
    "inference_server_config",
    "launcher_config",
    "launcher_population_policy",
    "vllm_deployment",
]

API = "fma.llm-d.ai/v1alpha1"
RUN_ENV = "FMA_E2E_RUN"
"""The environment variable that marks this session's processes."""
ENGINE_PORT_DIRECT = 8000
ISC_KEY = "dual-pods.llm-d.ai/inference-server-config"
ACTUATION_KEY = "dual-pods.llm-d.ai/actuation"
PROVIDER_LABELS_KEY = "dual-pods.llm-d.ai/provider-labels"
PROVIDER_OF = "e2e.fma.llm-d.ai/provider-of"
"""A label the direct-mode user asks to have moved onto the provider (``provider-labels``)."""


def engine_options(model: str = "tiny-llm") -> str:
    """The engine simulator's options with a fast timing model (0.2 s start, 1 GiB, wake in ~50 ms)."""
    return samples.engine_sim_options(model, startup_s=0.2, model_gib=1.0)


def launcher_config(
    name: str,
    *,
    service_account: str,
    run_token: str,
    max_instances: int = 2,
    template_labels: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A LauncherConfig whose launchers run ``fma-launcher`` with the engine simulator (``samples.launcher_config``
    from the e2e image, marked with this session's ``RUN_ENV``), with optional Pod template labels and annotations."""
    body = samples.launcher_config(
        name,
        service_account=service_account,
        max_instances=max_instances,
        image="ghcr.io/llm-d/fma-launcher:0.1.0",  # built by make images (FMA_E2E_IMAGES=1)
        env={RUN_ENV: run_token},
    )
    if template_labels or template_annotations:
        metadata = {"labels": dict(template_labels or {}), "annotations": dict(template_annotations or {})}
        body["spec"]["podTemplate"]["metadata"] = metadata
    return body


def inference_server_config(
    name: str,
    *,
    launcher_config_name: str,
    options: str,
    port: int,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An InferenceServerConfig with optional routing labels and annotations."""
    server: dict[str, Any] = {"port": port, "options": options}
    if labels:
        server["labels"] = dict(labels)
    if annotations:
        server["annotations"] = dict(annotations)
    return {
        "apiVersion": API,
        "kind": "InferenceServerConfig",
        "metadata": {"name": name},
        "spec": {"modelServerConfig": server, "launcherConfigName": launcher_config_name},
    }


def launcher_population_policy(name: str, *, launcher_config_name: str, count: int) -> dict[str, Any]:
    """``count`` launchers of the LauncherConfig on every GPU node (``nvidia.com/gpu.present=true``)."""
    return samples.launcher_population_policy(
        name, launcher_config_name=launcher_config_name, count=count, match_labels={"nvidia.com/gpu.present": "true"}
    )


def _deployment(name: str, template: dict[str, Any], replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


def vllm_deployment(
    name: str, isc: str, *, node: str | None = None, gpus: int = 1, replicas: int = 1
) -> dict[str, Any]:
    """A launcher-mode set: an ordinary vLLM Deployment plus the ``inference-server-config`` annotation."""
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "inference-server",
                "image": "vllm/vllm-openai:v0.11.0",
                "command": ["vllm", "serve", "tiny-llm"],
                "ports": [{"name": "http", "containerPort": 8000}],
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    template = {"metadata": {"labels": {"app": name}, "annotations": {ISC_KEY: isc}}, "spec": spec}
    return _deployment(name, template, replicas)


def direct_deployment(
    name: str,
    model: str,
    *,
    run_token: str,
    node: str | None = None,
    nodes: list[str] | None = None,
    replicas: int = 1,
) -> dict[str, Any]:
    """A direct-mode set: a vLLM-style server container (the engine simulator) with ``actuation: direct``.

    The ``provider-of`` label is listed in ``provider-labels``, so the webhook
    moves it onto the provider (as one would an InferencePool selector).
    ``node`` pins the set to one node; ``nodes`` allows any of several.
    """
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "inference-server",
                "image": "vllm/vllm-openai:v0.11.0",
                "command": ["fma-engine-sim", "serve", model],
                "args": [
                    "--host",
                    "$(POD_IP)",
                    "--port",
                    str(ENGINE_PORT_DIRECT),
                    *engine_options(model).split()[2:],
                ],
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": RUN_ENV, "value": run_token},
                ],
                "ports": [{"name": "http", "containerPort": ENGINE_PORT_DIRECT}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": ENGINE_PORT_DIRECT}, "periodSeconds": 1},
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }
        ],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if nodes:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}]}
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }
    template = {
        "metadata": {
            "labels": {"app": name, PROVIDER_OF: name},
            "annotations": {ACTUATION_KEY: "direct", PROVIDER_LABELS_KEY: PROVIDER_OF},
        },
        "spec": spec,
    }
    return _deployment(name, template, replicas)
