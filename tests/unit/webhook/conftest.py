"""Fixtures of the webhook unit tests: options, Pod builders and an RFC 6902 applier."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from webhook import mutation, requester_agent

PodBuilder = Callable[..., dict[str, Any]]
Applier = Callable[[Any, list[dict[str, Any]]], Any]


class PatchError(AssertionError):
    """The patch is not valid against its document (RFC 6902 section 5: the whole patch fails)."""


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"pointer {path!r} does not start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _container(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    target = doc
    for token in tokens[:-1]:
        if isinstance(target, dict):
            if token not in target:
                raise PatchError(f"{path!r}: member {token!r} does not exist")
            target = target[token]
        elif isinstance(target, list):
            if not token.isdigit() or int(token) >= len(target) or (token != "0" and token.startswith("0")):
                raise PatchError(f"{path!r}: bad array index {token!r}")
            target = target[int(token)]
        else:
            raise PatchError(f"{path!r}: cannot descend into a scalar")
    return target, tokens[-1]


def apply_json_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """A small, strict RFC 6902 applier for add, remove, replace and test (enough for our patches)."""
    doc = copy.deepcopy(document)
    for op in operations:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {op!r} has no path")
        tokens = _tokens(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {op!r} has no value")
        if not tokens:
            if kind in ("add", "replace"):
                doc = copy.deepcopy(op["value"])
                continue
            raise PatchError(f"unsupported whole-document {kind!r}")
        parent, last = _container(doc, tokens, path)
        if kind == "add":
            if isinstance(parent, dict):
                parent[last] = copy.deepcopy(op["value"])
            elif isinstance(parent, list):
                if last == "-":
                    parent.append(copy.deepcopy(op["value"]))
                elif last.isdigit() and int(last) <= len(parent):
                    parent.insert(int(last), copy.deepcopy(op["value"]))
                else:
                    raise PatchError(f"{path!r}: bad array index {last!r}")
            else:
                raise PatchError(f"{path!r}: parent is a scalar")
        elif kind in ("replace", "remove", "test"):
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError(f"{path!r}: {kind} of a missing member")
            elif isinstance(parent, list):
                if not last.isdigit() or int(last) >= len(parent):
                    raise PatchError(f"{path!r}: bad array index {last!r}")
            else:
                raise PatchError(f"{path!r}: parent is a scalar")
            key: Any = last if isinstance(parent, dict) else int(last)
            if kind == "replace":
                parent[key] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[key]
            elif parent[key] != op["value"]:
                raise PatchError(f"{path!r}: test failed")
        else:
            raise PatchError(f"unsupported op {kind!r}")
    return doc


@pytest.fixture
def apply_patch() -> Applier:
    """Apply an RFC 6902 patch strictly (raises ``PatchError``)."""
    return apply_json_patch


@pytest.fixture
def agent_spec() -> requester_agent.AgentSpec:
    """The requester agent as the tests configure it."""
    return requester_agent.AgentSpec(image="registry.test/fma:1", command=("fma-requester",))


@pytest.fixture
def options(agent_spec: requester_agent.AgentSpec) -> mutation.Options:
    """Mutation options with the FMA scheduler configured."""
    return mutation.Options(agent=agent_spec)


def build_pod(
    annotations: dict[str, str] | None = None,
    *,
    labels: dict[str, str] | None = None,
    gpus: str | None = "2",
    container_name: str = "inference-server",
    server: dict[str, Any] | None = None,
    extra_containers: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    scheduler_name: str | None = "default-scheduler",
) -> dict[str, Any]:
    """A Pod as the apiserver sends it to a mutating webhook (defaults applied)."""
    container: dict[str, Any] = {
        "name": container_name,
        "image": "vllm/vllm-openai:v0.10.0",
        "command": ["vllm", "serve"],
        "args": ["meta-llama/Llama-3.1-8B", "--port", "8000"],
        "ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}],
        "env": [{"name": "HF_HOME", "value": "/models"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000, "scheme": "HTTP"}, "periodSeconds": 5},
        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
        "resources": {"limits": {"cpu": "4", "memory": "32Gi"}, "requests": {"cpu": "2", "memory": "16Gi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if gpus is not None:
        container["resources"]["limits"]["nvidia.com/gpu"] = gpus
        container["resources"]["requests"]["nvidia.com/gpu"] = gpus
    if server is not None:
        container = server
    metadata: dict[str, Any] = {"generateName": "llm-", "namespace": "team-a"}
    if annotations is not None:
        metadata["annotations"] = annotations
    if labels is not None:
        metadata["labels"] = labels
    spec: dict[str, Any] = {
        "containers": [container, *(extra_containers or [])],
        "volumes": volumes
        if volumes is not None
        else [
            {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
            {"name": "kube-api-access-abcde", "projected": {"sources": []}},
        ],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    }
    if scheduler_name is not None:
        spec["schedulerName"] = scheduler_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@pytest.fixture
def pod_raw() -> PodBuilder:
    """Build a raw Pod (see ``build_pod``)."""
    return build_pod
