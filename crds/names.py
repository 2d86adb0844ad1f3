"""Fixed names of the wire contract that are not Pod metadata keys.

Container names, field managers, ConfigMap names, environment variables, ports,
the keys inside ``VllmConfig.annotations`` and Event reasons (docs/protocol.md,
"Fixed names, containers and environment" and "Events, leases and health
endpoints").  They live next to ``keys`` so that every package spells them the same
way; each one is observable by other parties, which is why none may drift.

Pure constants; no I/O.
"""

from __future__ import annotations

__all__ = [
    "ADMIN_PORT_DEFAULT",
    "CONTROLLERS_LEASE",
    "CUDA_DEVICE_ORDER_ENV",
    "CUDA_VISIBLE_DEVICES_ENV",
    "DPC_FIELD_MANAGER",
    "EVENT_ACTUATED_COLD",
    "EVENT_ACTUATED_HOT",
    "EVENT_ACTUATED_WARM",
    "EVENT_ACTUATION_FAILED",
    "EVENT_LAUNCHER_STUCK",
    "EVENT_OUTDATED_ROUTING_METADATA",
    "GPU_ALLOCS_CONFIGMAP",
    "GPU_MAP_CONFIGMAP",
    "GPU_RESOURCE",
    "HOSTNAME_NODE_SELECTOR",
    "INFERENCE_SERVER_CONTAINER",
    "INSTANCE_CONFIG_KEY",
    "INSTANCE_INFERENCE_PORT",
    "INSTANCE_ISC_NAME",
    "LAUNCHER_PORT",
    "LAUNCHER_TOKEN_ENV",
    "NOTIFIER_CONTAINER",
    "NVIDIA_VISIBLE_DEVICES_ENV",
    "POPULATOR_FIELD_MANAGER",
    "PROBES_PORT_DEFAULT",
    "SCHEDULER_NAME_DEFAULT",
    "SPI_PORT_DEFAULT",
]

INFERENCE_SERVER_CONTAINER = "inference-server"
"""The mandatory container name in requesters, direct providers and LauncherConfig templates."""

NOTIFIER_CONTAINER = "state-change-reflector"
"""The name of upstream's notifier sidecar in launcher Pods."""

DPC_FIELD_MANAGER = "dual-pods-controller"
"""FieldManager, Event component and user-agent suffix of the DPC; direct-mode recency reads managedFields."""

POPULATOR_FIELD_MANAGER = "launcher-populator"
"""FieldManager, Event component and user-agent suffix of the launcher populator."""

GPU_MAP_CONFIGMAP = "gpu-map"
"""ConfigMap in the controllers' namespace: node name → JSON ``{GPU UUID: index}``."""

GPU_ALLOCS_CONFIGMAP = "gpu-allocs"
"""ConfigMap used only by the test requester: GPU UUID → JSON ``{"NodeName", "PodUID"}``."""

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource requesters ask for and providers zero."""

HOSTNAME_NODE_SELECTOR = "kubernetes.io/hostname"
"""The nodeSelector key that pins a provider; the DPC reads a provider's node from it, not from nodeName."""

CUDA_VISIBLE_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"
"""GPU indices given to an engine, in the requester's UUID order."""

CUDA_DEVICE_ORDER_ENV = "CUDA_DEVICE_ORDER"
"""Set to ``PCI_BUS_ID`` next to ``CUDA_VISIBLE_DEVICES`` (ours): the indices come from NVML, in PCI order."""

NVIDIA_VISIBLE_DEVICES_ENV = "NVIDIA_VISIBLE_DEVICES"
"""Set by the device plugin (and simnode) to the allocated GPU UUIDs; the requester agent reads it first."""

LAUNCHER_TOKEN_ENV = "FMA_LAUNCHER_TOKEN"  # noqa: S105 - the variable name, not a secret
"""The launcher's bearer token, injected from a Secret when launcher auth is enabled (docs/security.md)."""

LAUNCHER_PORT = 8001
"""The launcher HTTP API port, fixed by the protocol (docs/protocol.md, "Launcher API")."""

ADMIN_PORT_DEFAULT = 8081
"""The requester SPI port used when the ``admin-port`` annotation is absent."""

SPI_PORT_DEFAULT = 8081
"""Default ``SPI_PORT`` of the requester agent."""

PROBES_PORT_DEFAULT = 8080
"""Default ``PROBES_PORT`` of the requester agent."""

INSTANCE_ISC_NAME = "isc-name"
"""Key in ``VllmConfig.annotations``: the ISC an instance was created from."""

INSTANCE_INFERENCE_PORT = "inference-port"
"""Key in ``VllmConfig.annotations``: the instance's decimal port."""

INSTANCE_CONFIG_KEY = "config-key"
"""Key in ``VllmConfig.annotations`` (ours): the config key of the instance's model-server config.

It feeds the ``configKey`` of the launcher's ``instances`` inventory.
"""

SCHEDULER_NAME_DEFAULT = "fma-scheduler"
"""The default name of the FMA scheduler (the second kube-scheduler with the extender)."""

CONTROLLERS_LEASE = "fma-controllers"
"""The Lease the controllers' leader election uses (docs/controllers.md, "Leader election")."""

EVENT_OUTDATED_ROUTING_METADATA = "OutdatedRoutingMetadata"
"""Warning Event on a requester whose committed routing metadata became invalid."""

EVENT_LAUNCHER_STUCK = "LauncherStuck"
"""Warning Event on a launcher that became stuck (docs/populator.md, "How it works")."""

EVENT_ACTUATED_HOT = "ActuatedHot"
"""Normal Event on a requester served by waking a sleeping engine."""

EVENT_ACTUATED_WARM = "ActuatedWarm"
"""Normal Event on a requester served by a new instance in an existing launcher."""

EVENT_ACTUATED_COLD = "ActuatedCold"
"""Normal Event on a requester served by a new launcher or direct provider."""

EVENT_ACTUATION_FAILED = "ActuationFailed"
"""Warning Event on a requester, carrying the status error."""
