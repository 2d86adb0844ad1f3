"""The development cluster's Service routing: loopback ClusterIPs, a TCP proxy and Service names.

A real cluster reaches a Service through its ClusterIP (kube-proxy) and its
DNS name (CoreDNS).  Here every Pod runs on a loopback address, which
EndpointSlices cannot hold, so the cluster gets a loopback service range
(``choose_range``) and one small process (``python -m
devcluster.service_proxy``) that listens on each Service's ClusterIP and
port and forwards to a ready Pod of its selector, and keeps a hosts file of
the Services' DNS names that simnode mounts at ``/etc/hosts`` in every Pod.
See docs/devcluster.md, "Services".

This module is the surface ``control_plane`` uses: pick the range, build
the command line, wait until the ``kubernetes`` Service answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import pathlib
import sys

from devcluster import processes

__all__ = ["FIRST_BLOCK", "LAST_BLOCK", "ServiceRange", "argv", "choose_range"]

FIRST_BLOCK = 160
LAST_BLOCK = 254
"""Service ranges are 127.A.0.0/16 with A in this span: the half of 127/8 where simnode's
status-only nodes report (never bind) Pod addresses, so no Pod process shares an address with a ClusterIP."""


@dataclasses.dataclass(frozen=True)
class ServiceRange:
    """A cluster's service CIDR 127.``block``.0.0/16 and the ``kubernetes`` Service's ClusterIP (its first address)."""

    block: int

    @property
    def cidr(self) -> str:
        """The ``--service-cluster-ip-range``."""
        return f"127.{self.block}.0.0/16"

    @property
    def kubernetes_ip(self) -> str:
        """The first address of the range, which the apiserver gives the ``kubernetes`` Service."""
        return str(ipaddress.ip_network(self.cidr)[1])


def choose_range(seed: str, *, https_port: int = 443) -> ServiceRange:
    """A service range for a new cluster: derived from ``seed`` (the state directory), skipping
    ranges whose ``kubernetes`` address is already served (another cluster on this machine)."""
    span = LAST_BLOCK - FIRST_BLOCK + 1
    start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % span
    for step in range(span):
        candidate = ServiceRange(FIRST_BLOCK + (start + step) % span)
        if processes.port_is_free(https_port, candidate.kubernetes_ip):
            return candidate
    raise OSError("no free loopback service range: every 127.A.0.1:443 is taken")


def argv(kubeconfig: pathlib.Path, apiserver_port: int, hosts_file: pathlib.Path) -> list[str]:
    """The proxy's command line (pure)."""
    return [
        sys.executable,
        "-m",
        "devcluster.service_proxy",
        f"--kubeconfig={kubeconfig}",
        f"--apiserver=127.0.0.1:{apiserver_port}",
        f"--hosts-file={hosts_file}",
    ]
