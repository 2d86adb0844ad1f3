"""The kube-scheduler extender that places requesters where sleeping instances wait.

``fma-extender`` keeps a watch-fed model of every node
(``kube.sleeper_cache``, ``crds.sleeper_view``) and answers the scheduler's
filter and prioritize calls (``http_api``, ``protocol``) with pure verbs
(``decision``) over the scoring it shares with the webhook's placement hints
(``crds.sleeper_scoring``).  ``scheduler_config`` renders the FMA
scheduler's KubeSchedulerConfiguration from the one packaged file.
"""

from extender import (
    decision,
    demand,
    errors,
    http_api,
    metrics,
    protocol,
    scheduler_config,
    settings,
)

__all__ = [
    "decision",
    "demand",
    "errors",
    "http_api",
    "metrics",
    "protocol",
    "scheduler_config",
    "settings",
]
