"""Raw API objects as the apiserver returns them, for the pure builders' tests."""

from __future__ import annotations

import datetime
import json
from typing import Any

from crds import decoding, inference_server_config, kinds
from fmactl import snapshot

P = "dual-pods.llm-d.ai/"
NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def requester(
    name: str,
    *,
    uid: str | None = None,
    isc: str | None = "isc1",
    node: str | None = "n1",
    gpus: str | None = None,
    ready: bool = False,
    dual: str | None = None,
    instance: str | None = None,
    status: str | None = None,
    converted: bool = True,
    scheduler: str = "fma-scheduler",
    unschedulable: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if isc is not None:
        annotations[P + "inference-server-config"] = isc
    else:
        annotations[P + "server-patch"] = "spec: {}"
    if converted:
        annotations[P + "converted"] = "v1"
    if gpus is not None:
        annotations[P + "accelerators"] = gpus
    if status is not None:
        annotations[P + "status"] = status
    labels: dict[str, str] = {"app": name.split("-", maxsplit=1)[0]}
    if dual:
        labels[P + "dual"] = dual
    if instance:
        labels[P + "instance"] = instance
    conditions: list[dict[str, Any]] = []
    if node:
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(100)})
    elif unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
                "lastTransitionTime": stamp(50),
            }
        )
    conditions.append({"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(60)})
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": uid or f"uid-{name}",
        "creationTimestamp": stamp(120),
        "annotations": annotations,
        "labels": labels,
    }
    if deleting:
        metadata["deletionTimestamp"] = stamp(5)
    spec: dict[str, Any] = {"schedulerName": scheduler, "containers": [{"name": "inference-server"}]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Running" if node else "Pending", "conditions": conditions},
    }


def launcher(
    name: str,
    *,
    node: str = "n1",
    bound_to: dict[str, Any] | None = None,
    instance_id: str | None = None,
    sleeping: str = "true",
    instances: list[dict[str, Any]] | None = None,
    dpc_write_seconds_ago: float | None = None,
    stuck: bool = False,
    ready: bool = True,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    labels = {
        P + "launcher-config-name": "lc",
        P + "node-name": node,
        "app.kubernetes.io/component": "launcher",
        P + "sleeping": sleeping,
    }
    if bound_to is not None:
        annotations[P + "requester"] = f"{bound_to['metadata']['uid']} {bound_to['metadata']['name']}"
        labels[P + "dual"] = bound_to["metadata"]["name"]
    if instance_id:
        annotations[P + "instance-id"] = instance_id
    if instances is not None:
        annotations[P + "instances"] = json.dumps({"v": 1, "revision": len(instances), "instances": instances})
    if stuck:
        labels[P + "launcher-stuck"] = "true"
    managed = [{"manager": "launcher", "operation": "Update", "time": stamp(1)}]
    if dpc_write_seconds_ago is not None:
        managed.append({"manager": "dual-pods-controller", "operation": "Update", "time": stamp(dpc_write_seconds_ago)})
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "annotations": annotations,
            "labels": labels,
            "managedFields": managed,
        },
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def instance(instance_id: str, gpu: str, *, isc: str = "isc1", status: str = "running") -> dict[str, Any]:
    return {"id": instance_id, "isc": isc, "configKey": "Ckeyc", "gpus": [gpu], "port": 8005, "status": status}


def event(
    pod: dict[str, Any],
    reason: str,
    message: str,
    *,
    kind: str = "Normal",
    seconds_ago: float = 10,
    uid: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{pod['metadata']['name']}.{reason}", "namespace": "ns"},
        "involvedObject": {
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "namespace": "ns",
            "uid": uid or pod["metadata"]["uid"],
        },
        "type": kind,
        "reason": reason,
        "message": message,
        "count": 1,
        "lastTimestamp": stamp(seconds_ago),
        "source": {"component": "dual-pods-controller"},
    }


def node(name: str, gpus: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"capacity": {"nvidia.com/gpu": str(gpus), "cpu": "8"}}}


def isc(name: str, model: str = "tiny") -> dict[str, Any]:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": "InferenceServerConfig",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "modelServerConfig": {"port": 8005, "options": f"--model {model} --port 8005"},
            "launcherConfigName": "lc",
        },
    }


def snap(
    pods: list[dict[str, Any]],
    events: list[dict[str, Any]] | None = None,
    *,
    iscs: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
    gpu_map: dict[str, dict[str, int]] | None = None,
) -> snapshot.Snapshot:
    parsed = {
        raw["metadata"]["name"]: decoding.decode(inference_server_config.InferenceServerConfig, raw)
        for raw in (iscs if iscs is not None else [isc("isc1"), isc("isc2", "small")])
    }
    return snapshot.Snapshot(
        namespace="ns",
        taken_at=NOW,
        pods=pods,
        nodes=nodes if nodes is not None else [node("n1"), node("n2")],
        events=events or [],
        iscs=parsed,
        gpu_map=gpu_map if gpu_map is not None else {"n1": {"GPU-a": 0, "GPU-b": 1}, "n2": {"GPU-c": 0, "GPU-d": 1}},
    )
