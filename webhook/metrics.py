"""The webhook's Prometheus metrics, in a registry of their own.

One registry per app (not the process-global default) so that several
apps can live in one test process.

* ``fma_webhook_requests_total{outcome,mode}`` — AdmissionReviews answered;
  ``outcome`` is ``patched``, ``unchanged``, ``denied``, ``malformed`` or
  ``error``; ``mode`` is ``launcher``, ``direct``, ``requester`` or ``none``.
* ``fma_webhook_request_duration_seconds{outcome}`` — service time, from the
  first byte read to the answer built.
* ``fma_webhook_placement_hints_total{outcome}`` — requesters admitted with
  hints on: ``hinted`` (nodes or a node selector written), ``nominated``
  (hinted, and with ``nominate`` its certain-hot node recorded: gated for
  the controllers to nominate, or for FMA's scheduler plugin), ``none`` (nothing known to prefer) or ``unavailable``
  (sleeper cache not synced yet).
* ``fma_webhook_malformed_inventories_total`` — launcher ``instances``
  annotations that did not parse (each value counted once; that launcher is
  no sleeper host for the hints, and no admission fails because of it).
* ``fma_webhook_certificate_expiry_timestamp_seconds`` — ``notAfter`` of the
  serving certificate in use; ``fma_webhook_certificate_reloads_total``.
"""

from __future__ import annotations

import datetime

import prometheus_client

__all__ = ["BUCKETS", "Metrics"]

BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Latency buckets in seconds; the apiserver's timeout for us is 5 s."""


class Metrics:
    """The webhook's metric families."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.requests = prometheus_client.Counter(
            "fma_webhook_requests",
            "AdmissionReviews answered, by outcome and mode.",
            ["outcome", "mode"],
            registry=self.registry,
        )
        self.duration = prometheus_client.Histogram(
            "fma_webhook_request_duration_seconds",
            "Time to answer one AdmissionReview.",
            ["outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.certificate_expiry = prometheus_client.Gauge(
            "fma_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use (Unix time).",
            registry=self.registry,
        )
        self.certificate_reloads = prometheus_client.Counter(
            "fma_webhook_certificate_reloads", "Serving certificate loads after the first.", registry=self.registry
        )
        self.placement_hints = prometheus_client.Counter(
            "fma_webhook_placement_hints",
            "Requesters admitted with placement hints on, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.malformed_inventories = prometheus_client.Counter(
            "fma_webhook_malformed_inventories",
            "Launcher instances annotations that did not parse (ignored by the placement hints).",
            registry=self.registry,
        )
        self._loaded_once = False

    def observe(self, outcome: str, mode: str, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(outcome=outcome, mode=mode).inc()
        self.duration.labels(outcome=outcome).observe(seconds)

    def certificate_loaded(self, not_after: datetime.datetime) -> None:
        """Record a (re)loaded serving certificate; the reloader calls this."""
        self.certificate_expiry.set(not_after.timestamp())
        if self._loaded_once:
            self.certificate_reloads.inc()
        self._loaded_once = True

    def exposition(self) -> bytes:
        """The text exposition format."""
        return prometheus_client.generate_latest(self.registry)
