"""The kube-scheduler extender that places requesters where sleeping instances wait.

``fma-extender`` keeps a watch-fed model of every node (``live_model``,
``node_view``) and answers the scheduler's filter and prioritize calls
(``http_api``, ``protocol``) with pure verbs (``decision``) over the
documented scoring (``scoring``).  ``scheduler_config`` renders the FMA
scheduler's KubeSchedulerConfiguration from the one packaged file.
"""

from extender import (
    config_summary,
    decision,
    demand,
    errors,
    http_api,
    live_model,
    metrics,
    node_view,
    protocol,
    scheduler_config,
    scoring,
    settings,
)

__all__ = [
    "config_summary",
    "decision",
    "demand",
    "errors",
    "http_api",
    "live_model",
    "metrics",
    "node_view",
    "protocol",
    "scheduler_config",
    "scoring",
    "settings",
]
