"""Which Pod features simnode cannot honour.

simnode must never ignore a feature silently: a Pod that uses one stays
Pending and gets a ``SimnodeSupported=False`` condition plus a Warning
Event listing every problem.  Pure; no I/O.
"""

from __future__ import annotations

from devcluster.simnode import pod

__all__ = ["CONDITION_TYPE", "EVENT_REASON", "SUPPORTED_VOLUMES", "problems"]

CONDITION_TYPE = "SimnodeSupported"
EVENT_REASON = "UnsupportedPodFeature"
SUPPORTED_VOLUMES = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")


def _volume_problems(volume: pod.Volume) -> list[str]:
    kinds = [
        k
        for k, v in (
            ("emptyDir", volume.empty_dir),
            ("configMap", volume.config_map),
            ("secret", volume.secret),
            ("downwardAPI", volume.downward_api),
            ("projected", volume.projected),
        )
        if v is not None
    ]
    other = sorted((volume.model_extra or {}).keys())
    if other:
        return [f"volume {volume.name!r} of type {other[0]} is not supported (only {', '.join(SUPPORTED_VOLUMES)})"]
    if not kinds:
        return [f"volume {volume.name!r} has no supported source"]
    found: list[str] = []
    if volume.projected is not None:
        for source in volume.projected.sources:
            for extra in sorted((source.model_extra or {}).keys()):
                found.append(f"projected volume {volume.name!r} source {extra} is not supported")
    return found


def _probe_problems(container: pod.Container) -> list[str]:
    found: list[str] = []
    for kind, probe in (
        ("readiness", container.readiness_probe),
        ("liveness", container.liveness_probe),
        ("startup", container.startup_probe),
    ):
        if probe is None:
            continue
        if probe.http_get is None and probe.tcp_socket is None:
            handler = ", ".join(sorted((probe.model_extra or {}).keys())) or "none"
            found.append(
                f"container {container.name!r} {kind} probe uses {handler}; only httpGet and tcpSocket are supported"
            )
    return found


def _container_problems(container: pod.Container, volumes: set[str], *, init: bool) -> list[str]:
    found: list[str] = []
    if not container.command:
        found.append(f"container {container.name!r} has no command; images are ignored, so a command is required")
    if init and container.restart_policy == "Always":
        found.append(f"init container {container.name!r} is a sidecar (restartPolicy Always), which is not supported")
    extra = container.model_extra or {}
    if extra.get("lifecycle"):
        found.append(f"container {container.name!r} has lifecycle hooks, which are not supported")
    for mount in container.volume_mounts:
        if mount.name not in volumes:
            found.append(f"container {container.name!r} mounts unknown volume {mount.name!r}")
        if mount.sub_path or mount.sub_path_expr:
            found.append(f"container {container.name!r} mounts {mount.name!r} with subPath, which is not supported")
        if not mount.mount_path.startswith("/"):
            found.append(f"container {container.name!r} mountPath {mount.mount_path!r} is not absolute")
    found.extend(_probe_problems(container))
    return found


def problems(the_pod: pod.Pod) -> list[str]:
    """Every unsupported feature the Pod uses, as readable sentences (empty when all is fine)."""
    spec = the_pod.spec
    found: list[str] = []
    if spec.host_network:
        found.append("hostNetwork is not supported: each Pod gets its own loopback address")
    if spec.host_pid:
        found.append("hostPID is not supported")
    if spec.host_ipc:
        found.append("hostIPC is not supported")
    if (spec.model_extra or {}).get("hostAliases"):
        found.append("hostAliases is not supported: /etc/hosts holds the cluster's Service names for every Pod")
    for volume in spec.volumes:
        found.extend(_volume_problems(volume))
    names = {v.name for v in spec.volumes}
    for container in spec.init_containers:
        found.extend(_container_problems(container, names, init=True))
    for container in spec.containers:
        found.extend(_container_problems(container, names, init=False))
    return found
