"""Which Service addresses to listen on, where each connection goes, and the Service names.

The development cluster's Pods all live on loopback addresses, which
EndpointSlices and Endpoints refuse, so routes are computed from the
Services and the Pods themselves, as the endpoints controller would: a
Service's backends are the ready (not terminating) Pods of its namespace that
match its selector, each at the Service port's ``targetPort`` (a number, or
a container port's name looked up in that Pod).  The ``kubernetes`` Service
has no selector; it routes to the apiserver.

Pure; no I/O.  ``parse_service`` and ``parse_pod`` read the raw API objects
once at the boundary.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "APISERVER_SERVICE",
    "Address",
    "Backend",
    "Listener",
    "Service",
    "ServicePort",
    "backends",
    "hosts_text",
    "listeners",
    "parse_pod",
    "parse_service",
]

APISERVER_SERVICE = ("default", "kubernetes")
"""The Service that routes to the apiserver instead of to Pods."""

Address = tuple[str, int]
"""(IP, port)."""


@dataclasses.dataclass(frozen=True)
class ServicePort:
    """One TCP port of a Service; ``target_port`` is a number or a container port's name."""

    port: int
    target_port: int | str


@dataclasses.dataclass(frozen=True)
class Service:
    """What routing needs of a Service."""

    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str] | None
    publish_not_ready: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name)."""
        return (self.namespace, self.name)


@dataclasses.dataclass(frozen=True)
class Backend:
    """What routing needs of a Pod."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    ready: bool
    terminating: bool
    named_ports: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Listener:
    """An address to listen on and the Service port it serves."""

    address: Address
    service: tuple[str, str]
    port: ServicePort


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def parse_service(obj: Mapping[str, Any]) -> Service | None:
    """The routing view of a raw Service; None when it has no loopback ClusterIP (headless, other types)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    cluster_ip = str(spec.get("clusterIP") or "")
    if not _is_loopback(cluster_ip):
        return None
    ports = []
    for raw in spec.get("ports") or []:
        if str(raw.get("protocol") or "TCP") != "TCP":
            continue
        port = int(raw["port"])
        target = raw.get("targetPort")
        if target in (None, "", 0):
            target = port
        ports.append(ServicePort(port=port, target_port=target if isinstance(target, str) else int(target)))
    selector = spec.get("selector")
    return Service(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        cluster_ip=cluster_ip,
        ports=tuple(ports),
        selector=dict(selector) if selector else None,
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
    )


def parse_pod(obj: Mapping[str, Any]) -> Backend | None:
    """The routing view of a raw Pod; None while it has no address."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ip = str(status.get("podIP") or "")
    if not ip:
        return None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    named: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") and str(port.get("protocol") or "TCP") == "TCP":
                named.setdefault(str(port["name"]), int(port["containerPort"]))
    return Backend(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        labels=dict(meta.get("labels") or {}),
        ip=ip,
        ready=ready,
        terminating=bool(meta.get("deletionTimestamp")),
        named_ports=named,
    )


def listeners(services: Iterable[Service]) -> dict[Address, Listener]:
    """Every (ClusterIP, port) to listen on, mapped to what it serves."""
    result: dict[Address, Listener] = {}
    for service in services:
        for port in service.ports:
            address = (service.cluster_ip, port.port)
            result[address] = Listener(address=address, service=service.key, port=port)
    return result


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def backends(
    service: Service, port: ServicePort, pods: Iterable[Backend], *, apiserver: Address | None = None
) -> list[Address]:
    """Where a connection to ``service``'s ``port`` may go, in a stable order.

    The ``kubernetes`` Service goes to ``apiserver``; a Service without a
    selector has no backends; otherwise the ready, not terminating Pods of
    its namespace that match the selector (not-ready ones too with
    ``publishNotReadyAddresses``), at the target port.  A Pod without a
    container port of a named ``targetPort`` is left out, as Kubernetes does.
    """
    if service.key == APISERVER_SERVICE and apiserver is not None:
        return [apiserver]
    if not service.selector:
        return []
    found: list[Address] = []
    for pod in pods:
        if pod.namespace != service.namespace or pod.terminating:
            continue
        if not (pod.ready or service.publish_not_ready) or not _selects(service.selector, pod.labels):
            continue
        if isinstance(port.target_port, str):
            number = pod.named_ports.get(port.target_port)
            if number is None:
                continue
        else:
            number = port.target_port
        found.append((pod.ip, number))
    return sorted(set(found))


def hosts_text(base: str, services: Iterable[Service]) -> str:
    """An ``/etc/hosts`` for Pods: ``base`` (the host's own entries) plus each Service's DNS names.

    Each Service gets ``<name>.<namespace>``, ``<name>.<namespace>.svc`` and
    ``<name>.<namespace>.svc.cluster.local``; the bare ``<name>`` is not
    listed because one hosts file serves every namespace.
    """
    lines = [base.rstrip("\n"), "# Services of the development cluster (devcluster.service_proxy)"]
    for service in sorted(services, key=lambda s: s.key):
        short = f"{service.name}.{service.namespace}"
        lines.append(f"{service.cluster_ip}\t{short}.svc.cluster.local {short}.svc {short}")
    return "\n".join(lines) + "\n"
