"""The ``fma_launcher_pod_count{lcfg_name, phase}`` gauge (docs/protocol.md, "Metrics").

Launchers are counted per LauncherConfig over all nodes (no node label),
terminating ones included, by the same classification the populator acts on
(``launcher_phase``).  All five phase series exist — zeros if need be — while
the LauncherConfig or any of its launchers exists, and are removed otherwise,
so a dashboard never shows a stale count for a deleted config.

``tally`` is pure; ``LauncherPodCount`` owns the gauge in the registry it is
given (no global registry, so tests and processes can each have their own).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import prometheus_client

from controllers import launcher_phase

__all__ = ["METRIC_NAME", "LauncherPodCount", "tally"]

METRIC_NAME = "fma_launcher_pod_count"
"""The contracted metric name."""


def tally(
    pods: Iterable[Mapping[str, Any]],
    template_hash: str | None,
    thresholds: launcher_phase.Thresholds,
    now: datetime.datetime,
) -> dict[launcher_phase.Phase, int]:
    """Count one LauncherConfig's launchers per phase, every phase present (pure)."""
    counts = dict.fromkeys(launcher_phase.Phase, 0)
    for pod in pods:
        counts[launcher_phase.classify(pod, template_hash, thresholds, now)] += 1
    return counts


class LauncherPodCount:
    """The gauge, with its series per LauncherConfig kept complete or absent.  Thread-safe."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self._gauge = prometheus_client.Gauge(
            METRIC_NAME,
            "Launcher Pods per LauncherConfig and population phase.",
            ["lcfg_name", "phase"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._present: set[str] = set()

    def update(self, launcher_config_name: str, counts: Mapping[launcher_phase.Phase, int]) -> None:
        """Set all five series of ``launcher_config_name``."""
        with self._lock:
            for phase in launcher_phase.Phase:
                self._gauge.labels(launcher_config_name, phase.value).set(counts.get(phase, 0))
            self._present.add(launcher_config_name)

    def remove(self, launcher_config_name: str) -> None:
        """Remove every series of ``launcher_config_name`` (no-op when absent)."""
        with self._lock:
            if launcher_config_name not in self._present:
                return
            for phase in launcher_phase.Phase:
                self._gauge.remove(launcher_config_name, phase.value)
            self._present.discard(launcher_config_name)

    def names(self) -> frozenset[str]:
        """The LauncherConfigs that currently have series."""
        with self._lock:
            return frozenset(self._present)
