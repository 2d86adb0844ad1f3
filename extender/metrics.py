"""The extender's Prometheus metrics, in a registry of their own.

- ``fma_extender_request_duration_seconds{verb}``: time to answer filter or
  prioritize (parsing and serialising included);
- ``fma_extender_nodes_scored_total{verb}``: candidate nodes judged;
- ``fma_extender_decisions_total{placement}``: per prioritize call, the class of
  the best node (``neutral`` for Pods that are not FMA requesters);
- ``fma_extender_bad_requests_total{verb}``: bodies answered 400;
- ``fma_extender_malformed_inventories_total``: launcher ``instances``
  annotations that did not parse (each such value counted once when it
  appears; the launcher is treated as one without instances).

The registry is passed in (or made per instance), never global, so tests and
several apps in one process do not collide.
"""

from __future__ import annotations

from typing import Final

import prometheus_client

__all__ = ["LATENCY_BUCKETS", "ExtenderMetrics"]

LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds; fine below 20 ms, the per-call target at 1,000 nodes."""


class ExtenderMetrics:
    """The metric families of one extender."""

    def __init__(self, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        self.registry = registry or prometheus_client.CollectorRegistry()
        self.latency = prometheus_client.Histogram(
            "fma_extender_request_duration_seconds",
            "Time to answer one scheduler extender call.",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.nodes_scored = prometheus_client.Counter(
            "fma_extender_nodes_scored",
            "Candidate nodes judged by filter or prioritize.",
            ["verb"],
            registry=self.registry,
        )
        self.decisions = prometheus_client.Counter(
            "fma_extender_decisions",
            "Prioritize calls by the placement class of the best node.",
            ["placement"],
            registry=self.registry,
        )
        self.bad_requests = prometheus_client.Counter(
            "fma_extender_bad_requests",
            "Extender calls answered 400 because the body was not a valid ExtenderArgs.",
            ["verb"],
            registry=self.registry,
        )

        self.malformed_inventories = prometheus_client.Counter(
            "fma_extender_malformed_inventories",
            "Launcher instances annotations that did not parse (the launcher is ignored as a sleeper host).",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return prometheus_client.generate_latest(self.registry)
