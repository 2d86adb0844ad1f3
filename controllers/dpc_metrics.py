"""The dual-pods controller's Prometheus metrics, exactly as docs/protocol.md, "Metrics", names them.

One ``DPCMetrics`` per process, registered in a registry passed in (tests use
their own).  The inner-queue metrics are fed by the work queue through the
``QueueObserver`` protocol.
"""

from __future__ import annotations

import prometheus_client

__all__ = ["DPCMetrics", "InnerQueueObserver"]

_ACTUATION_BUCKETS = (0, 1, 3, 5, 7.5, 10, 15, 30, 60, 120, 240, 480, 960, 1920)
_HTTP_BUCKETS = (0.001, 0.01, 0.1, 1, 2, 3, 5, 10, 30, 90, 270, 810)
_CREATE_BUCKETS = (0.001, 0.01, 0.1, 1, 2, 3, 4, 5)
_QUEUE_BUCKETS = (0.015625, 0.0625, 0.25, 1, 4, 16, 64)


class DPCMetrics:
    """Every metric the dual-pods controller exports."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.actuation_seconds = prometheus_client.Histogram(
            "fma_actuation_seconds",
            "Requester container start to the first become-ready relay, once per binding.",
            ["exported_namespace", "path", "instancesDeleted", "isc_name"],
            buckets=_ACTUATION_BUCKETS,
            registry=registry,
        )
        self.http_latency_seconds = prometheus_client.Histogram(
            "fma_http_latency_seconds",
            "Latency of the controller's HTTP calls to requesters, launchers and engines.",
            ["purpose", "method", "exported_namespace", "isc_name", "status_code"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.launcher_create_seconds = prometheus_client.Histogram(
            "fma_launcher_create_seconds",
            "The apiserver create call of a new bound launcher.",
            ["exported_namespace", "lcfg_name", "success"],
            buckets=_CREATE_BUCKETS,
            registry=registry,
        )
        self.duality = prometheus_client.Gauge(
            "fma_duality",
            "1 per GPU while a requester is bound to a provider, 0 once both are gone.",
            [
                "exported_namespace",
                "requester_name",
                "exported_pod",
                "exported_container",
                "instance_id",
                "UUID",
                "node",
            ],
            registry=registry,
        )
        self.requester_count = prometheus_client.Gauge(
            "fma_requester_count",
            "Launcher-mode requesters per ISC, scheduled or not, not being deleted.",
            ["isc_name"],
            registry=registry,
        )
        self.start_failures = prometheus_client.Counter(
            "fma_start_failures",
            "Engine starts that failed: the engine stopped before it ever answered (reason exited),"
            " or the start deadline passed first (reason deadline); once per binding.",
            ["exported_namespace", "isc_name", "reason"],
            registry=registry,
        )
        self.isc_count = prometheus_client.Gauge(
            "fma_isc_count",
            "InferenceServerConfigs per referenced LauncherConfig.",
            ["launcher_config_name"],
            registry=registry,
        )
        self.queue_adds = prometheus_client.Counter(
            "fma_dpc_innerqueue_adds", "Unique adds.", ["node"], registry=registry
        )
        self.queue_depth = prometheus_client.Gauge(
            "fma_dpc_innerqueue_depth", "Pending items.", ["node"], registry=registry
        )
        self.queue_duration = prometheus_client.Histogram(
            "fma_dpc_innerqueue_queue_duration_seconds",
            "Time from add to processing.",
            ["node"],
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        )
        self.queue_retries = prometheus_client.Counter(
            "fma_dpc_innerqueue_retries", "Retries.", ["node"], registry=registry
        )
        self.queue_work = prometheus_client.Histogram(
            "fma_dpc_innerqueue_work_duration_seconds",
            "Processing time.",
            ["node"],
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        )


class InnerQueueObserver:
    """Feeds the ``fma_dpc_innerqueue_*`` metrics from the work queue."""

    def __init__(self, metrics: DPCMetrics) -> None:
        self._m = metrics

    def added(self, group: str) -> None:
        """A new item became pending."""
        self._m.queue_adds.labels(node=group).inc()

    def depth(self, group: str, pending: int) -> None:
        """Pending items of a node."""
        self._m.queue_depth.labels(node=group).set(pending)

    def waited(self, group: str, seconds: float) -> None:
        """An item waited this long."""
        self._m.queue_duration.labels(node=group).observe(seconds)

    def worked(self, group: str, seconds: float) -> None:
        """An item was processed this long."""
        self._m.queue_work.labels(node=group).observe(seconds)

    def retried(self, group: str) -> None:
        """An item was retried."""
        self._m.queue_retries.labels(node=group).inc()
