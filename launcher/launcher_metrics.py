"""The launcher's Prometheus metrics, in a registry owned by one app (no global registry).

Instances by status, how long an instance takes to start (request to a
running process) and to stop (request to the whole process group gone),
and unsolicited exits.  Upstream's launcher exports none; these are ours.
"""

from __future__ import annotations

import prometheus_client

__all__ = ["LauncherMetrics"]

_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)


class LauncherMetrics:
    """The series; ``render()`` gives the text exposition."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.instances = prometheus_client.Gauge(
            "fma_launcher_instances", "Instances known to the launcher, by status.", ["status"], registry=self.registry
        )
        self.start_seconds = prometheus_client.Histogram(
            "fma_launcher_instance_start_seconds",
            "From a create request to a running instance process.",
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.stop_seconds = prometheus_client.Histogram(
            "fma_launcher_instance_stop_seconds",
            "From a delete request to the instance's whole process group being gone.",
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.unsolicited_exits = prometheus_client.Counter(
            "fma_launcher_instance_unsolicited_exits",
            "Instance processes that exited on their own.",
            registry=self.registry,
        )
        for status in ("running", "stopped"):
            self.instances.labels(status).set(0)

    def set_counts(self, running: int, stopped: int) -> None:
        """Record how many instances are in each status."""
        self.instances.labels("running").set(running)
        self.instances.labels("stopped").set(stopped)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return prometheus_client.generate_latest(self.registry)
