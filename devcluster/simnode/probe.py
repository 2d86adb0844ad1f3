"""Readiness, liveness and startup probes: when to run them, what they concluded, and running one.

``Tracker`` is the pure bookkeeping (initial delay, period, success and
failure thresholds); ``run`` performs one httpGet or tcpSocket check
against the Pod's loopback address.  The Pod runner combines them.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import ssl
from collections.abc import Mapping

from devcluster.simnode import pod

__all__ = ["Tracker", "resolve_port", "run"]


@dataclasses.dataclass
class Tracker:
    """The state of one probe of one container run.

    ``result`` starts as ``initial`` (False for readiness and startup, True
    for liveness) and flips only after ``successThreshold`` consecutive
    successes or ``failureThreshold`` consecutive failures.  Pure.
    """

    spec: pod.Probe
    started: float
    initial: bool
    result: bool = dataclasses.field(init=False)
    successes: int = 0
    failures: int = 0
    next_due: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.result = self.initial
        self.next_due = self.started + self.spec.initial_delay_seconds

    def due(self, now: float) -> bool:
        """Whether the probe should run now."""
        return now >= self.next_due

    def record(self, ok: bool, now: float) -> bool:
        """Count one probe outcome and schedule the next; returns the (maybe new) result."""
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= max(1, self.spec.success_threshold):
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= max(1, self.spec.failure_threshold):
                self.result = False
        self.next_due = now + max(1, self.spec.period_seconds)
        return self.result


def resolve_port(port: int | str, ports: Mapping[str, int]) -> int | None:
    """A probe's port: a number, a numeric string, or the name of a container port."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    return ports.get(port)


def _http(action: pod.HttpGetAction, pod_ip: str, ports: Mapping[str, int], timeout: float) -> bool:
    port = resolve_port(action.port, ports)
    if port is None:
        return False
    host = action.host or pod_ip
    connection: http.client.HTTPConnection
    if action.scheme.upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"User-Agent": "kube-probe/1.35", "Accept": "*/*"}
    headers.update({h.name: h.value for h in action.http_headers})
    try:
        connection.request("GET", action.path or "/", headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return 200 <= status < 400


def _tcp(action: pod.TcpSocketAction, pod_ip: str, ports: Mapping[str, int], timeout: float) -> bool:
    port = resolve_port(action.port, ports)
    if port is None:
        return False
    try:
        with socket.create_connection((action.host or pod_ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def run(spec: pod.Probe, pod_ip: str, ports: Mapping[str, int]) -> bool:
    """Perform the probe once; True on success.  Blocks up to ``timeoutSeconds``."""
    timeout = float(max(1, spec.timeout_seconds))
    if spec.http_get is not None:
        return _http(spec.http_get, pod_ip, ports, timeout)
    if spec.tcp_socket is not None:
        return _tcp(spec.tcp_socket, pod_ip, ports, timeout)
    return False
