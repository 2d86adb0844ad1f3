"""The requester agent container that replaces a user's ``inference-server`` container.

The agent (``fma-requester``, docs/protocol.md, "Requester SPI") serves the requester SPI and
the readiness probe; the kubelet gives the Pod its GPUs because the agent
container keeps the user's own ``nvidia.com/gpu`` limits and requests.
Every field the apiserver would default is written out, so that the
created Pod's container equals what this module returns.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from crds import names

__all__ = ["HOST_ENV", "PROBES_PORT_ENV", "SPI_PORT_ENV", "AgentSpec", "container"]

PROBES_PORT_ENV = "PROBES_PORT"
HOST_ENV = "FMA_REQUESTER_HOST"
"""The requester agent's listen address (``fma-requester`` reads it)."""
"""The agent's probe-port variable (docs/protocol.md, "Fixed names, containers and environment")."""
SPI_PORT_ENV = "SPI_PORT"
"""The agent's SPI-port variable (docs/protocol.md, "Fixed names, containers and environment")."""


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """What the webhook's settings say about the agent."""

    image: str
    command: tuple[str, ...]
    image_pull_policy: str = "IfNotPresent"
    cpu: str = "50m"
    memory: str = "128Mi"
    probes_port: int = names.PROBES_PORT_DEFAULT


def container(spec: AgentSpec, spi_port: int, gpu_resources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The agent container serving the SPI on ``spi_port``.

    ``gpu_resources`` maps ``limits``/``requests`` to the user's GPU
    quantities (copied verbatim).
    """
    limits: dict[str, Any] = {"memory": spec.memory, **gpu_resources.get("limits", {})}
    requests: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory, **gpu_resources.get("requests", {})}
    return {
        "name": names.INFERENCE_SERVER_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": list(spec.command),
        "env": [
            {"name": PROBES_PORT_ENV, "value": str(spec.probes_port)},
            {"name": SPI_PORT_ENV, "value": str(spi_port)},
            # Listen on the Pod IP only: the same in a real Pod, and required where
            # Pods share a network namespace (the development cluster's simnode).
            {"name": HOST_ENV, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": spec.probes_port, "scheme": "HTTP"},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 1,
        },
        "resources": {"limits": limits, "requests": requests},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
