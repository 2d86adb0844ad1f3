"""FMA objects for the development cluster: the demo, the tests and the benchmarks build them here.

On the development cluster every Pod shares the host's network namespace,
so the agents in these objects listen on their Pod IP (``$(POD_IP)`` and
``FMA_REQUESTER_HOST``).  Pure: each function returns a raw object to create.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

__all__ = [
    "deployment",
    "direct_requester_template",
    "engine_sim_options",
    "inference_server_config",
    "launcher_config",
    "launcher_population_policy",
    "launcher_service_account",
    "requester_template",
]

_API = "fma.llm-d.ai/v1alpha1"


def _field_env(var: str, path: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}


_POD_IP = _field_env("POD_IP", "status.podIP")
_IDENTITY_FIELDS = (("POD_NAME", "metadata.name"), ("NAMESPACE", "metadata.namespace"), ("NODE_NAME", "spec.nodeName"))
"""What a launcher without a gpu-map file needs to find its Pod and its node's GPUs (``gpu-map``)."""


def engine_sim_options(
    model: str = "tiny-llm", *, startup_s: float = 0.3, model_gib: float = 1.0, gib_per_s: float | None = None
) -> str:
    """vLLM-style options for the engine simulator (sleep mode on)."""
    options = f"--model {model} --enable-sleep-mode --sim-startup-seconds {startup_s:g} --sim-model-gib {model_gib:g}"
    if gib_per_s is not None:
        options += f" --sim-h2d-gib-per-s {gib_per_s:g} --sim-d2h-gib-per-s {gib_per_s:g}"
    return options


def launcher_config(
    name: str,
    *,
    gpu_map_file: pathlib.Path | None = None,
    log_dir: pathlib.Path | None = None,
    service_account: str | None = None,
    max_instances: int = 2,
    image: str = "ghcr.io/llm-d/fma-launcher:dev",
    command: list[str] | None = None,
    engine: str = "sim",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A LauncherConfig whose launchers run ``fma-launcher --engine ENGINE`` on their Pod IP.

    Hand-wired (``gpu_map_file``, usually with ``log_dir``): the launcher reads its GPUs from that
    file.  Without ``gpu_map_file`` it reads its node's entry of the ``gpu-map`` ConfigMap of its
    namespace, so the template gives it ``POD_NAME``, ``NAMESPACE`` and ``NODE_NAME`` as well as
    ``POD_IP`` (the chart's way).  With ``service_account`` (the chart's launcher account, or see
    ``launcher_service_account``) the launchers run as it and publish their inventory on their Pods;
    without, as the namespace's ``default`` account, which may not.  ``env``: more variables,
    after those.
    """
    args = ["--engine", engine, "--host", "$(POD_IP)"]
    if gpu_map_file is not None:
        args += ["--gpu-map-file", str(gpu_map_file)]
    args.append("--no-nvml")
    if log_dir is not None:
        args += ["--log-dir", str(log_dir)]
    args += ["--stop-grace-seconds", "3"]
    container_env: list[dict[str, Any]] = [_POD_IP]
    if gpu_map_file is None:
        container_env += [_field_env(var, path) for var, path in _IDENTITY_FIELDS]
    container_env += [{"name": var, "value": value} for var, value in (env or {}).items()]
    container = {
        "name": "inference-server",
        "image": image,
        "command": command or ["fma-launcher"],
        "args": args,
        "env": container_env,
    }
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 5, "containers": [container]}
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": _API,
        "kind": "LauncherConfig",
        "metadata": {"name": name},
        "spec": {"maxInstances": max_instances, "podTemplate": {"spec": spec}},
    }


def launcher_service_account(name: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """A ServiceAccount for launchers and the rights their publisher needs, as (kind, body) to create.

    The chart's launcher account has the same rule (``patch`` on Pods in the namespace) and its
    admission policy ``fma-launcher-self-publish`` narrows it to the launcher's own Pod's two
    published annotations; outside the chart the Role alone applies.
    """
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    return [
        ("ServiceAccount", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
        (
            "Role",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}],
            },
        ),
        (
            "RoleBinding",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": role_ref,
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ),
    ]


def inference_server_config(
    name: str,
    *,
    launcher_config_name: str,
    options: str,
    port: int = 8005,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An InferenceServerConfig."""
    server: dict[str, Any] = {"port": port, "options": options}
    if labels:
        server["labels"] = labels
    return {
        "apiVersion": _API,
        "kind": "InferenceServerConfig",
        "metadata": {"name": name},
        "spec": {"modelServerConfig": server, "launcherConfigName": launcher_config_name},
    }


def launcher_population_policy(
    name: str, *, launcher_config_name: str, count: int, match_labels: dict[str, str]
) -> dict[str, Any]:
    """A LauncherPopulationPolicy: ``count`` idle launchers on every node with ``match_labels``."""
    return {
        "apiVersion": _API,
        "kind": "LauncherPopulationPolicy",
        "metadata": {"name": name},
        "spec": {
            "enhancedNodeSelector": {"labelSelector": {"matchLabels": dict(match_labels)}},
            "countForLauncher": [{"launcherConfigName": launcher_config_name, "launcherCount": count}],
        },
    }


def requester_template(isc: str, app: str, *, node: str | None = None, gpus: int = 1) -> dict[str, Any]:
    """A launcher-mode requester Pod template running the requester agent (as the webhook would make it)."""
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "inference-server",
                "image": "ghcr.io/llm-d/fma-requester:dev",
                "command": ["fma-requester"],
                "env": [
                    {"name": "PROBES_PORT", "value": "8080"},
                    {"name": "SPI_PORT", "value": "8081"},
                    {"name": "FMA_REQUESTER_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
            }
        ],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "metadata": {"labels": {"app": app}, "annotations": {"dual-pods.llm-d.ai/inference-server-config": isc}},
        "spec": spec,
    }


def vllm_template(isc: str, app: str, *, gpus: int = 1) -> dict[str, Any]:
    """A Pod template as a user writes it for vLLM, plus FMA's one annotation (the webhook converts it)."""
    return {
        "metadata": {"labels": {"app": app}, "annotations": {"dual-pods.llm-d.ai/inference-server-config": isc}},
        "spec": {
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "command": ["vllm", "serve", "tiny-llm"],
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ]
        },
    }


def direct_requester_template(app: str, model: str, *, node: str | None = None) -> dict[str, Any]:
    """A direct-mode requester: the requester agent plus a server patch that runs the engine simulator."""
    template = requester_template("", app, node=node)
    notes = template["metadata"]["annotations"]
    del notes["dual-pods.llm-d.ai/inference-server-config"]
    patch = {
        "metadata": {"labels": {"app": None, "provider-of": app}},
        "spec": {
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai",
                    "command": ["fma-engine-sim", "serve", model],
                    "args": ["--host", "$(POD_IP)", "--port", "8000", *engine_sim_options(model).split()[2:]],
                    "env": [
                        {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
                        _POD_IP,
                        {"name": "NODE", "value": "{{ .NodeName }}"},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 1},
                }
            ]
        },
    }
    notes["dual-pods.llm-d.ai/server-patch"] = json.dumps(patch)
    return template


def deployment(name: str, template: dict[str, Any], *, replicas: int = 1) -> dict[str, Any]:
    """A Deployment of ``template`` selected by ``app=<name>``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
    }
