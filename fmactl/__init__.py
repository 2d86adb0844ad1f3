"""``kubectl fma``: an operator's view of fast model actuation.

``snapshot`` reads the cluster through the ``kube`` adapter; ``status_report``
and ``explanation`` are pure builders over that snapshot; ``rendering`` prints
them as tables (100 columns), JSON or YAML; ``cli`` is the kubectl plugin.
This package may import ``crds`` and ``kube`` only, and nothing imports it.
"""

from fmactl import cli, errors, explanation, pod_events, pod_facts, rendering, snapshot, status_report
from fmactl.errors import ClusterUnreachable, CrdsMissing, FmactlError, NotFmaPod, PodNotFound

__all__ = [
    "ClusterUnreachable",
    "CrdsMissing",
    "FmactlError",
    "NotFmaPod",
    "PodNotFound",
    "cli",
    "errors",
    "explanation",
    "pod_events",
    "pod_facts",
    "rendering",
    "snapshot",
    "status_report",
]
